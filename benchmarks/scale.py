"""`mllzoo recommend` at the paper's scale: 9,000 nodes x 75 images, labels at the 64 MB budget.

The labels are those of weak models (at most 20% of samples ranked first, the others ranked 200th
on average), so they fill the 64 MB budget, as benchmarks/sizing.py's do: an upper bound on bytes.

Builds synthetic paper-scale registries with each of --labels N1 N2 ... labels (one file, labels
added between the counts), and for each times fresh `mllzoo recommend CIFAR100.txt` processes, the
median of --repeats, with a cold user embedding cache (a new MLLZOO_CACHE_DIR each run) and a warm
one, all labels and `--models <one id>`, against `mllzoo --help` and against a fresh process that
reads every block of every candidate label and then replays the matched nodes: what reading labels
whole costs, in the same storage and code. It prints the label bytes one query reads, the peak RSS of each process, and
the marginal cost per label between the first and last count.

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/scale.py --labels 12 49 [--keep DIR] [--repeats 3]

--keep DIR keeps DIR/registry.db (with the last count of labels) for timing from outside. Building
takes about 1.5 s and 65 MB of disk per label. WordNet names the synthetic nodes (`make wordnet`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recommend_latency import add_labels, synthetic_graph  # noqa: E402

from mllzoo import labels  # noqa: E402
from mllzoo.store.registry import Registry  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CIFAR = ROOT / "benchmarks" / "data" / "mll-classnames" / "CIFAR100.txt"
PAPER_NODES, PAPER_PER_NODE = labels.PAPER_NODES, labels.PAPER_PER_NODE

WHOLE_LABEL_QUERY = """
import sys, numpy as np
from mllzoo import labels
from mllzoo.classes import read_classes
from mllzoo.selection.recommend import Selector
from mllzoo.store.registry import Registry
from mllzoo.selection.scoring import select
from mllzoo.store.usercache import EmbeddingCache
registry = Registry(sys.argv[1], create=False, write=False)
selector = Selector(registry, cache=EmbeddingCache())
vectors = selector.description_vectors(read_classes(sys.argv[2]), None, None)
chosen = sys.argv[3].split(",") if len(sys.argv) > 3 else selector.model_ids
n_nodes = len(selector.graph.nodes)
def replay_whole(subset):  # read every block of each label, then replay the subset's samples
    in_subset = np.isin(np.arange(n_nodes), subset)
    position = labels.subset_position(subset, n_nodes)
    for _, (own, view) in registry.label_views(selector.graph.id, chosen, np.arange(n_nodes), labels.FORMAT):
        keep = in_subset[own]
        above = view.above
        entries = view.entries[labels.ragged_index((np.cumsum(above) - above)[keep], above[keep])]
        part = labels.SampleLists(view.rank[keep], view.length[keep], entries)
        yield labels.subset_confusion(*labels.predict(part, own[keep], in_subset, n_nodes), position)
select(vectors, selector.node_vectors, replay_whole)
"""


PEAK_RSS = """
import atexit, sys
_peak_file = sys.argv.pop(1)
def _peak():  # this process's own high-water mark (getrusage would include the parent's, from before exec)
    with open("/proc/self/status") as status, open(_peak_file, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM")))
atexit.register(_peak)
"""
MLLZOO = PEAK_RSS + "sys.argv[0] = 'mllzoo'\nfrom mllzoo.cli.main import main\nmain()"


def run(code: str, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fresh ``python -c code args`` process, start to exit."""
    with tempfile.NamedTemporaryFile() as peak:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, peak.name, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
        )
        seconds = time.perf_counter() - started
        if done.returncode:
            sys.exit(f"{' '.join(args)} failed:\n{done.stderr.decode()}")
        return seconds, int(Path(peak.name).read_text()) / 1024


def median_run(repeats: int, code: str, args: list[str], env_of) -> tuple[float, float]:
    runs = [run(code, args, env_of(i)) for i in range(repeats)]
    return float(np.median([s for s, _ in runs])), max(rss for _, rss in runs)


def query_bytes(registry: Registry, classes: Path) -> tuple[int, int, int]:
    """Label bytes one query reads (its matched nodes' blocks of every label), all label bytes, matched nodes."""
    from mllzoo.selection.recommend import recommend

    rec = recommend(classes, registry=registry, include_uninstalled=True)
    subset = json.dumps(np.unique(rec.selection.match.nodes).tolist())
    size = "sum(length(ranks) + length(lengths) + length(entries))"
    (read,) = registry.db.execute(
        f"select {size} from label_blocks where node in (select value from json_each(?))", [subset]
    ).fetchone()
    (total,) = registry.db.execute(f"select {size} from label_blocks").fetchone()
    return read, total, len(json.loads(subset))


