"""The semantic graph: WordNet noun synsets with sample images, built once and kept in the registry.

Nodes are the synsets named by a sample folder plus all their hypernyms; a hypernym draws its
samples from its descendants' images (at most ``max_per_node``, chosen with a fixed seed).
Only :func:`build_graph` needs WordNet; everything after reads the graph back from the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mllzoo.defaults import MAX_PER_NODE, SEED
from mllzoo.errors import MllzooError, warn
from mllzoo.graph import layouts
from mllzoo.graph.samples import IMAGE_SUFFIXES, UnavailableSample, read_regular, sample_hash
from mllzoo.store.registry import Registry

WNID = re.compile(r"^n(\d{8})$")


@dataclass
class Node:
    idx: int
    synset: str
    wnid: str
    name: str
    definition: str
    caption: str
    depth: int
    parents: list[int]


@dataclass
class Graph:
    """Nodes, the unique images, and the (node, image) sample pairs sorted by node."""

    id: str
    nodes: list[Node]
    image_hashes: list[str]
    image_paths: list[str]
    sample_pairs: np.ndarray | None  # int32 [n_samples, 2]: node_idx, image_idx (None: not loaded)
    unknown_folders: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)  # not regular files, or too large
    source: str | None = None  # the folder image paths are relative to (where built)
    scans: list[RootScan] = field(default_factory=list)  # what each sample root held (where built)

    @property
    def captions(self) -> list[str]:
        return [node.caption for node in self.nodes]

    @property
    def samples(self) -> np.ndarray:
        """The (node, image) pairs, sorted by node; a graph loaded without them (selection) has none to give."""
        if self.sample_pairs is None:
            raise AttributeError(
                "this graph was loaded without its samples (load_graph(samples=True))"
            )
        return self.sample_pairs

    def info(self) -> dict:
        edges = sum(len(node.parents) for node in self.nodes)
        return {
            "id": self.id,
            "nodes": len(self.nodes),
            "edges": edges,
            "images": len(self.image_hashes),
            "samples": int(len(self.samples)),
            "depth": max((n.depth for n in self.nodes), default=0),
            "leaves": len(self.nodes) - len({p for n in self.nodes for p in n.parents}),
        }


def caption(lemma: str, definition: str) -> str:
    return f"{lemma} which is {definition}"


def wordnet():
    """NLTK's WordNet reader, or one line saying how to get it offline."""
    try:
        import nltk  # noqa: F401
    except ImportError:
        raise MllzooError(
            "building a graph needs nltk, which mllzoo's graph extra installs: "
            "pip install 'mllzoo[graph]'"
        ) from None
    try:
        from nltk.corpus import wordnet as wn

        with quiet_nltk():
            wn.ensure_loaded()
    except LookupError:
        raise MllzooError(
            "WordNet is not available to NLTK: `make wordnet` (needs apt packages wordnet-base "
            "wordnet-sense-index) or `python -c \"import nltk; nltk.download('wordnet')\"`, "
            "then set NLTK_DATA to that folder"
        ) from None
    return wn


