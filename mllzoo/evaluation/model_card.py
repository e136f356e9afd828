"""A model's card: what the catalogue and the registry know about it, and what its label says it is good at.

A concept's accuracy is the share of the node's readable samples whose own node the model ranks first
among all nodes of the graph: the zero-shot accuracy of the model on that concept against the whole
graph, read straight from the label's ranks. ``mllzoo models show ID`` prints the card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mllzoo import labels
from mllzoo.errors import MllzooError, did_you_mean
from mllzoo.store.registry import Registry

if TYPE_CHECKING:
    from mllzoo.graph.concept_graph import Graph

MIN_SAMPLES = (
    3  # a concept with fewer readable samples says too little to rank it strongest or weakest
)


def concept_accuracy(
    label: labels.Label, samples: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per node: the share of its readable samples ranked first (NaN without any), and how many it has."""
    readable = label.rank >= 0
    nodes = samples[readable, 0]
    counts = np.bincount(nodes, minlength=n_nodes)
    first = np.bincount(nodes[label.rank[readable] == 0], minlength=n_nodes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, first / np.maximum(counts, 1), np.nan), counts


def model_card(registry: Registry, model_id: str, top: int = 5, graph: Graph | None = None) -> dict:
    """Metadata, plugin, whether it is installed and labeled, and from its label on the current graph its
    coverage and its strongest and weakest concepts; a caller that holds the graph (with its samples)
    passes it, so it is not read again."""
    from mllzoo.graph.concept_graph import load_graph
    from mllzoo.models.status import model_status
    from mllzoo.store.user_models import known_models

    catalog = known_models()
    row = registry.model(model_id)
    if model_id not in catalog and row is None:
        known = sorted(set(catalog) | {m["id"] for m in registry.models()})
        raise MllzooError(f"unknown model id {model_id!r}{did_you_mean(model_id, known)}")
    entry = catalog.get(model_id)
    card: dict[str, Any]
    if entry is not None:
        card = {
            "id": model_id,
            "family": entry.spec.family,
            "plugin": entry.plugin,
            "plugin_version": entry.plugin_version,
            "installed": True,
            "metadata": entry.spec.metadata(),
        }
    else:
        assert row is not None  # known to the catalogue or the registry, checked above
        card = {
            "id": model_id,
            "family": row["family"],
            "plugin": row["plugin"],
            "plugin_version": row["plugin_version"],
            "installed": False,
            "metadata": row["metadata"],
        }
    status = model_status(model_id, card["plugin"], catalog)
    card["plugin_installed"] = status.plugin_installed
    card["availability"] = status.text()
    graph_id = registry.current_graph_id()
    card["labeled"] = graph_id is not None and model_id in registry.labeled_model_ids(graph_id)
    if not card["labeled"]:
        return card
    graph = graph or load_graph(registry, images=False)
    label, meta = registry.label(model_id, graph.id, graph.samples)
    accuracy, counts = concept_accuracy(label, graph.samples, len(graph.nodes))
    readable = label.rank >= 0
    card["label"] = {
        "graph": graph.id,
        "created": registry.label_created(model_id, graph.id),
        "depth": meta.get("depth"),
        "samples": int(len(label.rank)),
        "readable_samples": int(readable.sum()),
        "ranked_first": round(
            float((label.rank[readable] == 0).mean()) if readable.any() else 0.0, 6
        ),
        "origin": _origin(meta),
    }
    ranked = [
        n
        for n in np.argsort(-np.nan_to_num(accuracy, nan=-1), kind="stable")
        if counts[n] >= MIN_SAMPLES
    ]

    def concept(n: int) -> dict:
        node = graph.nodes[n]
        return {
            "synset": node.synset,
            "name": node.name,
            "accuracy": round(float(accuracy[n]), 6),
            "samples": int(counts[n]),
        }

    card["strongest"] = [concept(n) for n in ranked[:top]]
    card["weakest"] = [concept(n) for n in ranked[::-1][:top]]
    return card


def _origin(meta: dict) -> str | None:
    """The label index a pulled label came from (its URL, without credentials); ``None`` otherwise."""
    from mllzoo.labeling.transfer import ORIGIN

    origin = meta.get(ORIGIN)
    return origin.get("index") if isinstance(origin, dict) else None
