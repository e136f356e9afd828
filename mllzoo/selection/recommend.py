"""The Python API over selection and reuse: ``mllzoo.recommend(classes)`` and its ensemble.

It reads everything from the registry (graph, caption embeddings, labels), so a recommendation
needs no images and no model weights; only :meth:`Recommendation.ensemble` loads models.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mllzoo import labels
from mllzoo.classes import read_classes
from mllzoo.defaults import ALPHA, BATCH_SIZE, DEVICE, MAX_MODELS, REUSE, TOP_NODES, K
from mllzoo.errors import DamagedLabelError, MllzooError, warn
from mllzoo.graph.concept_graph import Graph, load_graph
from mllzoo.graph.names import SpellingIndex, concept_names, exact_nodes
from mllzoo.selection.demo import demo_notice
from mllzoo.selection.scoring import Replay, Selection, choose_models, select
from mllzoo.store.registry import Registry, default_registry_path
from mllzoo.store.usercache import EmbeddingCache
from mllzoo.text.descriptions import get_captioner
from mllzoo.text.embedders import embed, get_embedder, node_vectors

if TYPE_CHECKING:  # reuse imports the image stack, which a recommendation never needs
    from mllzoo.reuse.ensemble import Ensemble

WEAK_MATCH = (
    0.66  # below this best-node similarity no concept matches well: benchmarks/weak_match.py
)


@dataclass(repr=False)
class Recommendation:
    """A selection's answer. :attr:`models` are the models chosen (to load); :attr:`candidates` are
    all the labeled models it chose among, in the order of the rows of ``selection.scores``."""

    classes: list[str]
    candidates: list[str]
    metadata: dict[str, dict]
    selection: Selection
    graph: Graph
    registry: Registry
    domain: str | None = None
    task: str | None = None
    skipped: list[str] = field(default_factory=list)  # damaged labels left out (``skip_damaged``)
    notice: str | None = None  # set when every labeled model is a demo model (:mod:`.demo`)
    descriptions: list[list[str]] = field(default_factory=list)  # the captioner's, per class

    @property
    def models(self) -> list[str]:
        """The models chosen for some class, in first-use order: the ones to load."""
        return [self.candidates[m] for m in self.selection.models]

    @property
    def model_ids(self) -> list[str]:
        """The former name of :attr:`candidates`, kept so that code written for it still works."""
        return self.candidates

    def votes(self) -> dict[str, np.ndarray]:
        """Per selected model, in :attr:`models` order, the bool mask of the classes it was chosen for."""
        return {
            model_id: np.array(
                [self.candidates.index(model_id) in chosen for chosen in self.selection.chosen]
            )
            for model_id in self.models
        }

    @property
    def best_concepts(self) -> list[str]:
        """Per class, the caption of its best-matched graph concept."""
        return [self.graph.nodes[nodes[0]].caption for nodes in self.selection.match.nodes]

    @property
    def weak(self) -> list[bool]:
        """Per class: does its best-matching concept fall below :data:`WEAK_MATCH`? (Then no model's score
        speaks for the class: it is not in the graph, or not a word the embedder knows.)"""
        return [bool(best < WEAK_MATCH) for best in self.selection.match.similarity[:, 0]]

    def runner_up(self, y: int) -> int | None:
        """The best model not chosen for class ``y`` (the one that would come next), if any."""
        scores = self.selection.scores[:, y]
        rest = [
            m
            for m in np.argsort(-scores, kind="stable")
            if m not in self.selection.chosen[y] and np.isfinite(scores[m])
        ]
        return int(rest[0]) if rest else None

    def to_dict(self, explain: bool = False) -> dict:
        """The JSON shape of ``mllzoo recommend --json``: per class its models, whether it matches the graph
        only weakly and its matched nodes, and the models to load with their plugin and whether each
        runs here (``availability``); ``explain`` adds each class's runner-up."""
        sel = self.selection
        weak = self.weak
        spelling = SpellingIndex(self.graph) if any(weak) else None
        rows = []
        for y, name in enumerate(self.classes):
            row = {
                "name": name,
                "weak": weak[y],
                "models": [
                    {"id": self.candidates[m], "score": round(float(sel.scores[m, y]), 6)}
                    for m in sel.chosen[y]
                ],
                "nodes": [
                    {
                        "synset": self.graph.nodes[n].synset,
                        "name": self.graph.nodes[n].name,
                        "weight": round(float(w), 6),
                        "similarity": round(float(similarity), 6),
                    }
                    for n, w, similarity in zip(
                        sel.match.nodes[y], sel.match.weights[y], sel.match.similarity[y]
                    )
                    if y not in sel.match.exact or w > 0  # an id matches its concept only
                ],
            }
            if y in sel.match.exact:
                row["exact"] = self.graph.nodes[sel.match.exact[y]].synset
            if spelling is not None and weak[y]:
                row["suggestions"] = spelling.suggest(name)
            if explain:
                other = self.runner_up(y)
                row["runner_up"] = (
                    None
                    if other is None
                    else {
                        "id": self.candidates[other],
                        "score": round(float(sel.scores[other, y]), 6),
                        # above a chosen model: only the model budget (--max-models) kept it out
                        "outside_budget": bool(
                            sel.scores[other, y] > min(sel.scores[m, y] for m in sel.chosen[y])
                        )
                        if sel.chosen[y]
                        else False,
                    }
                )
            rows.append(row)
        from mllzoo.selection.candidates import plugins_of, statuses
        from mllzoo.store.user_models import known_models

        return {
            "classes": rows,
            "models": self.models,
            "plugins": plugins_of(self.registry, self.models),
            "availability": {
                s.model_id: s.text() for s in statuses(self.registry, self.models, known_models())
            },
            **({"notice": self.notice} if self.notice else {}),
            **({"skipped": self.skipped} if self.skipped else {}),
        }

    def to_records(self) -> list[dict]:
        """One flat row per (class, chosen model), best first: for a DataFrame or a CSV writer."""
        return [
            {
                "class": row["name"],
                "rank": rank,
                "model": model["id"],
                "score": model["score"],
                "weak": row["weak"],
                "concepts": ", ".join(node["synset"] for node in row["nodes"]),
            }
            for row in self.to_dict()["classes"]
            for rank, model in enumerate(row["models"], 1)
        ]

    def __repr__(self) -> str:
        models = ", ".join(self.models[:3]) + (
            f" (+{len(self.models) - 3} more)" if len(self.models) > 3 else ""
        )
        weak = sum(self.weak)
        return (
            f"<Recommendation: {len(self.classes)} classes, {len(self.models)} model(s) to load: {models}"
            f"{f'; {weak} weak match(es)' if weak else ''}>"
        )

    def _repr_html_(self) -> str:
        """A table per class for notebooks, naming the models and the matched concepts (every text
        escaped)."""
        from html import escape

        cells = []
        for row in self.to_dict()["classes"]:
            models = "<br>".join(f"{escape(m['id'])} ({m['score']:.3f})" for m in row["models"])
            concepts = ", ".join(
                f'<span title="{escape(node["synset"])}">{escape(name)}</span>'
                for node, name in zip(row["nodes"][:3], concept_names(row["nodes"][:3]))
            )
            flag = " <em>(weak match)</em>" if row["weak"] else ""
            cells.append(
                f"<tr><td>{escape(row['name'])}{flag}</td><td>{models}</td><td>{concepts}</td></tr>"
            )
        notice = f"<p><strong>{escape(self.notice)}</strong></p>" if self.notice else ""
        to_load = ", ".join(escape(m) for m in self.models)
        return (
            f"{notice}<table><thead><tr><th>class</th><th>models (score)</th><th>matched concepts</th>"
            f"</tr></thead><tbody>{''.join(cells)}</tbody></table>"
            f"<p>{len(self.models)} model(s) to load: {to_load}</p>"
        )

    def ensemble(
        self,
        device: str = DEVICE,
        batch_size: int = BATCH_SIZE,
        reuse: str = REUSE,
        balanced: bool = False,
    ) -> Ensemble:
        """The reuse ensemble: each selected model votes for the classes it was chosen for, as
        ``reuse`` says (``paper``: the MLL paper's prompts and vote; see :mod:`mllzoo.reuse.ensemble`);
        ``balanced``: for images that hold the classes in about equal numbers."""
        from mllzoo.reuse.ensemble import build_ensemble, reuse_method
        from mllzoo.store.user_models import known_models

        method = reuse_method(reuse)  # a bad name fails before the catalogue is read
        catalog = known_models()
        missing = [m for m in self.models if m not in catalog]
        if missing:
            from mllzoo.selection.candidates import why_not_here

            raise MllzooError(
                f"selected model(s) cannot run here: {why_not_here(self.registry, missing)}"
            )
        members = self.votes()
        return build_ensemble(
            self.classes,
            members,
            {m: self.selection.scores[self.model_ids.index(m)] for m in members},
            {m: catalog[m] for m in members},
            self.domain,
            method,
            self.descriptions,
            self.best_concepts,
            device,
            batch_size,
            balanced,
        )


