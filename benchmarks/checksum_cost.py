"""What verifying every label blob's checksum costs when selection streams the labels.

Reads every label of a registry's graph the way ``recommend`` does (``Registry.iter_labels``), once
with the checksum verified and once with only the byte-length check as the baseline, in the same
run, and prints both and their ratio.

    .venv/bin/python benchmarks/checksum_cost.py [--registry registry.db] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

from mllzoo import blobs, labels
from mllzoo.registry import Registry


def read_all(registry: Registry, graph_id: str, repeats: int) -> tuple[float, int]:
    """Best seconds per full read of the labels, and the bytes read."""
    best, size = float("inf"), 0
    for _ in range(repeats):
        started = time.perf_counter()
        size = sum(a.nbytes for _, arrays, _ in registry.iter_labels(graph_id, labels.FORMAT)
                   for a in arrays.values())
        best = min(best, time.perf_counter() - started)
    return best, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default="registry.db")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    registry = Registry(args.registry, create=False, write=False)
    graph_id = registry.require_graph_id()
    verified, size = read_all(registry, graph_id, args.repeats)
    with mock.patch.object(blobs, "array", lambda dtype, shape, data, _: blobs.fitting(dtype, shape, data)):
        baseline, _ = read_all(registry, graph_id, args.repeats)
    print(f"{len(registry.labeled_model_ids(graph_id))} labels, {size / 1e6:.1f} MB: "
          f"length check only {baseline * 1000:.1f} ms, with checksums {verified * 1000:.1f} ms "
          f"(x{verified / baseline:.2f}; {(verified - baseline) * 1000 / (size / 1e6):.2f} ms per MB)")


if __name__ == "__main__":
    main()
