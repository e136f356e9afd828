"""Selection math against hand-computed cases: matching weights, F1, smoothing, top-k, budget."""

from __future__ import annotations

import numpy as np
import pytest

import reference
from mllzoo import labels
from mllzoo.selection import scoring as selection


def worked_example_label():
    # docs/design.md's worked example: nodes a, b, c; samples a1, a2, b1, b2, c1
    similarity = np.array(
        [[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.1, 0.9, 0.2], [0.0, 0.7, 0.3], [0.8, 0.1, 0.3]],
        np.float32,
    )
    samples = np.array([[0, 0], [0, 1], [1, 2], [1, 3], [2, 4]], np.int32)
    rank = labels.own_ranks(similarity, samples[:, 0], samples[:, 1])
    return reference.label_from_ranking(
        labels.rank_images(similarity, 3), samples, rank, 3
    ), samples


def test_design_worked_example_scores():
    label, samples = worked_example_label()
    match = selection.Match(
        nodes=np.array([[0, 1], [2, 1]]),
        weights=np.array([[0.8, 0.5], [0.9, 0.3]]) / np.array([[1.3], [1.2]]),
        similarity=np.array([[0.8, 0.5], [0.9, 0.3]]),
    )
    p = selection.class_scores(labels.replayer([label], samples, 3)(np.unique(match.nodes)), match)
    assert p[0] == pytest.approx([0.615385 * 0.5 + 0.384615 * 0.8, 0.75 * 0 + 0.25 * 0.8], abs=1e-6)
    r = selection.smooth(p, 0.7)
    assert r[0] == pytest.approx([0.7 * p[0, 0] + 0.3 * p[0, 1], 0.7 * p[0, 1] + 0.3 * p[0, 0]])
    assert r[0] == pytest.approx([0.491, 0.325], abs=0.0005)  # the figures docs/design.md gives


def test_match_nodes_normalises_weights_and_ignores_negative_similarity():
    classes = np.array([[1.0, 0.0], [0.0, 1.0]])
    nodes = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    match = selection.match_nodes(classes, nodes, top_nodes=3)
    assert match.nodes[0].tolist() == [0, 1, 2]
    assert match.weights[0] == pytest.approx([1 / 1.6, 0.6 / 1.6, 0.0])
    assert match.weights.sum(axis=1) == pytest.approx([1, 1])


def test_smoothing_with_one_class_is_identity():
    p = np.array([[0.3], [0.6]])
    assert np.array_equal(selection.smooth(p), p)


def test_top_k_per_class():
    scores = np.array([[0.9, 0.1], [0.5, 0.7], [0.4, 0.8]])
    assert selection.choose(scores, 1) == [[0], [2]]
    assert selection.choose(scores, 2) == [[0, 1], [2, 1]]
    assert selection.choose(scores, 5) == [[0, 1, 2], [2, 1, 0]]


def test_budget_picks_best_selection_that_fits():
    scores = np.array([[0.9, 0.1, 0.2], [0.5, 0.7, 0.6], [0.4, 0.8, 0.1]])
    cost = np.array([10.0, 1.0, 5.0])
    assert selection.choose_within_budget(scores, 1, None) == [[0], [2], [1]]
    # one model only: model 1 scores 0.5 + 0.7 + 0.6 = 1.8, better than 0 (1.2) or 2 (1.3)
    assert selection.choose_within_budget(scores, 1, 1) == [[1], [1], [1]]
    # GFLOPs 6: models 1 and 2 fit together (6), model 0 does not
    assert selection.choose_within_budget(scores, 1, None, [(cost, 6.0)]) == [[1], [2], [1]]
    assert selection.choose_within_budget(scores, 1, None, [(cost, 0.5)]) == [[], [], []]
    # GFLOPs 6 and params 5 together: models 1 and 2 fit the GFLOPs (6) but not the params (6)
    params = np.array([1.0, 5.0, 1.0])
    both = [(cost, 6.0), (params, 5.0)]
    assert selection.choose_within_budget(scores, 1, None, both) == [[1], [1], [1]]
    assert selection.choose_models(scores, 1, None, both) == [[1], [1], [1]]


