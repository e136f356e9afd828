"""Label size and exactness: the ragged top-M label against the dense similarity rows it replaces.

For each labeled model of a registry whose graph's sample images are on disk, recompute the dense
``[images, nodes]`` similarities, then replay zero-shot classification restricted to random node
subsets of the sizes selection uses (5 nodes per class, 10 to 100 classes) both ways and count
identical per-sample decisions. Sizes are measured bytes; the paper-scale line projects the
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
from mllzoo.recommend import load_labels
from mllzoo.registry import Registry
from mllzoo.vlm import encode_images, encode_texts, load_model

PAPER_NODES, PAPER_PER_NODE = 9_000, 75


def dense_similarity(spec, graph, root: Path) -> np.ndarray:
    model = load_model(spec, "cpu")
    text = encode_texts(model, graph.captions)
    tensor, ok = ImageCache(root, graph.image_paths).chunk(model.preprocess_key, model.preprocess, 0,
                                                           len(graph.image_paths))
    assert len(ok) == len(graph.image_paths)
    return np.concatenate([encode_images(model, tensor[s:s + 256]) for s in range(0, len(ok), 256)]) @ text.T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("registry.db"))
    parser.add_argument("--samples", type=Path, default=Path("world/samples"))
    parser.add_argument("--subsets", type=int, default=50)
    args = parser.parse_args()
    registry = Registry(args.registry, create=False)
    graph = load_graph(registry)
    catalog = discover_models()
    rng = np.random.default_rng(0)
    n_images, n_nodes, n_samples = len(graph.image_paths), len(graph.nodes), len(graph.samples)
    print(f"graph: {n_nodes} nodes, {n_images} images, {n_samples} samples")
    print(f"{'model':<34}{'label KB':>10}{'dense KB':>10}{'ratio':>8}{'agree':>9}")
    per_sample, per_image, agreements = [], [], []
    for model_id, label in zip(*load_labels(registry, graph)):
        similarity = dense_similarity(catalog[model_id].spec, graph, args.samples)
        agree = total = 0
        for _ in range(args.subsets):
            subset = rng.choice(n_nodes, 5 * int(rng.integers(10, 101)), replace=False)
            own, predicted = labels.restricted_predictions(label, graph.samples, subset)
            _, dense = labels.dense_predictions(similarity, graph.samples, subset, n_nodes)
            agree += int((predicted == dense).sum())
            total += len(own)
        dense_bytes = similarity.astype(np.float32).nbytes
        agreements.append(agree / total)
        per_sample.append((label.rank.nbytes) / n_samples)
        per_image.append((label.lists.nbytes + label.lengths.nbytes) / n_images)
        print(f"{model_id:<34}{label.nbytes / 1e3:>10.0f}{dense_bytes / 1e3:>10.0f}"
              f"{dense_bytes / label.nbytes:>8.0f}x{agree / total:>9.4f}")
    images_paper = PAPER_NODES * PAPER_PER_NODE  # upper bound: every sample its own image
    projected = max(per_sample) * PAPER_NODES * PAPER_PER_NODE + max(per_image) * images_paper
    print(f"decisions identical to dense: min {min(agreements):.4f}, mean {np.mean(agreements):.4f}")
    print(f"paper scale ({PAPER_NODES} nodes x {PAPER_PER_NODE} images), projected from the largest "
          f"measured bytes per sample and per image: {projected / 1e6:.1f} MB per model "
          f"(dense float32: {images_paper * PAPER_NODES * 4 / 1e9:.1f} GB)")


if __name__ == "__main__":
    main()