def time_count(
    path: Path, n_labels: int, repeats: int, scratch: Path
) -> dict[str, tuple[float, float]]:
    """Every timed case on the registry as it is, each the median of ``repeats`` fresh processes."""
    recommend = ["--registry", str(path), "recommend", str(CIFAR), "--include-uninstalled"]
    one = Registry(path, create=False, write=False)
    first = sorted(one.labeled_model_ids(one.require_graph_id()))[0]
    one.close()
    warm = {"MLLZOO_CACHE_DIR": str(scratch / "warm")}
    run(MLLZOO, recommend, warm)  # fills the warm cache
    whole = PEAK_RSS + WHOLE_LABEL_QUERY
    cases = {
        "cold cache": median_run(
            repeats,
            MLLZOO,
            recommend,
            lambda i: {"MLLZOO_CACHE_DIR": str(scratch / f"cold-{n_labels}-{i}")},
        ),
        "warm cache": median_run(repeats, MLLZOO, recommend, lambda i: warm),
        "warm, --models <one id>": median_run(
            repeats, MLLZOO, [*recommend, "--models", first], lambda i: warm
        ),
        "whole labels, warm": median_run(repeats, whole, [str(path), str(CIFAR)], lambda i: warm),
        "whole labels, one id": median_run(
            repeats, whole, [str(path), str(CIFAR), first], lambda i: warm
        ),
    }
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--labels", type=int, nargs="+", default=[12, 49], help="label counts to time, ascending"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--keep", type=Path, help="keep DIR/registry.db with the last count of labels"
    )
    parser.add_argument("--nodes", type=int, default=PAPER_NODES)
    parser.add_argument("--per-node", type=int, default=PAPER_PER_NODE)
    args = parser.parse_args()
    counts = sorted(set(args.labels))
    with tempfile.TemporaryDirectory(prefix="mllzoo-scale-") as folder:
        scratch = Path(folder)
        keep = args.keep or scratch
        keep.mkdir(parents=True, exist_ok=True)
        path = keep / "registry.db"
        path.unlink(missing_ok=True)
        registry = Registry(path)
        started = time.perf_counter()
        graph = synthetic_graph(registry, args.nodes, args.per_node)
        print(
            f"graph: {args.nodes:,} nodes x {args.per_node} images, built in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        help_s, help_rss = median_run(args.repeats, MLLZOO, ["--help"], lambda i: {})
        print(
            f"`mllzoo --help`: {help_s:.3f} s, peak RSS {help_rss:.0f} MB (median of {args.repeats})"
        )
        results, have, rng = {}, 0, np.random.default_rng(0)
        for count in counts:
            started = time.perf_counter()
            add_labels(
                registry, graph, range(have, count), None, rng, quality=(0.0, 0.2), miss_rank=200
            )
            have = count
            print(
                f"\n{count} labels ({path.stat().st_size / 1e9:.2f} GB registry; labels added in "
                f"{time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            read, total, matched = query_bytes(registry, CIFAR)
            print(
                f"CIFAR-100 matches {matched} nodes: a query reads {read / 1e6:.1f} MB of labels, "
                f"{read / total:.1%} of {total / 1e6:.0f} MB"
            )
            results[count] = time_count(path, count, args.repeats, scratch)
            print(f"{'case':<28}{'seconds':>9}{'/ --help':>10}{'peak RSS':>11}")
            for case, (seconds, rss) in results[count].items():
                print(
                    f"{case:<28}{seconds:>8.3f}s{seconds / help_s:>9.1f}x{rss:>9.0f}MB", flush=True
                )
        registry.close()
        if len(counts) > 1:
            low, high = counts[0], counts[-1]
            print(f"\nmarginal cost per label ({low} -> {high} labels):")
            for case in results[high]:
                per = (results[high][case][0] - results[low][case][0]) / (high - low)
                print(f"  {case:<28}{per * 1000:>8.1f} ms")
            cold = results[high]["cold cache"][0]
            per = (cold - results[low]["cold cache"][0]) / (high - low)
            print(f"cold `recommend` projected to 1,000 labels: {cold + per * (1000 - high):.1f} s")


if __name__ == "__main__":
    main()
