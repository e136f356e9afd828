"""Model selection from class names alone (MLL step 3). Pure numpy: no torch, no SQLite.

Each class is matched to its ``top_nodes`` most similar graph nodes (weights ``z``, normalised per
class). Every model's label is replayed as a classification among the union of matched nodes,
giving a per-node F1; a class scores ``p(m, y) = sum z * F1``, smoothed towards the model's mean
over the other classes, ``r = alpha * p + (1 - alpha) * mean``. Each class keeps its top-k models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mllzoo import labels
from mllzoo.defaults import ALPHA, TOP_NODES, K


@dataclass
class Match:
    nodes: np.ndarray  # [classes, top_nodes] node indices, best first
    weights: np.ndarray  # [classes, top_nodes], each row sums to 1
    similarity: np.ndarray  # [classes, top_nodes] cosine similarity of those nodes
    exact: dict[int, int] = field(default_factory=dict)  # classes named by a concept id -> its node


@dataclass
class Selection:
    scores: np.ndarray  # [models, classes] smoothed scores r
    chosen: list[list[int]]  # per class, indices of its models, best first
    match: Match

    @property
    def models(self) -> list[int]:
        """The union of chosen models, in first-use order."""
        return list(dict.fromkeys(m for per_class in self.chosen for m in per_class))


def match_nodes(
    description_vectors: np.ndarray, node_vectors: np.ndarray, top_nodes: int = TOP_NODES
) -> Match:
    """Top nodes per class by cosine similarity; negative similarities carry no weight."""
    similarity = description_vectors @ node_vectors.T
    top_nodes = min(top_nodes, similarity.shape[1])
    nodes = labels.rank_images(similarity, top_nodes)
    matched = np.take_along_axis(similarity, nodes, axis=1)
    z = np.clip(matched, 0, None)
    sums = z.sum(axis=1, keepdims=True)
    weights = np.where(sums > 0, z / np.where(sums > 0, sums, 1), 1.0 / top_nodes)
    return Match(nodes, weights, matched)


def pin(match: Match, exact: dict[int, int]) -> Match:
    """Classes named by a concept's id (``exact``: class -> node) match exactly that concept: it comes
    first with similarity 1 and all the weight; the other matched nodes stay, weightless."""
    for y, n in exact.items():
        similarity = dict(zip(match.nodes[y].tolist(), match.similarity[y].tolist()))
        similarity[n] = 1.0
        others = [m for m in match.nodes[y].tolist() if m != n][: match.nodes.shape[1] - 1]
        match.nodes[y] = [n, *others]
        match.similarity[y] = [similarity[m] for m in match.nodes[y].tolist()]
        match.weights[y] = 0.0
        match.weights[y, 0] = 1.0
    match.exact = dict(exact)
    return match


Replay = Callable[[np.ndarray], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]]
"""From a sorted node subset, each model's TP, FP and FN on those nodes, in subset order
(:func:`mllzoo.labels.replayer` for labels in memory; the registry streams them, reading only the
subset's part of each label: :func:`mllzoo.selection.recommend.stored_replay`)."""


def class_scores(
    counts: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], match: Match
) -> np.ndarray:
    """``p[m, y]``: the z-weighted F1 of each model on each class's nodes, among all matched nodes.

    ``counts`` are the models' TP, FP, FN on ``np.unique(match.nodes)`` (a :data:`Replay`'s answer) and
    may stream: a model costs three numbers per matched node, so memory does not grow with the
    labels' samples, only with the number of models.
    """
    subset = np.unique(match.nodes)
    node_f1 = np.array([labels.f1(tp, fp, fn) for tp, fp, fn in counts]).reshape(-1, len(subset))
    return (node_f1[:, np.searchsorted(subset, match.nodes)] * match.weights).sum(axis=2)