@contextlib.contextmanager
def quiet_nltk():
    """NLTK's own warnings never reach the user raw: an unknown wnid is already counted as an
    unknown folder; any other warning becomes one line through :func:`mllzoo.errors.warn`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for message in dict.fromkeys(str(w.message) for w in caught):
        if not message.startswith("No WordNet synset found"):
            warn(f"WordNet (NLTK): {message}")


def parse_folder_name(wn, name: str):
    """A synset from ``dog.n.01``, the MLL spelling with ``*`` for ``/``, or a wnid ``n02084071``."""
    from nltk.corpus.reader.wordnet import WordNetError

    try:
        with quiet_nltk():
            match = WNID.match(name)
            if match:
                synset = wn.synset_from_pos_and_offset("n", int(match[1]))
                return synset  # None for an offset WordNet does not have
            synset = wn.synset(name.replace("*", "/"))
    except (WordNetError, ValueError):
        return None
    return synset if synset.pos() == "n" else None


@dataclass
class RootScan:
    """What one sample root holds: its layout, its images per leaf synset (digest -> path), and
    what was left out of it (paths relative to the common folder of all roots)."""

    root: Path
    layout: str
    folders: int
    images: dict[str, dict[str, str]]
    unknown: list[str] = field(default_factory=list)  # class folders WordNet does not name
    skipped: list[str] = field(default_factory=list)  # not regular files, or too large
    ignored: list[str] = field(default_factory=list)  # not images by their name, or folders
    empty: list[str] = field(default_factory=list)  # class folders without an image


def build_graph(
    samples_dirs: Path | str | list[Path] | list[str],
    max_per_node: int = MAX_PER_NODE,
    seed: int = SEED,
) -> Graph:
    """Scan one or more sample roots of class folders and propagate samples up the hypernyms.

    With several roots (ImageNet, -V2, -Sketch, -A, -R, as the paper draws them), each contributes
    to a node in turn, in the order given, up to ``max_per_node``; image paths are relative to the
    roots' common folder, :attr:`Graph.source`.
    """
    roots = sample_roots(samples_dirs)
    base = Path(os.path.commonpath([str(root) for root in roots])) if len(roots) > 1 else roots[0]
    wn = wordnet()
    scans = [scan_root(wn, root, base) for root in roots]
    if not any(scan.images for scan in scans):
        unknown = [name for scan in scans for name in scan.unknown]
        raise MllzooError(
            f"no synset-named folder with images in {', '.join(map(str, roots))}"
            + (f" (unknown names: {', '.join(unknown[:5])})" if unknown else "")
        )
    pools = node_pools(wn, scans)
    names = sorted(pools, key=lambda n: (wn.synset(n).min_depth(), n))
    index = {name: i for i, name in enumerate(names)}
    nodes = [make_node(wn.synset(name), index) for name in names]
    chosen = {
        name: draw_samples(pools[name], max_per_node, f"{seed}:{name}", len(roots) > 1)
        for name in names
    }
    graph = assemble(names, index, nodes, chosen)
    graph.source, graph.scans = str(base), scans
    graph.unknown_folders = [name for scan in scans for name in scan.unknown]
    graph.skipped_files = [name for scan in scans for name in scan.skipped]
    return graph


def sample_roots(samples_dirs: Path | str | list[Path] | list[str]) -> list[Path]:
    """The roots as resolved paths; a missing, repeated or nested root is one clear error."""
    given: list[Path | str] = (
        [samples_dirs] if isinstance(samples_dirs, (str, Path)) else list(samples_dirs)
    )
    roots = [Path(root) for root in given]
    for root in roots:
        if not root.is_dir():
            raise MllzooError(f"sample folder not found: {root}")
    resolved = [root.resolve() for root in roots]
    for i, one in enumerate(resolved):
        for other in resolved[i + 1 :]:
            if one == other or one in other.parents or other in one.parents:
                raise MllzooError(
                    f"sample folders {one} and {other} overlap: give each dataset's folder once"
                )
    return resolved if len(roots) > 1 else roots


def scan_root(wn, root: Path, base: Path) -> RootScan:
    """Read one root's class folders as its layout names them; count and name what is left out."""
    entries = sorted(root.iterdir())
    folders = [p for p in entries if p.is_dir()]
    kind = layouts.detect([p.name for p in folders])
    scan = RootScan(root, kind, len(folders), {})
    scan.ignored = [_relative(p, base) for p in entries if not p.is_dir()]
    for folder in folders:
        synset = parse_folder_name(wn, layouts.wordnet_name(kind, folder.name))
        if synset is None:
            scan.unknown.append(_relative(folder, base))
            continue
        images = scan.images.setdefault(synset.name(), {})
        found = _read_folder(folder, base, images, scan)
        if not found:
            scan.empty.append(_relative(folder, base))
    scan.images = {name: imgs for name, imgs in scan.images.items() if imgs}
    return scan


def _read_folder(folder: Path, base: Path, images: dict[str, str], scan: RootScan) -> int:
    """Hash the folder's images into ``images``; what is not an image is noted in ``scan``."""
    found = 0
    for file in sorted(folder.iterdir()):
        relative = _relative(file, base)
        if file.suffix.lower() not in IMAGE_SUFFIXES or file.is_dir():
            scan.ignored.append(relative)
            continue
        try:
            images.setdefault(sample_hash(read_regular(file)), relative)
            found += 1
        except UnavailableSample:
            scan.skipped.append(relative)
    return found


