"""The model label: a compact record of how a model ranks graph nodes for every sample image.

Per sample (node, image) pair we keep the rank of the sample's own node (``rank``, 0 = ranked
first). Per unique image we keep the nodes the model ranks highest, best first, as many as its
worst-ranked sample needs and at most a depth ``M`` (a ragged list: ``lists`` with ``lengths``).
``M`` is chosen per chunk of images so the label fits :data:`BUDGET_BYTES` at the paper's scale
(:func:`depth_within`): a model that ranks most samples' own nodes high lists its hard images deeper.
The nodes ranked above a sample's own node are the first ``min(rank, length)`` of its image's list,
so an image whose samples all rank first costs nothing, and replaying a classification restricted
to any node subset is exact whenever ``rank <= length`` or the list already holds a subset node.
Only a sample ranked below its list's end with no subset node in the list is undecided;
:func:`restricted_predictions` resolves it by the expected number of subset nodes ranked between
the list's end and its own node.
Pure numpy: no torch, no SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mllzoo.defaults import BUDGET_BYTES, PAPER_NODES, PAPER_PER_NODE
from mllzoo.errors import InvalidLabel

FORMAT = "ragged-topm-v1"
RAGGED_CHUNK = 4 * 1024**2  # list entries gathered at once: 32 MB of int64 positions


@dataclass
class Label:
    lists: np.ndarray  # flat node indices: each image's best nodes, best first, images in order
    lengths: np.ndarray  # [n_images] list length per image (0 for unreadable images)
    rank: np.ndarray  # [n_samples] rank of the sample's own node; -1 = image unreadable
    n_nodes: int

    def __post_init__(self) -> None:
        self.offsets = np.zeros(len(self.lengths), np.int64)  # where each image's list starts
        np.cumsum(self.lengths[:-1], out=self.offsets[1:])

    @property
    def nbytes(self) -> int:
        return self.lists.nbytes + self.lengths.nbytes + self.rank.nbytes

    def arrays(self) -> dict[str, np.ndarray]:
        return {"lists": self.lists, "lengths": self.lengths, "rank": self.rank}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict) -> Label:
        return cls(arrays["lists"], arrays["lengths"], arrays["rank"], int(meta["n_nodes"]))


def validate(label: Label, n_images: int, samples: np.ndarray, n_nodes: int) -> None:
    """Raise :class:`InvalidLabel` unless ``label`` is a well-formed label of a graph with
    ``n_images`` images, these ``[n_samples, 2]`` (node, image) samples and ``n_nodes`` nodes:
    shapes match the graph, the lists add up to their lengths, node indices and ranks are in range,
    an image's samples are all readable or all not (rank -1), and no list is longer than its
    samples need (so an unreadable image lists nothing)."""

    def check(ok: bool, what: str) -> None:
        if not ok:
            raise InvalidLabel(what)

    check(label.n_nodes == n_nodes, f"label of {label.n_nodes} nodes on a graph of {n_nodes}")
    for name, array, size in (
        ("lengths", label.lengths, n_images),
        ("rank", label.rank, len(samples)),
        ("lists", label.lists, None),
    ):
        check(
            array.ndim == 1 and np.issubdtype(array.dtype, np.integer),
            f"{name} is not a flat integer array",
        )
        check(size is None or len(array) == size, f"{len(array)} {name} for {size} graph entries")
    lengths = label.lengths.astype(np.int64)
    check(
        bool((lengths >= 0).all()) and int(lengths.sum()) == len(label.lists),
        f"list lengths add up to {int(lengths.sum())}, the lists hold {len(label.lists)} entries",
    )
    check(
        int(label.lists.min(initial=0)) >= 0 and int(label.lists.max(initial=0)) < n_nodes,
        "a list holds a node index out of range",
    )
    check(bool(((label.rank >= -1) & (label.rank < n_nodes)).all()), "a rank is out of range")
    images = samples[:, 1].astype(np.int64)
    unreadable = np.zeros(n_images, bool)
    unreadable[images[label.rank < 0]] = True
    check(
        not (unreadable[images] & (label.rank >= 0)).any(),
        "an image is both readable and unreadable",
    )
    check(
        bool((lengths <= image_needs(n_images, images, label.rank)).all()),
        "a list is longer than its image's samples need",
    )


def index_dtype(n_nodes: int) -> np.dtype:
    """Node indices, ranks and list lengths all fit it."""
    return np.dtype(np.int16) if n_nodes < 2**15 else np.dtype(np.int32)


def image_needs(n_images: int, sample_images: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Per image, how many of its best nodes its worst-ranked readable sample needs listed."""
    need = np.zeros(n_images, np.int64)
    valid = rank >= 0
    np.maximum.at(need, sample_images[valid], rank[valid])
    return need