def smooth(p: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """``alpha * p + (1 - alpha) * mean of the model's p over the other classes``."""
    n_classes = p.shape[1]
    if n_classes < 2:
        return p.copy()
    others = (p.sum(axis=1, keepdims=True) - p) / (n_classes - 1)
    return alpha * p + (1 - alpha) * others


def choose(scores: np.ndarray, k: int = K, allowed: np.ndarray | None = None) -> list[list[int]]:
    """Per class, the ``k`` best models (among ``allowed`` when given), best first; ties by index."""
    masked = scores if allowed is None else np.where(allowed[:, None], scores, -np.inf)
    k = min(k, int(np.isfinite(masked[:, 0]).sum()) if len(masked) else 0)
    order = np.argsort(-masked, axis=0, kind="stable")[:k]
    return [order[:, y].tolist() for y in range(scores.shape[1])]


Limits = Sequence[tuple[np.ndarray, float]]  # (each model's cost, the most their sum may be)


def choose_within_budget(
    scores: np.ndarray, k: int, max_models: int | None, limits: Limits = ()
) -> list[list[int]]:
    """Greedily grow the set of usable models by the gain in summed top-k scores while it fits at
    most ``max_models`` and every limit (GFLOPs, params).

    Every candidate's gain is computed at once: adding a model raises a class's top-k sum by its
    score where a top-k slot is still empty, else by how far it passes the current k-th best, so
    each step costs one pass over the scores, not one top-k sort per candidate (1,000 models)."""
    unconstrained = choose(scores, k)
    used = {m for per_class in unconstrained for m in per_class}
    if _fits(used, max_models, limits):
        return unconstrained
    usable = np.isfinite(scores).all(axis=1)
    allowed = np.zeros(len(scores), bool)
    top = np.full((k, scores.shape[1]), -np.inf)  # per class, the allowed models' top k, best first
    spent = [0.0 for _ in limits]
    while max_models is None or allowed.sum() < max_models:
        fits = usable & ~allowed
        for (cost, most), used_cost in zip(limits, spent):
            fits &= used_cost + cost <= most
        candidates = np.flatnonzero(fits)
        if not len(candidates):
            break
        kth = top[-1]
        gains = np.where(
            np.isinf(kth), scores[candidates], np.maximum(scores[candidates] - kth, 0.0)
        ).sum(axis=1)
        best = int(np.argmax(gains))  # the first of equal gains: the lowest model index
        if allowed.any() and gains[best] <= 0:  # nothing helps
            break
        m = int(candidates[best])
        allowed[m] = True
        top = -np.sort(-np.vstack([top, scores[m]]), axis=0)[:k]
        spent = [used_cost + float(cost[m]) for (cost, _), used_cost in zip(limits, spent)]
    if not allowed.any():
        return [[] for _ in range(scores.shape[1])]
    return choose(scores, k, allowed)


def _fits(models: set, max_models: int | None, limits: Limits) -> bool:
    return (max_models is None or len(models) <= max_models) and all(
        float(sum(cost[m] for m in models)) <= most for cost, most in limits
    )


def select(
    description_vectors: np.ndarray,
    node_vectors: np.ndarray,
    replay: Replay,
    k: int = K,
    alpha: float = ALPHA,
    top_nodes: int = TOP_NODES,
    max_models: int | None = None,
    limits: Limits = (),
    exact: dict[int, int] | None = None,
) -> Selection:
    """The whole of step 3: match, score, smooth, choose (within a budget when one is given);
    ``exact`` pins classes named by a concept id to that concept (:func:`pin`)."""
    match = pin(match_nodes(description_vectors, node_vectors, top_nodes), exact or {})
    predictions = replay(np.unique(match.nodes))
    scores = smooth(class_scores(predictions, match), alpha)
    return Selection(scores, choose_models(scores, k, max_models, limits), match)


def choose_models(
    scores: np.ndarray, k: int = K, max_models: int | None = None, limits: Limits = ()
) -> list[list[int]]:
    """Per class, its top-k models, within the budget when one is given (``limits``: each model's
    cost and the most their sum may be); a model whose scores are ``-inf`` (its label was skipped)
    is never chosen."""
    if max_models is None and not limits:
        return choose(scores, k)
    limits = [(np.nan_to_num(np.asarray(cost, float)), most) for cost, most in limits]
    return choose_within_budget(scores, k, max_models, limits)
