"""Peak memory of `mllzoo labels export` and `labels import` at the paper's scale, against the file's size.

Builds benchmarks/scale.py's synthetic registry (9,000 nodes x 75 images, every sample its own image,
weak models' labels that fill the 64 MB budget), then for each count of --labels N1 N2 ... exports
the first N labels with a fresh `mllzoo labels export` process and imports that file with a fresh
`mllzoo labels import` into a copy of the registry that holds only the graph, recording each process's
peak RSS (VmHWM) and seconds. The baseline, in the same run on the same registry and file, is the way
both commands went before they streamed: a fresh process that holds every label in one list, then
writes the file or stores them (the code before also held a packed copy of every array while writing,
so it peaked higher still). Streaming keeps the peak flat as N grows; the baseline grows by about a
label per label. It prints the peaks, their ratio to the file's size and their growth per label.

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/label_transfer_memory.py [--labels 4 12] [--keep DIR]

`--labels 1 49` measures the issue's 49 labels (about 3 GB of labels; building takes about 1.5 s and
65 MB of disk per label, the file about 45 MB per label, each import target as much as the registry).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recommend_latency import add_labels, synthetic_graph  # noqa: E402
from scale import MLLZOO, PAPER_NODES, PAPER_PER_NODE, PEAK_RSS, run  # noqa: E402

from mllzoo.store.registry import Registry  # noqa: E402

WHOLE_EXPORT = """
import sys
from pathlib import Path
from mllzoo.labeling.transfer import model_row
from mllzoo.store.labelfile import write_label_file
from mllzoo.store.registry import Registry
registry = Registry(sys.argv[1], create=False, write=False)
graph_id = registry.require_graph_id()
samples = registry.graph_samples(graph_id)
entries = []  # every label held at once before the file is written
for model_id in sys.argv[3:]:
    fmt, arrays, meta = registry.load_label(model_id, graph_id, samples)
    entries.append({"model": model_row(registry, model_id, meta), "format": fmt, "meta": meta,
                    "created": registry.label_created(model_id, graph_id), "arrays": arrays})
write_label_file(Path(sys.argv[2]), {"id": graph_id, **registry.graph_sizes(graph_id)}, entries)
"""

WHOLE_IMPORT = """
import sys
from pathlib import Path
from mllzoo.store.labelfile import read_many
from mllzoo.store.registry import Registry
registry = Registry(sys.argv[1], create=False)
graph_id = registry.require_graph_id()
sizes, samples = registry.graph_sizes(graph_id), registry.graph_samples(graph_id)
found = read_many([Path(sys.argv[2])], graph_id, sizes, samples)  # every label held, then stored
registry.import_labels(graph_id, found)
"""


def measure(scratch: Path, registry: Path, empty: Path, model_ids: list[str]) -> dict:
    """Seconds and peak RSS (MB) of each command and its whole-in-memory baseline, and the file's MB."""
    env = {"MLLZOO_REGISTRY": str(registry), "MLLZOO_LOAD_PLUGINS": ""}
    path, whole = scratch / "labels.mllzoo-labels", scratch / "whole.mllzoo-labels"
    cases = {
        "export": run(MLLZOO, ["labels", "export", *model_ids, "-o", str(path), "--force"], env),
        "export, whole": run(PEAK_RSS + WHOLE_EXPORT, [str(registry), str(whole), *model_ids], {}),
    }
    whole.unlink()
    target = scratch / "target.db"
    for case, code, args in (
        ("import", MLLZOO, ["labels", "import", str(path)]),
        ("import, whole", PEAK_RSS + WHOLE_IMPORT, [str(target), str(path)]),
    ):
        shutil.copy(empty, target)
        cases[case] = run(code, args, {"MLLZOO_REGISTRY": str(target), "MLLZOO_LOAD_PLUGINS": ""})
        check = Registry(target, create=False, write=False)
        assert len(check.labeled_model_ids(check.require_graph_id())) == len(model_ids), case
        check.close()
        target.unlink()
    size = path.stat().st_size / 1e6
    path.unlink()
    return {"file MB": size, **cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--labels", type=int, nargs="+", default=[4, 12], help="label counts, ascending"
    )
    parser.add_argument("--keep", type=Path, help="build the registry in DIR and keep it")
    parser.add_argument("--nodes", type=int, default=PAPER_NODES)
    parser.add_argument("--per-node", type=int, default=PAPER_PER_NODE)
    args = parser.parse_args()
    counts = sorted(set(args.labels))
    with tempfile.TemporaryDirectory(prefix="mllzoo-transfer-") as folder:
        scratch = Path(folder)
        keep = args.keep or scratch
        keep.mkdir(parents=True, exist_ok=True)
        path, empty = keep / "registry.db", scratch / "graph-only.db"
        path.unlink(missing_ok=True)
        registry = Registry(path)
        started = time.perf_counter()
        graph = synthetic_graph(registry, args.nodes, args.per_node)
        registry.close()
        shutil.copy(path, empty)  # the graph without labels: what each import starts from
        registry = Registry(path)
        print(
            f"graph: {args.nodes:,} nodes x {args.per_node} images, built in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        _, help_rss = run(MLLZOO, ["--help"], {})
        print(f"`mllzoo --help`: peak RSS {help_rss:.0f} MB (the process floor)")
        results, have, rng = {}, 0, np.random.default_rng(0)
        for count in counts:
            add_labels(
                registry, graph, range(have, count), None, rng, quality=(0.0, 0.2), miss_rank=200
            )
            have = count
            model_ids = [f"synthetic/model.m{i:04d}" for i in range(count)]
            results[count] = measure(scratch, path, empty, model_ids)
            print(
                f"\n{count} labels: registry {path.stat().st_size / 1e6:,.0f} MB, "
                f"label file {results[count]['file MB']:,.0f} MB"
            )
            print(f"{'case':<16}{'seconds':>9}{'peak RSS':>11}{'/ file':>9}")
            for case in ("export", "export, whole", "import", "import, whole"):
                seconds, rss = results[count][case]
                print(
                    f"{case:<16}{seconds:>8.1f}s{rss:>9.0f}MB"
                    f"{rss / results[count]['file MB']:>8.2f}x",
                    flush=True,
                )
        registry.close()
        if len(counts) > 1:
            low, high = counts[0], counts[-1]
            print(f"\npeak RSS growth per label ({low} -> {high} labels):")
            for case in ("export", "export, whole", "import", "import, whole"):
                growth = (results[high][case][1] - results[low][case][1]) / (high - low)
                print(
                    f"  {case:<16}{growth:>8.1f} MB  "
                    f"({results[low][case][1]:.0f} -> {results[high][case][1]:.0f} MB, "
                    f"x{results[high][case][1] / results[low][case][1]:.2f})"
                )
            per_file = (results[high]["file MB"] - results[low]["file MB"]) / (high - low)
            print(f"  {'label file':<16}{per_file:>8.1f} MB")


if __name__ == "__main__":
    main()
