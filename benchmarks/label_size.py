"""Label size and exactness: the ragged top-M label against the dense similarity rows it replaces.

For each labeled model of a registry whose graph's sample images are on disk, recompute the dense
``[images, nodes]`` similarities, then replay zero-shot classification restricted to random node
subsets of the sizes selection uses (5 nodes per class, 10 to 100 classes) both ways and count
identical per-sample decisions (the predicted node, and whether the sample is classified right, which
is what TP and FN count), and do the same for the node subsets selection really uses: the
matched nodes of real class lists (the 17 MLL benchmark tasks in benchmarks/data, and the world's
tasks), where we also compare what selection picks: each class's top-1 model from compact-label F1
against dense F1. The same measures follow for lists cut at fixed depths (``--depths``) from the
same dense similarities, to show what exactness each byte buys against the registry's labels
(fitted to the 64 MB budget by ``mllzoo register``). Sizes are measured bytes; the
paper-scale column projects the measured bytes per sample and per image to 9,000 nodes x 75 images
per node.

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/label_size.py [--registry registry.db] [--samples world/samples]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import reference  # noqa: E402 - the dense reference the tests use too (tests/reference.py)
from mllzoo import labels
from mllzoo.models.catalog import discover_models
from mllzoo.graph.concept_graph import load_graph
from mllzoo.graph.images import ImageCache
from mllzoo.classes import read_classes
from mllzoo.selection.recommend import Selector
from mllzoo.selection.scoring import choose, match_nodes, smooth
from mllzoo.store.registry import Registry
from mllzoo.models.vlm import encode_images, encode_texts, load_model

CLASS_LISTS = Path(__file__).resolve().parent / "data" / "mll-classnames"


def task_matches(registry: Registry, tasks: Path) -> list:
    """The node matches of every real class list we have: what selection replays labels on."""
    selector = Selector(registry, captioner="templates")
    lists = [read_classes(f) for f in sorted(CLASS_LISTS.glob("*.txt"))]
    lists += [
        sorted(p.name for p in task.iterdir() if p.is_dir())
        for task in sorted(tasks.iterdir())
        if task.is_dir()
    ]
    return [
        match_nodes(selector.description_vectors(names, None, None), selector.node_vectors)
        for names in lists
    ]


def agreement(label, samples, subsets, dense: list) -> tuple[float, float]:
    """Shares of samples whose predicted node, and whose right-or-wrong, match the dense replay."""
    same_node = same_outcome = total = 0
    for subset, (_, dense_predicted) in zip(subsets, dense):
        own, predicted = labels.restricted_predictions(label, samples, subset)
        same_node += int((predicted == dense_predicted).sum())
        same_outcome += int(((predicted == own) == (dense_predicted == own)).sum())
        total += len(own)
    return same_node / total, same_outcome / total


def dense_similarity(spec, graph, root: Path) -> np.ndarray:
    model = load_model(spec, "cpu")
    text = encode_texts(model, graph.captions)
    tensor, ok = ImageCache(root, graph.image_paths).chunk(
        model.preprocess_key, model.preprocess, 0, len(graph.image_paths)
    )
    assert len(ok) == len(graph.image_paths)
    return (
        np.concatenate([encode_images(model, tensor[s : s + 256]) for s in range(0, len(ok), 256)])
        @ text.T
    )


def class_scores(replays: list, match) -> np.ndarray:
    """Smoothed per-class scores from per-model (TP, FP, FN), as selection computes them."""
    return smooth(
        np.stack([(match.weights * labels.f1(*r)[match.nodes]).sum(axis=1) for r in replays])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("registry.db"))
    parser.add_argument("--samples", type=Path, default=Path("world/samples"))
    parser.add_argument("--subsets", type=int, default=50)
    parser.add_argument("--tasks", type=Path, default=Path("world/tasks"))
    parser.add_argument(
        "--depths",
        default="32,64,128,256",
        help="fixed list depths M to measure besides the registry's own labels (comma-separated)",
    )
    args = parser.parse_args()
    registry = Registry(args.registry, create=False, write=False)
    graph = load_graph(registry)
    catalog = discover_models()
    rng = np.random.default_rng(0)
    n_images, n_nodes, n_samples = len(graph.image_paths), len(graph.nodes), len(graph.samples)
    print(f"graph: {n_nodes} nodes, {n_images} images, {n_samples} samples")
    matches = task_matches(registry, args.tasks)
    real = [np.unique(match.nodes) for match in matches]
    random = [
        rng.choice(n_nodes, 5 * int(rng.integers(10, 101)), replace=False)
        for _ in range(args.subsets)
    ]
    print(
        f"{len(real)} real task subsets ({min(map(len, real))}-{max(map(len, real))} nodes), "
        f"{len(random)} random subsets of 50-500 nodes"
    )
    print(
        f"{'model':<34}{'label KB':>10}{'dense KB':>10}{'ratio':>7}   same node / same outcome: real, random"
    )
    depths = [int(d) for d in args.depths.split(",") if d]
    found = {}  # "registry" or depth -> per model: (agreements, replays on the real subsets, bytes per sample, per image)
    dense_replays = []
    for model_id, stored in registry.whole_labels(graph.id):
        similarity = dense_similarity(catalog[model_id].spec, graph, args.samples)
        dense = {
            name: [
                reference.dense_predictions(similarity, graph.samples, subset, n_nodes)
                for subset in subsets
            ]
            for name, subsets in (("real", real), ("random", random))
        }
        dense_replays.append(
            [labels.confusion(*predictions, n_nodes) for predictions in dense["real"]]
        )
        rank = labels.own_ranks(similarity, graph.samples[:, 0], graph.samples[:, 1])
        fixed = [
            (
                m,
                reference.label_from_ranking(
                    labels.rank_images(similarity, m), graph.samples, rank, n_nodes
                ),
            )
            for m in depths
        ]
        for key, label in [("registry", stored)] + fixed:
            found.setdefault(key, []).append(
                (
                    agreement(label, graph.samples, real, dense["real"])
                    + agreement(label, graph.samples, random, dense["random"]),
                    [labels.replay(label, graph.samples, subset) for subset in real],
                    label.rank.nbytes / n_samples,
                    (label.lists.nbytes + label.lengths.nbytes) / n_images,
                )
            )
        dense_bytes = similarity.astype(np.float32).nbytes
        print(
            f"{model_id:<34}{stored.nbytes / 1e3:>10.0f}{dense_bytes / 1e3:>10.0f}{dense_bytes / stored.nbytes:>6.0f}x"
            + "".join(f"{v:>9.4f}" for v in found["registry"][-1][0])
            + f"   lists <= {stored.lengths.max()}"
        )
    images_paper = (
        labels.PAPER_NODES * labels.PAPER_PER_NODE
    )  # upper bound: every sample its own image
    print(
        f"\nby list depth M (first the registry's labels, fitted to the budget); mean over models; paper-scale size projected "
        f"from the largest measured bytes per sample and per image to {labels.PAPER_NODES} nodes x {labels.PAPER_PER_NODE} "
        f"images, every sample its own image (dense float32: {images_paper * labels.PAPER_NODES * 4 / 1e9:.1f} GB)"
    )
    print(f"{'M':>9}{'paper MB':>10}{'same node':>18}{'same outcome':>18}{'same top-1 model':>20}")
    print(f"{'':>19}{'real':>9}{'random':>9}{'real':>9}{'random':>9}")
    for m, per_model in found.items():
        mean = np.mean([row[0] for row in per_model], axis=0)
        projected = (
            max(row[2] for row in per_model) + max(row[3] for row in per_model)
        ) * images_paper
        same, total = same_choices(matches, [row[1] for row in per_model], dense_replays)
        print(
            f"{m:>9}{projected / 1e6:>10.1f}{mean[0]:>9.4f}{mean[2]:>9.4f}{mean[1]:>9.4f}{mean[3]:>9.4f}"
            f"{same:>11}/{total} ({same / total:.3f})"
        )


def same_choices(matches: list, compact_replays: list, dense_replays: list) -> tuple[int, int]:
    """Classes of the real class lists whose top-1 model is the same from compact and dense replays."""
    same = total = 0
    for t, match in enumerate(matches):
        compact = choose(class_scores([r[t] for r in compact_replays], match), 1)
        dense = choose(class_scores([r[t] for r in dense_replays], match), 1)
        same += sum(c == d for c, d in zip(compact, dense))
        total += len(compact)
    return same, total


if __name__ == "__main__":
    main()