def cut_lists(topm: np.ndarray, need: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lists, lengths)``: each image's row of ``topm`` cut to its need, flattened."""
    lengths = np.minimum(need, topm.shape[1])
    keep = np.arange(topm.shape[1])[None, :] < lengths[:, None]
    return topm[keep].astype(index_dtype(n_nodes)), lengths.astype(index_dtype(n_nodes))


def budget_entries(n_nodes: int) -> float:
    """List entries per image :data:`BUDGET_BYTES` allows when every sample is its own image: each
    image also stores its list's length and its sample's rank, all in :func:`index_dtype`."""
    per_image = BUDGET_BYTES / (PAPER_NODES * PAPER_PER_NODE)
    return per_image / index_dtype(n_nodes).itemsize - 2


def budget_depth(need: np.ndarray, n_nodes: int) -> int:
    """The depth ``mllzoo register`` cuts a chunk's lists at by default: the deepest within the budget."""
    return depth_within(need, budget_entries(n_nodes))


def depth_within(need: np.ndarray, entries: float) -> int:
    """The deepest cut ``M`` whose lists, ``min(need, M)`` per image, average at most ``entries``.

    Cutting every list at one depth spends the budget where lists are short first, so the images
    a model ranks well stay exact and the hard ones share what is left.
    """
    low, high = 1, max(int(need.max(initial=0)), 1)
    while low < high:
        mid = (low + high + 1) // 2
        if np.minimum(need, mid).mean() <= entries:
            low = mid
        else:
            high = mid - 1
    return low


