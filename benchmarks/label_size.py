"""Label size and exactness: the ragged top-M label against the dense similarity rows it replaces.

For each labeled model of a registry whose graph's sample images are on disk, recompute the dense
``[images, nodes]`` similarities, then replay zero-shot classification restricted to random node
subsets of the sizes selection uses (5 nodes per class, 10 to 100 classes) both ways and count
identical per-sample decisions (the predicted node, and whether the sample is classified right, which
is what TP and FN count), and do the same for the node subsets selection really uses: the
matched nodes of real class lists (the 17 MLL benchmark tasks in ../shared/data, and the world's
tasks), where we also compare what selection picks: each class's top-1 model from compact-label F1
against dense F1. Sizes are measured bytes; the paper-scale line projects the
measured bytes per sample and per image to 9,000 nodes x 75 images per node.

    .venv/bin/python benchmarks/label_size.py [--registry registry.db] [--samples world/samples]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mllzoo import labels
from mllzoo.catalog import discover_models
from mllzoo.graph import load_graph
from mllzoo.images import ImageCache
from mllzoo.classes import read_classes
from mllzoo.recommend import Selector, read_labels
from mllzoo.selection import choose, match_nodes, smooth
from mllzoo.registry import Registry
from mllzoo.vlm import encode_images, encode_texts, load_model

PAPER_NODES, PAPER_PER_NODE = 9_000, 75
CLASS_LISTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mll-classnames"


def task_matches(registry: Registry, tasks: Path) -> list:
    """The node matches of every real class list we have: what selection replays labels on."""
    selector = Selector(registry, captioner="templates")
    lists = [read_classes(f) for f in sorted(CLASS_LISTS.glob("*.txt"))]
    lists += [sorted(p.name for p in task.iterdir() if p.is_dir()) for task in sorted(tasks.iterdir()) if task.is_dir()]
    return [match_nodes(selector.class_vectors(names, None, None), selector.node_vectors) for names in lists]


def agreement(label, similarity, samples, subsets, n_nodes) -> tuple[float, float]:
    """Shares of samples whose predicted node, and whose right-or-wrong, match the dense replay."""
    same_node = same_outcome = total = 0
    for subset in subsets:
        own, predicted = labels.restricted_predictions(label, samples, subset)
        _, dense = labels.dense_predictions(similarity, samples, subset, n_nodes)
        same_node += int((predicted == dense).sum())
        same_outcome += int(((predicted == own) == (dense == own)).sum())
        total += len(own)
    return same_node / total, same_outcome / total


def dense_similarity(spec, graph, root: Path) -> np.ndarray:
    model = load_model(spec, "cpu")
    text = encode_texts(model, graph.captions)
    tensor, ok = ImageCache(root, graph.image_paths).chunk(model.preprocess_key, model.preprocess, 0,
                                                           len(graph.image_paths))
    assert len(ok) == len(graph.image_paths)
    return np.concatenate([encode_images(model, tensor[s:s + 256]) for s in range(0, len(ok), 256)]) @ text.T


def class_scores(replays: list, match) -> np.ndarray:
    """Smoothed per-class scores from per-model (TP, FP, FN), as selection computes them."""
    return smooth(np.stack([(match.weights * labels.f1(*r)[match.nodes]).sum(axis=1) for r in replays]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("registry.db"))
    parser.add_argument("--samples", type=Path, default=Path("world/samples"))
    parser.add_argument("--subsets", type=int, default=50)
    parser.add_argument("--tasks", type=Path, default=Path("world/tasks"))
    args = parser.parse_args()
    registry = Registry(args.registry, create=False)
    graph = load_graph(registry)
    catalog = discover_models()
    rng = np.random.default_rng(0)
    n_images, n_nodes, n_samples = len(graph.image_paths), len(graph.nodes), len(graph.samples)
    print(f"graph: {n_nodes} nodes, {n_images} images, {n_samples} samples")
    matches = task_matches(registry, args.tasks)
    real = [np.unique(match.nodes) for match in matches]
    random = [rng.choice(n_nodes, 5 * int(rng.integers(10, 101)), replace=False) for _ in range(args.subsets)]
    print(f"{len(real)} real task subsets ({min(map(len, real))}-{max(map(len, real))} nodes), "
          f"{len(random)} random subsets of 50-500 nodes")
    print(f"{'model':<34}{'label KB':>10}{'dense KB':>10}{'ratio':>7}   same node / same outcome: real, random")
    per_sample, per_image, rows = [], [], []
    compact_replays, dense_replays = [], []
    for model_id, label in zip(sorted(registry.labeled_model_ids(graph.id)), read_labels(registry, graph)):
        similarity = dense_similarity(catalog[model_id].spec, graph, args.samples)
        rows.append(agreement(label, similarity, graph.samples, real, n_nodes)
                    + agreement(label, similarity, graph.samples, random, n_nodes))
        compact_replays.append([labels.replay(label, graph.samples, subset) for subset in real])
        dense_replays.append([labels.dense_replay(similarity, graph.samples, subset, n_nodes) for subset in real])
        dense_bytes = similarity.astype(np.float32).nbytes
        per_sample.append(label.rank.nbytes / n_samples)
        per_image.append((label.lists.nbytes + label.lengths.nbytes) / n_images)
        print(f"{model_id:<34}{label.nbytes / 1e3:>10.0f}{dense_bytes / 1e3:>10.0f}{dense_bytes / label.nbytes:>6.0f}x"
              + "".join(f"{v:>9.4f}" for v in rows[-1]))
    mean = np.mean(rows, axis=0)
    print(f"mean: same node {mean[0]:.4f} real, {mean[2]:.4f} random; same outcome {mean[1]:.4f} real, "
          f"{mean[3]:.4f} random")
    same_choice = total = 0
    for t, match in enumerate(matches):
        compact = choose(class_scores([r[t] for r in compact_replays], match), 1)
        dense = choose(class_scores([r[t] for r in dense_replays], match), 1)
        same_choice += sum(c == d for c, d in zip(compact, dense))
        total += len(compact)
    print(f"selection: the same top-1 model as with dense labels for {same_choice}/{total} classes "
          f"({same_choice / total:.4f}) over the {len(matches)} real class lists")
    images_paper = PAPER_NODES * PAPER_PER_NODE  # upper bound: every sample its own image
    projected = max(per_sample) * PAPER_NODES * PAPER_PER_NODE + max(per_image) * images_paper
    print(f"paper scale ({PAPER_NODES} nodes x {PAPER_PER_NODE} images), projected from the largest "
          f"measured bytes per sample and per image: {projected / 1e6:.1f} MB per model "
          f"(dense float32: {images_paper * PAPER_NODES * 4 / 1e9:.1f} GB)")


if __name__ == "__main__":
    main()
