"""The compact label against the dense computation it replaces."""

from __future__ import annotations

import numpy as np

import reference
from mllzoo import labels


def synthetic(n_nodes=60, n_images=300, seed=0, m=8):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_nodes, n_images)
    similarity = rng.normal(size=(n_images, n_nodes)).astype(np.float32)
    similarity[np.arange(n_images), truth] += rng.normal(
        1.5, 1.0, n_images
    )  # a model that is right often
    samples = np.stack([truth, np.arange(n_images)], 1).astype(np.int32)
    order = np.lexsort((samples[:, 1], samples[:, 0]))
    samples = samples[order]
    return similarity, samples, make_label(similarity, samples, m)


def make_label(similarity, samples, m):
    rank = labels.own_ranks(similarity, samples[:, 0], samples[:, 1])
    return reference.label_from_ranking(
        labels.rank_images(similarity, m), samples, rank, similarity.shape[1]
    )


def test_rank_images_and_own_ranks():
    sim = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.8]], np.float32)
    assert labels.rank_images(sim, 2).tolist() == [[1, 2], [2, 0]]
    assert labels.own_ranks(sim, np.array([2, 1]), np.array([0, 1])).tolist() == [1, 2]


def test_replay_equals_dense_when_lists_are_complete():
    similarity, samples, _ = synthetic(m=60)
    label = make_label(similarity, samples, 60)
    rng = np.random.default_rng(1)
    for _ in range(20):
        subset = rng.choice(60, rng.integers(2, 30), replace=False)
        got = labels.replay(label, samples, subset)
        want = reference.dense_replay(similarity, samples, subset, 60)
        for g, w in zip(got, want):
            assert np.array_equal(g, w)


def test_truncated_label_agrees_with_dense_on_most_decisions():
    similarity, samples, label = synthetic(m=8)
    rng = np.random.default_rng(2)
    agree = total = 0
    for _ in range(30):
        subset = rng.choice(60, 10, replace=False)
        own, predicted = labels.restricted_predictions(label, samples, subset)
        dense_own, dense_predicted = reference.dense_predictions(similarity, samples, subset, 60)
        assert own.tolist() == dense_own.tolist()
        agree += int(((predicted == own) == (dense_predicted == own)).sum())
        total += len(own)
    assert total > 500 and agree / total >= 0.95


def test_depth_within_fills_the_budget_from_the_short_lists_up():
    need = np.array([0, 1, 5, 100])
    assert labels.depth_within(need, 3.0) == 6  # (0 + 1 + 5 + 6) / 4 = 3; depth 7 averages 3.25
    assert labels.depth_within(need, 1000.0) == 100  # everything fits: no list is cut
    assert labels.depth_within(need, 0.0) == 1
    assert labels.depth_within(np.zeros(0, np.int64), 3.0) == 1
    # 64 MB over 9,000 x 75 samples is ~94.8 bytes; int16 rank and length leave ~45 two-byte entries
    assert 45 < labels.budget_entries(9_000) < 46


def test_lists_cut_at_different_depths_replay_exactly_wherever_decided():
    """Chunks fitted to the budget cut their images' lists at different depths; replay reads each
    image's own length, so every sample ranked within its list, or with a subset node in it, is exact."""
    similarity, samples, _ = synthetic(m=60)
    rank = labels.own_ranks(similarity, samples[:, 0], samples[:, 1])
    need = labels.image_needs(len(similarity), samples[:, 1], rank)
    halves = [
        labels.cut_lists(labels.rank_images(similarity[rows], depth), need[rows], 60)
        for rows, depth in ((slice(0, 150), 3), (slice(150, 300), 20))
    ]
    label = labels.Label(
        np.concatenate([h[0] for h in halves]),
        np.concatenate([h[1] for h in halves]),
        rank.astype(np.int16),
        60,
    )
    assert label.lengths[:150].max() == 3 and label.lengths[150:].max() == 20
    rng = np.random.default_rng(3)
    for _ in range(20):
        subset = rng.choice(60, 10, replace=False)
        own, predicted = labels.restricted_predictions(label, samples, subset)
        _, dense = reference.dense_predictions(similarity, samples, subset, 60)
        r = labels.Restriction.of(samples, subset, 60)
        ranked = label.rank[r.sample_idx]
        within = ranked <= label.lengths[r.image]
        listed = [
            np.isin(
                label.lists[label.offsets[i] : label.offsets[i] + min(k, label.lengths[i])], subset
            ).any()
            for i, k in zip(r.image, ranked)
        ]
        decided = within | np.array(listed)
        assert decided.any() and not decided.all()
        assert np.array_equal(predicted[decided], dense[decided])


