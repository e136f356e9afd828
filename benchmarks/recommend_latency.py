"""`mllzoo recommend` as a user runs it: the real CLI in fresh processes, end to end from process start.

Times the median of --repeats fresh `mllzoo recommend` processes, with a cold user embedding cache
(a new MLLZOO_CACHE_DIR per run) and with it warm, on (a) the shipped registry.db with 5, 100
(CIFAR-100) and 1,000 classes (benchmarks/data/mll-1000.txt) and (b) a synthetic registry of 1,000
models x 10,000 nodes with 100 classes, built once into benchmarks/.cache/. In the same run it times
the transformers/torch path of the same embedder (MLLZOO_MINILM_BACKEND=transformers, no cache) and
`mllzoo --help` (the process start floor), and prints the ratios. --pandas also times, in this process,
a re-implementation of the MLL reference code's pandas loop on the synthetic registry's labels.

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/recommend_latency.py [--repeats 5] [--threads N] [--pandas]

--threads N caps numpy's BLAS and torch at N threads in every timed process (default: their own
choice). On a busy machine one thread is faster: BLAS threads that wait for a core spin.

(WordNet names the synthetic nodes: `make wordnet` lays it out in .nltk_data the first time.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import reference  # noqa: E402 - the dense reference the tests use too (tests/reference.py)
from mllzoo import labels
from mllzoo.graph.concept_graph import Graph, Node, save_graph
from mllzoo.selection.recommend import recommend
from mllzoo.store.registry import Registry
from mllzoo.text.embedders import get_embedder, node_vectors

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
SAMPLES_PER_NODE = 3


def build(
    path: Path,
    n_models: int,
    n_nodes: int,
    m: int | None,
    seed: int = 0,
    per_node: int = SAMPLES_PER_NODE,
) -> Registry:
    """WordNet noun synsets as nodes, one image per sample, synthetic labels of varied quality."""
    registry = Registry(path)
    graph = synthetic_graph(registry, n_nodes, per_node)
    add_labels(registry, graph, range(n_models), m, np.random.default_rng(seed))
    return registry


def synthetic_graph(registry: Registry, n_nodes: int, per_node: int) -> Graph:
    """The first ``n_nodes`` WordNet noun synsets, ``per_node`` samples each, every sample its own image."""
    from nltk.corpus import wordnet as wn

    synsets = sorted(wn.all_synsets("n"), key=lambda s: s.name())[:n_nodes]
    nodes = [
        Node(
            i,
            s.name(),
            f"n{s.offset():08d}",
            s.lemma_names()[0].replace("_", " "),
            s.definition(),
            f"{s.lemma_names()[0].replace('_', ' ')} which is {s.definition()}",
            s.min_depth(),
            [],
        )
        for i, s in enumerate(synsets)
    ]
    n_images = n_nodes * per_node
    samples = np.stack([np.repeat(np.arange(n_nodes), per_node), np.arange(n_images)], 1).astype(
        np.int32
    )
    graph = Graph(
        "synthetic", nodes, [f"{i:040x}" for i in range(n_images)], [""] * n_images, samples
    )
    save_graph(registry, graph, "synthetic")
    node_vectors(registry, get_embedder("minilm"), graph)
    return graph


def add_labels(
    registry: Registry,
    graph: Graph,
    models: range,
    m: int | None,
    rng: np.random.Generator,
    quality: tuple[float, float] = (0.1, 0.9),
    miss_rank: float = 20,
) -> None:
    """Labels of varied quality (the share of samples whose own node ranks first, drawn from
    ``quality``; the others rank ``miss_rank`` on average), cut at ``m`` or fitted to the label budget
    as ``register`` does."""
    n_nodes, samples, n_images = len(graph.nodes), graph.samples, len(graph.image_paths)
    for model in models:
        first = rng.uniform(*quality)
        rank = np.where(rng.random(n_images) < first, 0, rng.geometric(1 / miss_rank, n_images))
        rank = np.minimum(rank, n_nodes - 1).astype(np.int32)  # a rank the graph has, however small
        depth = m or labels.budget_depth(labels.image_needs(n_images, samples[:, 1], rank), n_nodes)
        topm = rng.integers(0, n_nodes, (n_images, depth)).astype(labels.index_dtype(n_nodes))
        label = reference.label_from_ranking(topm, samples, rank, n_nodes)
        registry.save_label(
            f"synthetic/model.m{model:04d}",
            graph.id,
            labels.FORMAT,
            label.arrays(),
            {"n_nodes": n_nodes, "depth": m or "auto"},
        )


def reference_pandas_loop(registry: Registry, class_names: list[str], rec) -> dict[str, list[str]]:
    """The reference code's shape: per model a per-node Python loop, DataFrames concatenated,
    row-wise ``.loc`` smoothing and ``nlargest`` per class, on the same labels and matches."""
    import pandas as pd

    graph = rec.graph
    match = rec.selection.match
    subset = sorted(set(match.nodes.ravel().tolist()))
    in_subset = set(subset)
    frames = []
    for model_id, label in registry.whole_labels(graph.id):
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
            undecided = (
                rank > length
                and (rank - length) * (len(subset) - 1) / (label.n_nodes - length) >= 0.5
            )
            predicted = -1 if undecided else node
            for candidate in label.lists[start : start + min(rank, length)].tolist():
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
            row[name] = sum(
                w * 2 * tp[n] / max(2 * tp[n] + fp[n] + fn[n], 1)
                for n, w in zip(match.nodes[y].tolist(), match.weights[y].tolist())
            )
        frames.append(pd.DataFrame([row], index=[model_id]))
    df = pd.concat(frames, axis=0)
    for key, value in df.sum(axis=1).items():
        df.loc[key] = df.loc[key] * 0.7 + 0.3 * (value - df.loc[key]) / (df.shape[1] - 1)
    return {column: df[column].nlargest(1).index.tolist() for column in df.columns}


def class_file(folder: Path, source: Path, count: int) -> Path:
    """The first ``count`` classes of ``source`` as a class file of their own."""
    names = [line for line in source.read_text().splitlines() if line.strip()][:count]
    path = folder / f"{source.stem}-{count}.txt"
    path.write_text("\n".join(names) + "\n")
    return path


def cli_seconds(args: list[str], env: dict[str, str]) -> float:
    """Wall time of one fresh ``mllzoo`` process, from its start to its exit."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mllzoo", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"mllzoo {' '.join(args)} failed:\n{done.stderr}")
    return seconds


