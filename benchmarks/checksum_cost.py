"""What verifying every label block's checksum costs when selection reads the labels.

Reads every block of every label of a registry's graph the way ``recommend`` reads a query's blocks
(``Registry.label_views``, all nodes), and in the same run computes the blocks' checksums alone over
the same bytes, and prints both and the checksums' share.

    .venv/bin/python benchmarks/checksum_cost.py [--registry registry.db] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mllzoo import labels
from mllzoo.store.label_store import block_checksum
from mllzoo.store.registry import Registry


def best_of(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default="registry.db")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    registry = Registry(args.registry, create=False, write=False)
    graph_id = registry.require_graph_id()
    model_ids = sorted(registry.labeled_model_ids(graph_id))
    nodes = np.arange(registry.graph_sizes(graph_id)["nodes"])
    blocks = registry.db.execute(
        "select dtype, ranks, lengths, entries from label_blocks where graph_id = ?", [graph_id]
    ).fetchall()
    size = sum(len(row[1]) + len(row[2]) + len(row[3]) for row in blocks)
    read = best_of(
        args.repeats, lambda: list(registry.label_views(graph_id, model_ids, nodes, labels.FORMAT))
    )
    crc = best_of(args.repeats, lambda: [block_checksum(*row) for row in blocks])
    print(
        f"{len(model_ids)} labels, {len(blocks)} blocks, {size / 1e6:.1f} MB: verified read of every block "
        f"{read * 1000:.1f} ms, of which checksums {crc * 1000:.1f} ms ({crc / read:.0%}; "
        f"{crc * 1000 / (size / 1e6):.2f} ms per MB)"
    )


if __name__ == "__main__":
    main()