def test_design_worked_example():
    # docs/design.md, "Worked example": nodes a, b, c; samples a1, a2 (a), b1, b2 (b), c1 (c);
    # restricted to V = {a, b, c}
    # a1->a, a2->b, b1->b, b2->b, c1->a gives F1 a 0.50, b 0.80, c 0.
    a, b, c = 0, 1, 2
    similarity = np.array(
        [[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.1, 0.9, 0.2], [0.0, 0.7, 0.3], [0.8, 0.1, 0.3]],
        np.float32,
    )
    samples = np.array([[a, 0], [a, 1], [b, 2], [b, 3], [c, 4]], np.int32)
    label = make_label(similarity, samples, 3)
    tp, fp, fn = labels.replay(label, samples, np.array([a, b, c]))
    assert tp.tolist() == [1, 2, 0] and fp.tolist() == [1, 1, 0] and fn.tolist() == [1, 0, 1]
    assert np.allclose(labels.f1(tp, fp, fn), [0.5, 0.8, 0.0])


def test_images_whose_samples_rank_first_cost_nothing():
    similarity = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.1, 0.2, 0.9]], np.float32)
    samples = np.array([[0, 0], [1, 1], [0, 2]], np.int32)  # the last sample ranks its node third
    label = make_label(similarity, samples, 2)
    assert label.lengths.tolist() == [0, 0, 2] and label.lists.tolist() == [2, 1]
    assert label.rank.tolist() == [0, 0, 2]


def test_many_labels_at_once_equal_one_at_a_time():
    # labels of different M and an unreadable image, replayed together as selection does
    runs = [synthetic(seed=seed, m=m) for seed, m in ((3, 4), (4, 60), (5, 8))]
    samples = runs[0][1]
    model_labels = [
        make_label(similarity, samples, m) for (similarity, _, _), m in zip(runs, (4, 60, 8))
    ]
    model_labels[1].rank[5] = -1
    subset = np.unique(np.random.default_rng(6).choice(60, 12, replace=False))
    found = list(
        labels.replayer(iter(model_labels), samples, 60)(subset)
    )  # a stream, as from the registry
    assert len(found) == 3
    for counts, label in zip(found, model_labels):
        for got, want in zip(counts, labels.replay(label, samples, subset)):
            assert got.tolist() == want[subset].tolist()
    in_subset = np.isin(samples[:, 0], subset)
    unreadable = int((model_labels[1].rank[in_subset] < 0).sum())
    assert [int(sum(tp + fn)) for tp, _, fn in found] == [
        in_subset.sum(),
        in_subset.sum() - unreadable,
        in_subset.sum(),
    ]  # only readable samples count


def test_undecided_sample_is_wrong_when_half_a_subset_node_is_expected_above_it():
    # one image whose list (m=2) holds no subset node; 12 nodes, so 10 lie beyond the list. With 3
    # subset nodes, the 2 others are expected (rank - 2) * 2 / 10 times between list and own node.
    samples = np.array([[0, 0]], np.int32)
    for rank, subset, want in (
        (5, [0, 1, 2], -1),
        (4, [0, 1, 2], 0),
        (2, [0, 1, 2], 0),
        (11, [0], 0),
    ):
        label = labels.Label(
            np.array([7, 8], np.int16), np.array([2], np.int16), np.array([rank], np.int16), 12
        )
        own, predicted = labels.restricted_predictions(label, samples, np.array(subset))
        assert own.tolist() == [0] and predicted.tolist() == [want], (rank, subset)
