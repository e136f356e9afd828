"""The Python API over selection and reuse: ``mllzoo.recommend(classes)`` and its ensemble.

It reads everything from the registry (graph, caption embeddings, labels), so a recommendation
needs no images and no model weights; only :meth:`Recommendation.ensemble` loads models.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import labels
from .classes import read_classes
from .descriptions import get_captioner
from .errors import MllzooError
from .graph import Graph, load_graph
from .registry import Registry, default_registry_path
from .reuse import Ensemble
from .selection import ALPHA, TOP_NODES, Selection, select
from .text import embed, get_embedder, node_vectors

WEAK_MATCH = 0.25  # below this best-node similarity a class matches no concept well


@dataclass
class Recommendation:
    classes: list[str]
    model_ids: list[str]
    metadata: dict[str, dict]
    selection: Selection
    graph: Graph
    registry: Registry
    domain: str | None = None
    task: str | None = None

    @property
    def models(self) -> list[str]:
        return [self.model_ids[m] for m in self.selection.models]

    def votes(self) -> dict[str, np.ndarray]:
        """Per selected model, in :attr:`models` order, the bool mask of the classes it was chosen for."""
        return {model_id: np.array([self.model_ids.index(model_id) in chosen for chosen in self.selection.chosen])
                for model_id in self.models}

    def to_dict(self) -> dict:
        """The JSON shape of ``mllzoo recommend --json``: per class its models and matched nodes, and the models to load."""
        sel = self.selection
        rows = []
        for y, name in enumerate(self.classes):
            rows.append({
                "name": name,
                "models": [{"id": self.model_ids[m], "score": round(float(sel.scores[m, y]), 6)} for m in sel.chosen[y]],
                "nodes": [{"synset": self.graph.nodes[n].synset, "weight": round(float(w), 6)}
                          for n, w in zip(sel.match.nodes[y], sel.match.weights[y])],
            })
        return {"classes": rows, "models": self.models}

    def ensemble(self, device: str = "auto", batch_size: int = 64) -> Ensemble:
        """The reuse ensemble: each selected model votes for the classes it was chosen for."""
        from .catalog import discover_models

        catalog = discover_models()
        missing = [m for m in self.models if m not in catalog]
        if missing:
            raise MllzooError(f"selected model(s) not installed: {', '.join(missing)} (mllzoo install the plugin)")
        members = self.votes()
        return Ensemble(self.classes, members, {m: catalog[m].spec for m in members}, self.domain, device, batch_size)


def read_labels(registry: Registry, graph: Graph) -> Iterator[tuple[str, labels.Label]]:
    """``(model id, label)`` for every complete label on the graph, in model-id order, as SQLite returns them."""
    for model_id, arrays, meta in registry.iter_labels(graph.id):
        yield model_id, labels.Label.from_arrays(arrays, meta)


class Selector:
    """The registry's graph and caption embeddings, loaded once for many selections.

    Each selection streams the labels from the registry and replays each before the next is read,
    so a one-off ``recommend`` never holds a thousand labels in memory.
    ``keep_labels=True`` keeps them after the first selection, for callers that select many
    times over a small registry (``mllzoo bench``).
    """

    def __init__(self, registry: Registry, embedder: str | None = None, captioner: str | None = None,
                 keep_labels: bool = False):
        self.registry = registry
        self.graph = load_graph(registry, images=False)
        self.model_ids = sorted(registry.labeled_model_ids(self.graph.id))
        if not self.model_ids:
            raise MllzooError(f"{registry.path} has no labeled models: install a plugin and run `mllzoo register`")
        self.keep_labels = keep_labels
        self._labels: list[labels.Label] | None = None
        self.embedder = get_embedder(embedder)
        glosses = {node.name.lower(): node.definition for node in self.graph.nodes}
        self.captioner = get_captioner(captioner, registry, glosses)
        self.node_vectors = node_vectors(registry, self.embedder, self.graph)
        self.metadata = {row["id"]: row["metadata"] for row in registry.models()}
        self._class_vectors: dict[tuple, np.ndarray] = {}

    @property
    def labels(self) -> list[labels.Label]:
        """The labels of :attr:`model_ids`, in that order."""
        return self._labels if self._labels is not None else list(self._iter_labels())

    def _iter_labels(self) -> Iterator[labels.Label]:
        if self._labels is not None:
            yield from self._labels
            return
        known, loaded, seen = set(self.model_ids), [], 0
        for model_id, label in read_labels(self.registry, self.graph):
            if model_id not in known:  # labeled since the selector opened: not part of this selection
                continue
            seen += 1
            if self.keep_labels:
                loaded.append(label)
            yield label
        if seen != len(self.model_ids):
            raise MllzooError(f"labels were removed from {self.registry.path} while reading them; run the command again")
        if self.keep_labels:
            self._labels = loaded

    def class_vectors(self, names: list[str], domain: str | None, task: str | None) -> np.ndarray:
        """One unit vector per class: the mean embedding of its descriptions."""
        key = (tuple(names), domain, task)
        if key not in self._class_vectors:
            descriptions = self.captioner.describe(names, domain, task)
            flat = [text for texts in descriptions for text in texts]
            vectors = embed(self.registry, self.embedder, flat)
            bounds = np.cumsum([0] + [len(texts) for texts in descriptions])
            means = np.stack([vectors[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
            self._class_vectors[key] = means / np.linalg.norm(means, axis=1, keepdims=True)
        return self._class_vectors[key]

    def recommend(self, names: list[str], domain: str | None = None, task: str | None = None, k: int = 1,
                  alpha: float = ALPHA, top_nodes: int = TOP_NODES, max_models: int | None = None,
                  max_gflops: float | None = None, models: list[str] | None = None) -> Recommendation:
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
        class_vectors = self.class_vectors(names, domain, task)
        cost = np.array([self.metadata.get(m, {}).get("gflops") or 0.0 for m in model_ids])
        wanted = set(keep)
        chosen_labels = (label for i, label in enumerate(self._iter_labels()) if i in wanted)
        selection = select(class_vectors, self.node_vectors, chosen_labels, self.graph.samples,
                           k=k, alpha=alpha, top_nodes=top_nodes, cost=cost, max_models=max_models,
                           max_gflops=max_gflops)
        return Recommendation(list(names), model_ids, self.metadata, selection, self.graph, self.registry,
                              domain, task)


def recommend(classes: list[str] | str | Path, domain: str | None = None, task: str | None = None, k: int = 1,
              alpha: float = ALPHA, registry: Registry | str | Path | None = None, embedder: str | None = None,
              captioner: str | None = None, top_nodes: int = TOP_NODES, max_models: int | None = None,
              max_gflops: float | None = None, models: list[str] | None = None) -> Recommendation:
    """Select models for ``classes`` (a list, or a class file) from the registry's labels."""
    names = read_classes(classes) if isinstance(classes, (str, Path)) else list(classes)
    if not isinstance(registry, Registry):
        registry = Registry(registry or default_registry_path(), create=False)
    selector = Selector(registry, embedder, captioner)
    result = selector.recommend(names, domain, task, k=k, alpha=alpha, top_nodes=top_nodes,
                                max_models=max_models, max_gflops=max_gflops, models=models)
    best = result.selection.match.similarity[:, 0]
    weak = [name for name, b in zip(names, best) if b < WEAK_MATCH]
    if weak:
        print(f"Warning: {len(weak)} class(es) match no concept of the graph well: {', '.join(weak[:5])}",
              file=sys.stderr)
    return result
