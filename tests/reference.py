"""Reference code the tests and benchmarks/ measure the label against: the dense form it compresses.

Not in the package: nothing a user runs needs it.
"""

from __future__ import annotations

import numpy as np

from mllzoo import labels


def label_from_ranking(
    topm: np.ndarray, samples: np.ndarray, rank: np.ndarray, n_nodes: int
) -> labels.Label:
    """A label from each image's ``[n_images, M]`` ranking, cut to what its samples need."""
    need = labels.image_needs(len(topm), samples[:, 1], rank)
    lists, lengths = labels.cut_lists(topm, need, n_nodes)
    return labels.Label(lists, lengths, rank.astype(labels.index_dtype(n_nodes)), n_nodes)


def dense_predictions(
    similarity: np.ndarray, samples: np.ndarray, subset: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """The exact reference: argmax over the subset's columns of the full similarity rows."""
    r = labels.Restriction.of(samples, subset, n_nodes)
    return r.own, r.subset[np.argmax(similarity[np.ix_(r.image, r.subset)], axis=1)]


def dense_replay(similarity: np.ndarray, samples: np.ndarray, subset: np.ndarray, n_nodes: int):
    """Per-node TP, FP, FN of the dense reference, as :func:`mllzoo.labels.replay` gives them."""
    return labels.confusion(*dense_predictions(similarity, samples, subset, n_nodes), n_nodes)