def rank_images(similarity: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` best nodes per image row of a ``[images, nodes]`` similarity block, best first."""
    m = min(m, similarity.shape[1])
    part = np.argpartition(-similarity, m - 1, axis=1)[:, :m]
    order = np.argsort(-np.take_along_axis(similarity, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def own_ranks(similarity: np.ndarray, nodes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rank of ``nodes[j]`` in row ``rows[j]`` of ``similarity``: how many nodes score higher."""
    own = similarity[rows, nodes]
    return (similarity[rows] > own[:, None]).sum(axis=1).astype(np.int32)


@dataclass
class SampleLists:
    """A label seen sample by sample, for some samples in graph order: what replaying needs of it.

    Per sample its own node's rank and its image's list length, and flat, per sample, the first
    ``above`` entries of its image's list (the nodes ranked above its own node that the list holds).
    The registry stores a label this way, one node's samples per block, so a query reads only the
    nodes it matched (:mod:`mllzoo.store.label_store`).
    """

    rank: np.ndarray  # [n] rank of the sample's own node; -1 = image unreadable
    length: np.ndarray  # [n] list length of the sample's image
    entries: np.ndarray  # flat: per sample its first ``above`` list entries

    @property
    def above(self) -> np.ndarray:
        return entries_above(self.rank, self.length)


def entries_above(rank: np.ndarray, length: np.ndarray) -> np.ndarray:
    """How many list entries a sample holds: ``min(rank, length)``, 0 when unreadable (rank -1)."""
    return np.clip(np.minimum(rank.astype(np.int64), length), 0, None)


def ragged_index(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions ``starts[i] + 0 .. counts[i] - 1`` for every ``i``, concatenated."""
    counts = np.asarray(counts, np.int64)
    ends = np.cumsum(counts)
    return np.repeat(np.asarray(starts, np.int64) - (ends - counts), counts) + np.arange(
        ends[-1] if len(ends) else 0
    )


def ragged_take(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``values[ragged_index(starts, counts)]``, gathered about :data:`RAGGED_CHUNK` entries at a time:
    the positions are int64, four times an int16 label's bytes, so they never exist for a whole
    label at once (a paper-scale label holds about 31 million entries)."""
    starts, counts = np.asarray(starts, np.int64), np.asarray(counts, np.int64)
    ends = np.cumsum(counts)
    out = np.empty(int(ends[-1]) if len(ends) else 0, values.dtype)
    cuts = np.searchsorted(ends, np.arange(RAGGED_CHUNK, len(out), RAGGED_CHUNK)).tolist()
    for first, last in zip([0, *cuts], [*cuts, len(counts)]):
        if first < last:
            done = int(ends[first] - counts[first])
            out[done : int(ends[last - 1])] = values[
                ragged_index(starts[first:last], counts[first:last])
            ]
    return out


def sample_lists(label: Label, sample_idx: np.ndarray, images: np.ndarray) -> SampleLists:
    """The samples ``sample_idx`` (whose images are ``images``) of a whole label."""
    rank, length = label.rank[sample_idx], label.lengths[images]
    return SampleLists(
        rank, length, ragged_take(label.lists, label.offsets[images], entries_above(rank, length))
    )


def whole_label(view: SampleLists, sample_images: np.ndarray, n_images: int, n_nodes: int) -> Label:
    """The label whose every sample (``sample_images`` their images) ``view`` holds, rebuilt: an
    image's list is the entries of its sample ranked lowest, which holds the whole list. Raises
    :class:`InvalidLabel` when the samples of an image disagree on its list."""
    dtype = index_dtype(n_nodes)
    lengths = np.zeros(n_images, dtype)
    lengths[sample_images] = view.length
    above = view.above
    starts = np.cumsum(above) - above
    order = np.lexsort((-above, sample_images))  # by image, the sample holding most entries first
    first = order[np.flatnonzero(np.diff(sample_images[order], prepend=-1))]
    images = sample_images[first]
    if (
        len(images) != n_images
        or (lengths[sample_images] != view.length).any()
        or (above[first] != lengths[images]).any()
    ):
        raise InvalidLabel("the samples of an image disagree on its list")
    lists = ragged_take(view.entries, starts[first], above[first]).astype(dtype, copy=False)
    return Label(lists, lengths, view.rank.astype(dtype), n_nodes)


@dataclass
class Restriction:
    """The samples of a node subset, found once and replayed for every model."""

    subset: np.ndarray
    in_subset: np.ndarray  # [n_nodes] bool
    sample_idx: np.ndarray
    own: np.ndarray
    image: np.ndarray

    @classmethod
    def of(cls, samples: np.ndarray, subset: np.ndarray, n_nodes: int) -> Restriction:
        in_subset = np.zeros(n_nodes, bool)
        in_subset[subset] = True
        sample_idx = np.flatnonzero(in_subset[samples[:, 0]])
        return cls(
            np.asarray(subset),
            in_subset,
            sample_idx,
            samples[sample_idx, 0].astype(np.int64),
            samples[sample_idx, 1].astype(np.int64),
        )


def restricted_predictions(
    label: Label, samples: np.ndarray, subset: np.ndarray | Restriction
) -> tuple[np.ndarray, np.ndarray]:
    """``(own node, predicted node)`` for every readable sample of a subset node.

    The prediction is the subset node the model ranks first for the sample's image; -1 where an
    undecided sample (see the module docstring) is judged wrong.
    """
    r = (
        subset
        if isinstance(subset, Restriction)
        else Restriction.of(samples, subset, label.n_nodes)
    )
    return predict(sample_lists(label, r.sample_idx, r.image), r.own, r.in_subset, label.n_nodes)


def predict(
    view: SampleLists, own: np.ndarray, in_subset: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(own node, predicted node)`` per readable sample of ``view`` (``own`` its nodes, all in
    the subset ``in_subset``, a ``[n_nodes]`` mask), as :func:`restricted_predictions`."""
    rank, length = view.rank.astype(np.int64), view.length.astype(np.int64)
    own = own.astype(np.int64, copy=False)
    if len(rank) and rank.min() < 0:  # unreadable images (they hold no entries)
        readable = rank >= 0
        own, rank, length = own[readable], rank[readable], length[readable]
    above = np.minimum(
        rank, length
    )  # how much of the image's list lies above the sample's own node
    ends = np.cumsum(above)
    entries = view.entries
    hits = np.flatnonzero(
        np.take(in_subset.view(np.uint8), entries)
    )  # take: no intp copy of the entries
    rows = np.searchsorted(ends, hits, side="right")  # which sample each hit belongs to, sorted
    first = np.flatnonzero(np.diff(rows, prepend=-1))  # the first hit of each sample
    predicted = np.where(rank >= _undecided_from(length, n_nodes, int(in_subset.sum())), -1, own)
    predicted[rows[first]] = entries[hits[first]]
    return own, predicted


def _undecided_from(length: np.ndarray, n_nodes: int, subset_size: int) -> np.ndarray | float:
    """The own-node rank from which a sample with no subset node in its list is judged wrong: where
    at least half a subset node is expected between its list's end (``length``) and its own node.
    A sample ranked within its list (``rank <= length``) always stays below it."""
    if subset_size < 2:
        return np.inf
    return length + 0.5 * np.maximum(n_nodes - length, 1) / (subset_size - 1)


def subset_position(subset: np.ndarray, n_nodes: int) -> np.ndarray:
    """``[n_nodes + 1]``: each node's place in the sorted ``subset``, -1 elsewhere and at index -1."""
    position = np.full(n_nodes + 1, -1)
    position[subset] = np.arange(len(subset))
    return position


def subset_confusion(
    own: np.ndarray, predicted: np.ndarray, position: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per subset node TP, FP, FN from per-sample decisions (``position`` from :func:`subset_position`):
    what a label's replay leaves behind, a few numbers per matched node, however many samples it had."""
    size = int(position.max()) + 1
    return confusion(position[own], position[predicted], size)


def replayer(model_labels: Iterable[Label], samples: np.ndarray, n_nodes: int):
    """For whole labels in memory: a function from a sorted node subset to each label's
    :func:`subset_confusion`, as :data:`mllzoo.selection.scoring.Replay` asks."""

    def replay_subset(subset: np.ndarray) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        r = Restriction.of(samples, subset, n_nodes)
        position = subset_position(subset, n_nodes)
        return (
            subset_confusion(*restricted_predictions(label, samples, r), position)
            for label in model_labels
        )

    return replay_subset


def confusion(
    own: np.ndarray, predicted: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-node TP, FP, FN (``int64`` over all nodes) from per-sample decisions."""
    correct = predicted == own
    tp = np.bincount(own[correct], minlength=n_nodes)
    fn = np.bincount(own[~correct], minlength=n_nodes)
    wrong = predicted[~correct]
    fp = np.bincount(wrong[wrong >= 0], minlength=n_nodes)
    return tp, fp, fn


def replay(
    label: Label, samples: np.ndarray, subset: np.ndarray | Restriction
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-node TP, FP, FN of the model's zero-shot classification restricted to ``subset``."""
    return confusion(*restricted_predictions(label, samples, subset), label.n_nodes)


def f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Standard F1 = 2TP / (2TP + FP + FN), 0 where a node has no samples and no predictions."""
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(len(tp)), where=denominator > 0)
