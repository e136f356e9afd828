"""The Python API over selection and reuse: ``mllzoo.recommend(classes)`` and its ensemble.

It reads everything from the registry (graph, caption embeddings, labels), so a recommendation
needs no images and no model weights; only :meth:`Recommendation.ensemble` loads models.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import labels
from .classes import read_classes
from .descriptions import get_captioner
from .errors import MllzooError
from .graph import Graph, load_graph
from .registry import Registry, default_registry_path
from .reuse import Ensemble
from .selection import ALPHA, TOP_NODES, Selection, select
from .text import embed_cached, get_embedder

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

    def to_dict(self) -> dict:
        """The JSON shape of ``mllzoo recommend --json`` (DESIGN.md)."""
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
        members = {}
        for model_id in self.models:
            m = self.model_ids.index(model_id)
            members[model_id] = np.array([m in chosen for chosen in self.selection.chosen])
        return Ensemble(self.classes, members, {m: catalog[m].spec for m in members}, self.domain, device, batch_size)


def load_labels(registry: Registry, graph: Graph) -> tuple[list[str], list[labels.Label]]:
    """Every complete label on the graph, in model-id order."""
    found = registry.labels_on(graph.id)
    ids = sorted(found)
    return ids, [labels.Label.from_arrays(*found[m]) for m in ids]


def recommend(classes: list[str] | str | Path, domain: str | None = None, task: str | None = None, k: int = 1,
              alpha: float = ALPHA, registry: Registry | str | Path | None = None, embedder: str | None = None,
              captioner: str | None = None, top_nodes: int = TOP_NODES, max_models: int | None = None,
              max_gflops: float | None = None, models: list[str] | None = None) -> Recommendation:
    """Select models for ``classes`` (a list, or a class file) from the registry's labels."""
    names = read_classes(classes) if isinstance(classes, (str, Path)) else list(classes)
    if not names:
        raise MllzooError("no classes given")
    if k < 1:
        raise MllzooError("-k must be at least 1")
    if not 0 <= alpha <= 1:
        raise MllzooError("--alpha must be between 0 and 1")
    if not isinstance(registry, Registry):
        registry = Registry(registry or default_registry_path(), create=False)
    graph = load_graph(registry)
    model_ids, model_labels = load_labels(registry, graph)
    if models is not None:
        unknown = sorted(set(models) - set(model_ids))
        if unknown:
            raise MllzooError(f"not labeled in this registry: {', '.join(unknown)}")
        keep = [model_ids.index(m) for m in models]
        model_ids, model_labels = [model_ids[i] for i in keep], [model_labels[i] for i in keep]
    if not model_ids:
        raise MllzooError(f"{registry.path} has no labeled models: install a plugin and run `mllzoo register`")
    text_embedder = get_embedder(embedder)
    glosses = {node.name.lower(): node.definition for node in graph.nodes}
    descriptions = get_captioner(captioner, registry, glosses).describe(names, domain, task)
    flat = [text for texts in descriptions for text in texts]
    # a paid API's answers are all kept; a local embedder's class texts are cheap to recompute
    remote = getattr(text_embedder, "remote", False)
    vectors = embed_cached(registry, text_embedder, flat) if remote else text_embedder.embed(flat)
    class_vectors, start = [], 0
    for texts in descriptions:
        mean = vectors[start:start + len(texts)].mean(axis=0)
        class_vectors.append(mean / np.linalg.norm(mean))
        start += len(texts)
    node_vectors = embed_cached(registry, text_embedder, graph.captions)
    metadata = {row["id"]: row["metadata"] for row in registry.models()}
    cost = np.array([metadata.get(m, {}).get("gflops") or 0.0 for m in model_ids])
    selection = select(np.stack(class_vectors), node_vectors, model_labels, graph.samples, k=k, alpha=alpha,
                       top_nodes=top_nodes, cost=cost, max_models=max_models, max_gflops=max_gflops)
    best = (np.stack(class_vectors) @ node_vectors.T).max(axis=1)
    weak = [name for name, b in zip(names, best) if b < WEAK_MATCH]
    if weak:
        print(f"Warning: {len(weak)} class(es) match no concept of the graph well: {', '.join(weak[:5])}",
              file=sys.stderr)
    return Recommendation(names, model_ids, metadata, selection, graph, registry, domain, task)