def median_of(repeats: int, args: list[str], env_of) -> float:
    return float(np.median([cli_seconds(args, env_of(i)) for i in range(repeats)]))


def time_cases(cases: list[tuple[str, Path, Path]], repeats: int, scratch: Path) -> None:
    """Per case: cold cache, warm cache and the torch path, each the median of ``repeats`` fresh processes."""
    floor = median_of(repeats, ["--help"], lambda i: {})
    print(f"`mllzoo --help` (process start floor): {floor:.3f} s median of {repeats}")
    print(
        f"{'registry, classes':<44}{'cold cache':>12}{'warm cache':>12}{'torch path':>12}"
        f"{'torch/cold':>12}{'cold/--help':>13}"
    )
    for name, registry, classes in cases:
        args = [
            "--registry",
            str(registry),
            "recommend",
            str(classes),
            "--include-uninstalled",
        ]  # synthetic models have no plugin
        cold = median_of(
            repeats, args, lambda i: {"MLLZOO_CACHE_DIR": str(scratch / f"cold-{name}-{i}")}
        )
        warm_dir = {"MLLZOO_CACHE_DIR": str(scratch / f"warm-{name}")}
        cli_seconds(args, warm_dir)  # fills the cache
        warm = median_of(repeats, args, lambda i: warm_dir)
        torch = median_of(
            repeats, [*args, "--no-cache"], lambda i: {"MLLZOO_MINILM_BACKEND": "transformers"}
        )
        print(
            f"{name:<44}{cold:>11.3f}s{warm:>11.3f}s{torch:>11.3f}s{torch / cold:>11.1f}x{cold / floor:>12.1f}x",
            flush=True,
        )


def time_pandas(registry: Registry, class_names: list[str]) -> None:
    """In this process: mllzoo's selection against the reference code's pandas loop on the same labels."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        sys.exit("--pandas needs pandas: pip install pandas")
    recommend(
        class_names, registry=registry, cache=False, include_uninstalled=True
    )  # loads the embedder and warms the page cache
    started = time.perf_counter()
    rec = recommend(class_names, registry=registry, cache=False, include_uninstalled=True)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    baseline_choice = reference_pandas_loop(registry, class_names, rec)
    baseline = time.perf_counter() - started
    agree = np.mean(
        [
            baseline_choice[name] == [rec.model_ids[m] for m in rec.selection.chosen[y]]
            for y, name in enumerate(class_names)
        ]
    )
    print(
        f"in one process, embedder loaded: recommend {ours:.3f} s; reference-style pandas loop on the same "
        f"labels {baseline:.3f} s; {baseline / ours:.1f}x; same top-1 model for {agree:.0%} of classes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument(
        "--m",
        type=int,
        help="cut every list at this depth [default: fit the label budget, "
        "as `mllzoo register` does]",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--pandas", action="store_true", help="also time the reference code's pandas loop"
    )
    parser.add_argument("--threads", type=int, help="BLAS and torch threads of every timed process")
    args = parser.parse_args()
    if args.threads:
        os.environ.update(
            dict.fromkeys(
                ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"], str(args.threads)
            )
        )
    cache = (
        ROOT
        / "benchmarks"
        / ".cache"
        / f"synthetic-{args.models}x{args.nodes}-m{args.m or 'auto'}.db"
    )
    if not cache.exists():
        cache.parent.mkdir(exist_ok=True)
        started = time.perf_counter()
        build(cache.with_suffix(".tmp"), args.models, args.nodes, args.m).close()
        cache.with_suffix(".tmp").rename(cache)
        print(f"built {cache} in {time.perf_counter() - started:.0f}s")
    cifar = DATA / "mll-classnames" / "CIFAR100.txt"
    print(
        f"shipped registry: {ROOT / 'registry.db'}; synthetic: {args.models} models x {args.nodes} nodes, "
        f"{SAMPLES_PER_NODE} samples per node, depth {args.m or 'auto'}, {cache.stat().st_size / 1e6:.0f} MB; "
        f"{os.cpu_count()} CPUs, threads {args.threads or 'default'}"
    )
    with tempfile.TemporaryDirectory(prefix="mllzoo-latency-") as folder:
        scratch = Path(folder)
        shipped = ROOT / "registry.db"
        time_cases(
            [
                (
                    "shipped, 5 classes (pets)",
                    shipped,
                    class_file(scratch, ROOT / "examples" / "pets.txt", 5),
                ),
                ("shipped, 100 classes (CIFAR-100)", shipped, cifar),
                ("shipped, 1,000 classes (mll-1000)", shipped, DATA / "mll-1000.txt"),
                (f"synthetic {args.models:,} x {args.nodes:,}, 100 classes", cache, cifar),
            ],
            args.repeats,
            scratch,
        )
    if args.pandas:
        time_pandas(
            Registry(cache), [line for line in cifar.read_text().splitlines() if line][:100]
        )


if __name__ == "__main__":
    main()
