"""`recommend` latency on a synthetic registry of 1,000 models x 10,000 nodes, 100 classes.

Prints the latency of mllzoo's selection with the text embedder already loaded, both in a fresh
process (what one ``mllzoo recommend`` costs after start-up) and repeated in one process, and, on the same
labels, of a straightforward re-implementation of the MLL reference code's pandas loop, and their
ratio. The registry is built once into benchmarks/.cache/ (node captions embedded with MiniLM).

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/recommend_latency.py [--models 1000] [--nodes 10000]

(WordNet names the synthetic nodes: `make wordnet` lays it out in .nltk_data the first time.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mllzoo import labels
from mllzoo.graph import Graph, Node, save_graph
from mllzoo.recommend import read_labels, recommend
from mllzoo.registry import Registry
from mllzoo.text import get_embedder, node_vectors

CLASSES = Path(__file__).resolve().parent / "data" / "mll-classnames" / "CIFAR100.txt"
SAMPLES_PER_NODE = 3


def build(path: Path, n_models: int, n_nodes: int, m: int | None, seed: int = 0,
          per_node: int = SAMPLES_PER_NODE) -> Registry:
    """WordNet noun synsets as nodes, one image per sample, synthetic labels of varied quality."""
    registry = Registry(path)
    graph = synthetic_graph(registry, n_nodes, per_node)
    add_labels(registry, graph, range(n_models), m, np.random.default_rng(seed))
    return registry


def synthetic_graph(registry: Registry, n_nodes: int, per_node: int) -> Graph:
    """The first ``n_nodes`` WordNet noun synsets, ``per_node`` samples each, every sample its own image."""
    from nltk.corpus import wordnet as wn

    synsets = sorted(wn.all_synsets("n"), key=lambda s: s.name())[:n_nodes]
    nodes = [Node(i, s.name(), f"n{s.offset():08d}", s.lemma_names()[0].replace("_", " "), s.definition(),
                  f"{s.lemma_names()[0].replace('_', ' ')} which is {s.definition()}", s.min_depth(), [])
             for i, s in enumerate(synsets)]
    n_images = n_nodes * per_node
    samples = np.stack([np.repeat(np.arange(n_nodes), per_node), np.arange(n_images)], 1).astype(np.int32)
    graph = Graph("synthetic", nodes, [f"{i:040x}" for i in range(n_images)], [""] * n_images, samples)
    save_graph(registry, graph, "synthetic")
    node_vectors(registry, get_embedder("minilm"), graph)
    return graph


def add_labels(registry: Registry, graph: Graph, models: range, m: int | None, rng: np.random.Generator,
               quality: tuple[float, float] = (0.1, 0.9), miss_rank: float = 20) -> None:
    """Labels of varied quality (the share of samples whose own node ranks first, drawn from
    ``quality``; the others rank ``miss_rank`` on average), cut at ``m`` or fitted to the label budget
    as ``register`` does."""
    n_nodes, samples, n_images = len(graph.nodes), graph.samples, len(graph.image_paths)
    for model in models:
        first = rng.uniform(*quality)
        rank = np.where(rng.random(n_images) < first, 0, rng.geometric(1 / miss_rank, n_images)).astype(np.int32)
        depth = m or labels.budget_depth(labels.image_needs(n_images, samples[:, 1], rank), n_nodes)
        topm = rng.integers(0, n_nodes, (n_images, depth)).astype(labels.index_dtype(n_nodes))
        label = labels.Label.from_ranking(topm, samples, rank, n_nodes)
        registry.save_label(f"synthetic/model.m{model:04d}", graph.id, labels.FORMAT, label.arrays(),
                            {"n_nodes": n_nodes, "depth": m or "auto"})


def reference_pandas_loop(registry: Registry, class_names: list[str], rec) -> dict[str, list[str]]:
    """The reference code's shape: per model a per-node Python loop, DataFrames concatenated,
    row-wise ``.loc`` smoothing and ``nlargest`` per class, on the same labels and matches."""
    import pandas as pd

    graph = rec.graph
    match = rec.selection.match
    subset = sorted(set(match.nodes.ravel().tolist()))
    in_subset = set(subset)
    frames = []
    for model_id, label in read_labels(registry, graph):
        offsets = label.offsets
        tp = dict.fromkeys(subset, 0)
        fp = dict.fromkeys(subset, 0)
        fn = dict.fromkeys(subset, 0)
        for s, (node, image) in enumerate(graph.samples.tolist()):
            if node not in in_subset:
                continue
            rank = int(label.rank[s])
            start, length = int(offsets[image]), int(label.lengths[image])
            # own node, unless ranked below its list with more than half a subset node expected above it
            undecided = rank > length and (rank - length) * (len(subset) - 1) / (label.n_nodes - length) >= 0.5
            predicted = -1 if undecided else node
            for candidate in label.lists[start:start + min(rank, length)].tolist():
                if candidate in in_subset:
                    predicted = candidate
                    break
            if predicted == node:
                tp[node] += 1
            else:
                fn[node] += 1
                if predicted >= 0:
                    fp[predicted] += 1
        row = {}
        for y, name in enumerate(class_names):
            row[name] = sum(w * 2 * tp[n] / max(2 * tp[n] + fp[n] + fn[n], 1)
                            for n, w in zip(match.nodes[y].tolist(), match.weights[y].tolist()))
        frames.append(pd.DataFrame([row], index=[model_id]))
    df = pd.concat(frames, axis=0)
    for key, value in df.sum(axis=1).items():
        df.loc[key] = df.loc[key] * 0.7 + 0.3 * (value - df.loc[key]) / (df.shape[1] - 1)
    return {column: df[column].nlargest(1).index.tolist() for column in df.columns}


def task_classes() -> list[str]:
    return [c for c in CLASSES.read_text().split("\n")[:100] if c]


def time_once(cache: Path) -> float:
    """One ``recommend`` in this fresh process, after loading the embedder as a user's session would."""
    get_embedder("minilm").embed(["warm up", "a photo of a warm up."])
    started = time.perf_counter()
    recommend(task_classes(), registry=Registry(cache))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--m", type=int, help="cut every list at this depth [default: fit the label budget, "
                                              "as `mllzoo register` does]")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--time-once", type=Path, help=argparse.SUPPRESS)  # one fresh-process timing
    args = parser.parse_args()
    if args.time_once:
        print(time_once(args.time_once))
        return
    cache = Path(__file__).parent / ".cache" / f"synthetic-{args.models}x{args.nodes}-m{args.m or 'auto'}.db"
    if not cache.exists():
        cache.parent.mkdir(exist_ok=True)
        started = time.perf_counter()
        build(cache.with_suffix(".tmp"), args.models, args.nodes, args.m).close()
        cache.with_suffix(".tmp").rename(cache)
        print(f"built {cache} in {time.perf_counter() - started:.0f}s")
    registry = Registry(cache)
    class_names = task_classes()
    recommend(class_names, registry=registry)  # loads the embedder and warms the page cache
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        rec = recommend(class_names, registry=registry)
        timings.append(time.perf_counter() - started)
    fresh = [float(subprocess.run([sys.executable, __file__, "--time-once", str(cache)], check=True,
                                  capture_output=True, text=True).stdout) for _ in range(args.repeats)]
    ours = float(np.median(fresh))
    started = time.perf_counter()
    baseline_choice = reference_pandas_loop(registry, class_names, rec)
    baseline = time.perf_counter() - started
    agree = np.mean([baseline_choice[name] == [rec.model_ids[m] for m in rec.selection.chosen[y]]
                     for y, name in enumerate(class_names)])
    size = cache.stat().st_size / 1e6
    print(f"registry: {args.models} models x {args.nodes} nodes, {SAMPLES_PER_NODE} samples per node, "
          f"depth {args.m or 'auto'}, {size:.0f} MB")
    print(f"recommend, {len(class_names)} classes, embedder loaded, median of {args.repeats}: "
          f"{ours:.3f} s in a fresh process (best {min(fresh):.3f}), "
          f"{float(np.median(timings)):.3f} s repeated in one process (best {min(timings):.3f})")
    print(f"reference-style pandas loop on the same labels: {baseline:.3f} s")
    print(f"speed-up (fresh-process median): {baseline / ours:.1f}x; same top-1 model for {agree:.0%} of classes")


if __name__ == "__main__":
    main()