def _relative(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def node_pools(wn, scans: list[RootScan]) -> dict[str, list[dict[str, str]]]:
    """Each node's own and descendants' images, one pool (digest -> path) per root; an image whose
    bytes an earlier root already holds is that root's."""
    pools: dict[str, list[dict[str, str]]] = {}
    for position, scan in enumerate(scans):
        for name, images in scan.images.items():
            synset = wn.synset(name)
            for node in {synset, *synset.closure(_hypernyms)}:
                pools.setdefault(node.name(), [{} for _ in scans])[position].update(images)
    for per_root in pools.values():
        seen: set[str] = set()
        for pool in per_root:
            for digest in [d for d in pool if d in seen]:
                del pool[digest]
            seen.update(pool)
    return pools


def make_node(synset, index: dict[str, int]) -> Node:
    lemma = synset.lemma_names()[0].replace("_", " ")
    return Node(
        idx=index[synset.name()],
        synset=synset.name(),
        wnid=f"n{synset.offset():08d}",
        name=lemma,
        definition=synset.definition(),
        caption=caption(lemma, synset.definition()),
        depth=synset.min_depth(),
        parents=sorted(index[p.name()] for p in _hypernyms(synset) if p.name() in index),
    )


def draw_samples(
    per_root: list[dict[str, str]], cap: int, seed: str, in_turn: bool
) -> list[tuple[str, str]]:
    """A node's samples, ``(digest, path)``: all when they fit the cap; else, from one root, a
    seeded choice; from several (``in_turn``), each root's images in a seeded order, taken one
    root after another until the cap is reached."""
    if not in_turn:
        pool = sorted(per_root[0].items())
        return pool if len(pool) <= cap else random.Random(seed).sample(pool, cap)
    orders = [
        random.Random(f"{seed}:{position}").sample(sorted(pool.items()), len(pool))
        for position, pool in enumerate(per_root)
    ]
    chosen: list[tuple[str, str]] = []
    for turn in range(max(map(len, orders), default=0)):
        chosen += [order[turn] for order in orders if turn < len(order)][: cap - len(chosen)]
        if len(chosen) >= cap:
            break
    return chosen


def assemble(
    names: list[str],
    index: dict[str, int],
    nodes: list[Node],
    chosen: dict[str, list[tuple[str, str]]],
) -> Graph:
    """The graph of the chosen samples: only images some node samples, numbered by digest."""
    image_paths = {digest: path for picks in chosen.values() for digest, path in picks}
    image_hashes = sorted(image_paths)
    image_index = {digest: i for i, digest in enumerate(image_hashes)}
    pairs = [(index[name], image_index[digest]) for name in names for digest, _ in chosen[name]]
    samples = np.array(sorted(pairs), dtype=np.int32).reshape(-1, 2)
    graph_id = content_id(names, image_hashes, samples)
    return Graph(graph_id, nodes, image_hashes, [image_paths[h] for h in image_hashes], samples)


def content_id(synsets: list[str], image_hashes: list[str], samples: np.ndarray) -> str:
    """A graph's id: a hash of its nodes' synsets, its images' hashes and its (node, image) samples, so
    a graph read from anywhere can be checked against the id it claims."""
    return hashlib.sha1(json.dumps([synsets, image_hashes, samples.tolist()]).encode()).hexdigest()[
        :12
    ]


def _hypernyms(synset):
    return synset.hypernyms() + synset.instance_hypernyms()


def save_graph(registry: Registry, graph: Graph, source: str) -> None:
    """Store the graph in one transaction and make it the registry's current graph.

    The sample folder is recorded relative to the registry's folder, so a registry copied with its
    samples (a clone, a shipped registry) finds its own copy and names no path of the machine that built it.
    """
    relative = os.path.relpath(Path(source).resolve(), registry.path.resolve().parent)
    registry.save_graph(
        graph.id,
        Path(source).name,
        {"source": Path(relative).as_posix(), **graph.info()},
        ({**node.__dict__, "parents": json.dumps(node.parents)} for node in graph.nodes),
        zip(graph.image_hashes, graph.image_paths),
        graph.samples,
    )


def load_graph(
    registry: Registry, graph_id: str | None = None, images: bool = True, samples: bool = True
) -> Graph:
    """Read a graph back (the current one by default); no WordNet needed.

    Selection needs only the nodes: ``images=False`` leaves the image lists empty and
    ``samples=False`` leaves :attr:`Graph.samples` ``None`` (a paper-scale graph has 675,000 of each).
    """
    graph_id = graph_id or registry.require_graph_id()
    rows = registry.graph_nodes(graph_id)
    parents = json.loads(
        "[" + ",".join(row[-1] for row in rows) + "]"
    )  # one parse, not one per node
    # each row is Node's fields in order, parents last (registry.graph_nodes); mypy cannot see a row's length
    nodes = [Node(*row[:-1], node_parents) for row, node_parents in zip(rows, parents)]  # type: ignore[call-arg]
    image_rows = registry.graph_images(graph_id) if images else []
    return Graph(
        graph_id,
        nodes,
        [h for h, _ in image_rows],
        [p for _, p in image_rows],
        registry.graph_samples(graph_id) if samples else None,
    )


def graph_source(registry: Registry, graph_id: str) -> str | None:
    """The folder the graph was built from, resolved against the registry's folder (older registries
    recorded it absolute)."""
    meta = registry.graph_meta(graph_id)
    source = meta.get("source") if meta else None
    return None if source is None else str(registry.path.parent / source)


def samples_root_for(registry: Registry, graph_id: str, samples: Path | None) -> Path:
    """``--samples`` when given, else the folder the graph was built from."""
    if samples is not None:
        return Path(samples)
    source = graph_source(registry, graph_id)
    if source is None:
        raise MllzooError(
            "the registry does not say where the graph's images are: pass --samples DIR"
        )
    return Path(source)