def greedy_by_sorting(scores, k, max_models, limits):
    """The budget's greedy written the slow, obvious way: each candidate's summed top-k scores by a
    full sort (empty slots count 0), the first best gain kept, stop when nothing fits or helps."""

    def value(allowed):
        top = np.sort(np.where(allowed[:, None], scores, -np.inf), axis=0)[::-1][:k]
        return float(np.where(np.isfinite(top), top, 0).sum())

    def fits(models):
        return (max_models is None or len(models) <= max_models) and all(
            sum(cost[m] for m in models) <= most for cost, most in limits
        )

    allowed, total = np.zeros(len(scores), bool), 0.0
    while True:
        best, best_gain = None, -np.inf
        for m in np.flatnonzero(~allowed & np.isfinite(scores).all(axis=1)):
            if fits({*np.flatnonzero(allowed), m}):
                trial = allowed.copy()
                trial[m] = True
                if value(trial) - total > best_gain + 1e-12:
                    best, best_gain = m, value(trial) - total
        if best is None or (allowed.any() and best_gain <= 0):
            return allowed
        allowed[best], total = True, total + best_gain


@pytest.mark.parametrize("seed", range(40))
def test_budget_greedy_matches_the_obvious_one_on_random_scores(seed):
    """Negative and equal scores, skipped models (-inf), k above the budget, a cost limit."""
    rng = np.random.default_rng(seed)
    n_models, n_classes = rng.integers(1, 9), rng.integers(1, 12)
    scores = rng.choice([-0.2, 0.0, 0.3, 0.5, 0.9], size=(n_models, n_classes)) + (
        rng.random((n_models, n_classes)) * 0.01 * (seed % 2)
    )
    scores[rng.random(n_models) < 0.2] = -np.inf
    k, most = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    cost = rng.random(n_models) * 3
    limits = [(cost, 2.5)] if seed % 3 == 0 else []
    chosen = selection.choose_within_budget(scores, k, most, limits)
    used = {m for per_class in selection.choose(scores, k) for m in per_class}
    if len(used) <= most and all(cost[list(used)].sum() <= 2.5 for cost, _ in limits):
        return  # the unconstrained choice fits: no greedy at all
    allowed = greedy_by_sorting(scores, k, most, limits)
    expected = selection.choose(scores, k, allowed) if allowed.any() else [[]] * n_classes
    assert chosen == expected


def test_select_end_to_end_prefers_the_model_that_is_right_on_the_class_nodes():
    rng = np.random.default_rng(0)
    n_nodes, n_images = 6, 60
    truth = np.repeat(np.arange(n_nodes), n_images // n_nodes)
    samples = np.stack([truth, np.arange(n_images)], 1).astype(np.int32)
    good_on_low = rng.normal(size=(n_images, n_nodes))
    good_on_low[np.arange(n_images), truth] += np.where(truth < 3, 5.0, -5.0)
    good_on_high = rng.normal(size=(n_images, n_nodes))
    good_on_high[np.arange(n_images), truth] += np.where(truth >= 3, 5.0, -5.0)
    model_labels = [
        reference.label_from_ranking(
            labels.rank_images(s, 6), samples, labels.own_ranks(s, truth, np.arange(n_images)), 6
        )
        for s in (good_on_low, good_on_high)
    ]
    node_vectors = np.eye(n_nodes)
    class_vectors = np.eye(n_nodes)[[1, 4]]
    chosen = selection.select(
        class_vectors,
        node_vectors,
        labels.replayer(model_labels, samples, n_nodes),
        k=1,
        top_nodes=1,
    ).chosen
    assert chosen == [[0], [1]]