LABELS_PER_WORKER = (
    8  # below this many labels a thread's start and connection cost more than they save
)


def stored_replay(
    registry: Registry,
    graph_id: str,
    n_nodes: int,
    model_ids: list[str],
    skipped: list[str] | None = None,
    workers: int | None = None,
) -> Replay:
    """Each of ``model_ids``' TP, FP, FN on a node subset (a :data:`~mllzoo.selection.scoring.Replay`), in id
    order, read from the registry's node blocks of that subset only. A damaged label raises, or, when a
    ``skipped`` list is given, is warned about, added to it and predicts nothing.

    The labels are shared out, in id order, over ``workers`` threads (default: one per core, at most one
    per :data:`LABELS_PER_WORKER` labels), each with its own connection: SQLite, the checksums and
    numpy's replay release the GIL, so the cores read and replay at once.
    """
    if workers is None:
        cores = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
        workers = max(1, min(cores, len(model_ids) // LABELS_PER_WORKER))
    shares = [
        list(share)
        for share in np.array_split(np.array(model_ids, dtype=object), workers)
        if len(share)
    ]

    def replay_share(share: list[str], subset: np.ndarray, own_registry: bool) -> list[tuple]:
        reader = (
            Registry(
                registry.path,
                create=False,
                write=False,
                read_only=not registry.writable,
                immutable=registry.immutable,
            )
            if own_registry
            else registry
        )
        in_subset = np.zeros(n_nodes, bool)
        in_subset[subset] = True
        position = labels.subset_position(subset, n_nodes)
        try:
            return [
                (
                    model_id,
                    found
                    if isinstance(found, DamagedLabelError)
                    else labels.subset_confusion(
                        *labels.predict(found[1], found[0], in_subset, n_nodes), position
                    ),
                )
                for model_id, found in reader.label_views(
                    graph_id, share, subset, labels.FORMAT, skip_damaged=skipped is not None
                )
            ]
        finally:
            if own_registry:
                reader.close()

    def replay_subset(subset: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if len(shares) == 1:
            found = replay_share(shares[0], subset, own_registry=False)
        else:
            with ThreadPoolExecutor(len(shares)) as pool:
                parts = [pool.submit(replay_share, share, subset, True) for share in shares]
                found = [item for part in parts for item in part.result()]
        if [model_id for model_id, _ in found] != model_ids:
            raise MllzooError(
                f"labels were removed from {registry.path} while reading them; run the command again"
            )
        for model_id, counts in found:
            if isinstance(counts, DamagedLabelError):
                warn(f"skipped {model_id}: {counts}")
                assert skipped is not None  # label_views yields errors only with skip_damaged
                skipped.append(model_id)
                counts = (
                    np.zeros(len(subset), np.int64),
                ) * 3  # predicts nothing: scores 0, then left out
            yield counts

    return replay_subset


class Selector:
    """The registry's graph nodes and caption embeddings, loaded once for many selections.

    Each selection reads, label by label, only the blocks of the nodes its classes matched
    (:meth:`Registry.label_views`) and replays each label before the next is read, so a one-off
    ``recommend`` never holds a label whole, let alone a thousand. ``keep_labels=True`` keeps the
    whole labels in memory after the first selection, for callers that select many times over a
    small registry (``mllzoo bench``). Class descriptions are embedded through the user's
    ``cache`` when given, and a description that is a node's caption reuses its vector.
    """

    def __init__(
        self,
        registry: Registry,
        embedder: str | None = None,
        captioner: str | None = None,
        keep_labels: bool = False,
        cache: EmbeddingCache | None = None,
    ):
        self.registry = registry
        self.graph = load_graph(registry, images=False, samples=keep_labels)
        self.model_ids = sorted(registry.labeled_model_ids(self.graph.id))
        if not self.model_ids:
            raise MllzooError(
                f"{registry.path} has no labeled models: install a plugin and run `mllzoo register`"
            )
        self.keep_labels = keep_labels
        self._labels: list[labels.Label] | None = None
        self.embedder = get_embedder(embedder)
        glosses = {node.name.lower(): node.definition for node in self.graph.nodes}
        self.captioner = get_captioner(captioner, registry, glosses)
        self.node_vectors = node_vectors(registry, self.embedder, self.graph)
        self.cache = cache
        self.metadata = {row["id"]: row["metadata"] for row in registry.models()}
        self.notice = demo_notice(self.model_ids, self.metadata)
        self._description_vectors: dict[tuple, tuple[np.ndarray, list[list[str]]]] = {}

    def whole_labels(self) -> list[labels.Label]:
        """The whole labels of :attr:`model_ids`, in that order (kept with ``keep_labels``)."""
        if self._labels is None:
            found = [
                label for _, label in self.registry.whole_labels(self.graph.id, self.model_ids)
            ]
            if not self.keep_labels:
                return found
            self._labels = found
        return self._labels

    def replay(self, model_ids: list[str], skipped: list[str] | None = None) -> Replay:
        """:func:`stored_replay` of ``model_ids``, or with ``keep_labels`` the same from whole labels in memory."""
        if self.keep_labels:
            index = {m: i for i, m in enumerate(self.model_ids)}
            whole = self.whole_labels()
            return labels.replayer(
                [whole[index[m]] for m in model_ids], self.graph.samples, len(self.graph.nodes)
            )

        return stored_replay(
            self.registry, self.graph.id, len(self.graph.nodes), model_ids, skipped
        )

    def description_vectors(
        self, names: list[str], domain: str | None, task: str | None
    ) -> np.ndarray:
        """One unit vector per class: the mean embedding of its descriptions."""
        return self._described(names, domain, task)[0]

    def descriptions(
        self, names: list[str], domain: str | None, task: str | None
    ) -> list[list[str]]:
        """The captioner's descriptions of each class (made once per class list, with its vectors)."""
        return self._described(names, domain, task)[1]

    def _described(
        self, names: list[str], domain: str | None, task: str | None
    ) -> tuple[np.ndarray, list[list[str]]]:
        key = (tuple(names), domain, task)
        if key not in self._description_vectors:
            descriptions = self.captioner.describe(names, domain, task)
            flat = [text for texts in descriptions for text in texts]
            known = dict(zip(self.graph.captions, self.node_vectors))
            vectors = embed(self.registry, self.embedder, flat, self.cache, known)
            bounds = np.cumsum([0] + [len(texts) for texts in descriptions])
            means = np.stack([vectors[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
            self._description_vectors[key] = (
                means / np.linalg.norm(means, axis=1, keepdims=True),
                descriptions,
            )
        return self._description_vectors[key]

    def limits(
        self, model_ids: list[str], max_models: int | None, most: dict[str, float | None]
    ) -> list[tuple[np.ndarray, float]]:
        """The cost budgets asked for (``most``: metadata key -> the most, or None), each checked
        by :func:`check_budget`: each model's cost, and the most their sum may be."""
        check_budget(model_ids, np.zeros(len(model_ids)), max_models, None)
        limits = []
        for key, value in most.items():
            if value is None:
                continue
            cost = np.array(  # a refused stored GFLOPs figure never fits a budget
                [
                    np.inf
                    if key == "gflops" and m in self.registry.unknown_costs
                    else self.metadata.get(m, {}).get(key) or 0.0
                    for m in model_ids
                ]
            )
            check_budget(model_ids, cost, None, (key, value))
            limits.append((cost, value))
        return limits

    def recommend(
        self,
        names: list[str],
        domain: str | None = None,
        task: str | None = None,
        k: int = K,
        alpha: float = ALPHA,
        top_nodes: int = TOP_NODES,
        max_models: int | None = MAX_MODELS,
        max_gflops: float | None = None,
        models: list[str] | None = None,
        skip_damaged: bool = False,
        max_params: float | None = None,
    ) -> Recommendation:
        """Select models for ``names``: per class its top ``k``, among at most ``max_models`` in all
        (None: no limit); ``skip_damaged`` goes on without damaged labels (one warning each)."""
        if not names:
            raise MllzooError("no classes given")
        if k < 1:
            raise MllzooError("-k must be at least 1")
        if not 0 <= alpha <= 1:
            raise MllzooError("--alpha must be between 0 and 1")
        keep = list(range(len(self.model_ids)))
        if models is not None:
            unknown = sorted(set(models) - set(self.model_ids))
            if unknown:
                raise MllzooError(f"not labeled in this registry: {', '.join(unknown)}")
            keep = sorted(self.model_ids.index(m) for m in models)
        model_ids = [self.model_ids[i] for i in keep]
        exact = exact_nodes(self.graph, names)
        described = [
            self.graph.nodes[exact[y]].name if y in exact else n for y, n in enumerate(names)
        ]
        description_vectors = self.description_vectors(described, domain, task)
        limits = self.limits(model_ids, max_models, {"gflops": max_gflops, "params_m": max_params})
        skipped: list[str] | None = [] if skip_damaged else None
        selection = select(
            description_vectors,
            self.node_vectors,
            self.replay(model_ids, skipped),
            k=k,
            alpha=alpha,
            top_nodes=top_nodes,
            max_models=max_models,
            limits=limits,
            exact=exact,
        )
        skipped = [m for m in skipped or [] if m in model_ids]
        if skipped:  # known only once the labels have streamed: choose again without them
            selection.scores[[model_ids.index(m) for m in skipped]] = -np.inf
            selection.chosen = choose_models(selection.scores, k, max_models, limits)
        return Recommendation(
            list(names),
            model_ids,
            self.metadata,
            selection,
            self.graph,
            self.registry,
            domain,
            task,
            skipped,
            self.notice,
            self.descriptions(described, domain, task),
        )


COSTS = {  # metadata key -> (its budget option, what it counts, its unit after a number)
    "gflops": ("--max-gflops", "GFLOPs", " GFLOPs"),
    "params_m": ("--max-params", "params", "M params"),
}


def check_budget(
    model_ids: list[str], cost: np.ndarray, max_models: int | None, limit: tuple[str, float] | None
) -> None:
    """A budget no candidate meets would answer with classes and no models: refuse it in one line,
    naming the smallest model's figure. ``limit`` is ``(metadata key, most)`` of one cost budget;
    models whose cost is unknown (0) count as free against it, and one warning names them."""
    if max_models is not None and max_models < 1:
        raise MllzooError(f"--max-models must be at least 1, not {max_models}")
    if limit is None:
        return
    key, most = limit
    option, what, unit = COSTS[key]
    if not most > 0:
        raise MllzooError(f"{option} must be a positive number of {what}, not {most:g}")
    unjudged = [m for m, value in zip(model_ids, cost) if not value]
    if unjudged:
        warn(
            f"{option} cannot judge {len(unjudged)} model(s) whose {what} are unknown, "
            f"so they count as 0 against it: {', '.join(unjudged[:5])}"
            + (f" and {len(unjudged) - 5} more" if len(unjudged) > 5 else "")
        )
    cheapest = int(np.argmin(cost))
    if cost[cheapest] > most:
        raise MllzooError(
            f"no candidate model fits {option} {most:g}: the smallest, "
            f"{model_ids[cheapest]}, needs {cost[cheapest]:g}{unit}"
        )


def recommend(
    classes: list[str] | str | Path,
    domain: str | None = None,
    task: str | None = None,
    k: int = K,
    alpha: float = ALPHA,
    registry: Registry | str | Path | None = None,
    embedder: str | None = None,
    captioner: str | None = None,
    top_nodes: int = TOP_NODES,
    max_models: int | None = MAX_MODELS,
    max_gflops: float | None = None,
    models: list[str] | None = None,
    family: str | None = None,
    include_uninstalled: bool = False,
    skip_damaged: bool = False,
    cache: bool = True,
    runnable: bool = False,
    max_params: float | None = None,
) -> Recommendation:
    """Select models for ``classes`` (a list, or a class file) from the registry's labels: per class
    its top ``k``, among at most ``max_models`` in all (None: no limit).

    The candidates are the labeled models (``models`` when given, of ``family`` when given) whose plugin
    is installed here; ``include_uninstalled`` admits the others, which ``ensemble`` cannot load. Where no
    model plugin is installed at all (a recommend-only install) every label is a candidate, unless
    ``runnable`` (the caller will run the models, as ``predict`` does).
    A damaged label is an error, unless ``skip_damaged``: then it is left out with one warning.
    ``cache=False`` neither reads nor fills the user's embedding cache (:mod:`mllzoo.store.usercache`).
    """
    from mllzoo.selection.candidates import candidate_models, warn_uninstalled

    names = read_classes(classes) if isinstance(classes, (str, Path)) else list(classes)
    if not isinstance(registry, Registry):
        registry = Registry(registry or default_registry_path(), create=False, write=False)
    selector = Selector(registry, embedder, captioner, cache=EmbeddingCache() if cache else None)
    pool = candidate_models(
        selector.model_ids, registry, models, family, include_uninstalled, runnable
    )
    result = selector.recommend(
        names,
        domain,
        task,
        k=k,
        alpha=alpha,
        top_nodes=top_nodes,
        max_models=max_models,
        max_gflops=max_gflops,
        models=pool,
        skip_damaged=skip_damaged,
        max_params=max_params,
    )
    if include_uninstalled and not runnable:  # a caller that runs them gets the ensemble's error
        warn_uninstalled(registry, result.models)
    weak = [name for name, flagged in zip(names, result.weak) if flagged]
    if weak:
        warn(f"{len(weak)} class(es) match no concept of the graph well: {', '.join(weak[:5])}")
    return result
