"""The bounded user embedding cache: how large its file is against its bound, and what a put and a
warm get cost, against the layout before bounds (a WITHOUT ROWID table) holding the same rows.

Writes ``--lists`` class lists of ``--classes`` texts (384-wide float32 vectors, MiniLM's width)
through a cache bounded at ``--mb``, so the later lists evict the earlier ones; in the same run, the
bound's worth of the same rows goes into the old layout, with no eviction.

    .venv/bin/python benchmarks/embedding_cache.py [--mb 20] [--lists 20] [--classes 1000]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from mllzoo.store import blobs
from mllzoo.store.usercache import EmbeddingCache

OLD_LAYOUT = (
    "create table embeddings (embedder text not null, text text not null, dtype text not null, "
    "shape text not null, data blob not null, checksum text not null, primary key (embedder, text)) "
    "without rowid"
)


def on_disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20)
    parser.add_argument("--lists", type=int, default=20)
    parser.add_argument("--classes", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    lists = [
        ([f"list {i} class {j}: a photo of a thing" for j in range(args.classes)],
         rng.random((args.classes, 384), dtype=np.float32))
        for i in range(args.lists)
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cache.db"
        cache = EmbeddingCache(path, limit_bytes=int(args.mb * 1e6))
        started = time.perf_counter()
        for texts, vectors in lists:
            cache.put("minilm", texts, vectors)
        put = (time.perf_counter() - started) / len(lists)
        started = time.perf_counter()
        found = cache.get("minilm", lists[-1][0])
        get = time.perf_counter() - started
        held, bounded = cache.held_bytes() or 0, on_disk(path)
        kept = [text for texts, _ in lists for text in texts if text in found]
        cache.close()

        old = Path(folder) / "old.db"
        conn = sqlite3.connect(old)
        conn.execute("pragma journal_mode = wal")
        conn.execute(OLD_LAYOUT)
        total = 0
        for texts, vectors in reversed(lists):  # the same rows the bound keeps, newest first
            for text, vector in zip(texts, vectors):
                if total >= held:
                    break
                p = blobs.pack(vector)
                conn.execute(
                    "insert into embeddings values ('minilm', ?, ?, ?, ?, ?)",
                    [text, p["dtype"], p["shape"], p["data"], p["checksum"]],
                )
                total += len(p["data"]) + len(text.encode()) + len("minilm") + 64
        conn.commit()
        conn.execute("pragma wal_checkpoint(truncate)")
        conn.close()
        unbounded = on_disk(old)
    print(
        f"{args.lists} lists x {args.classes} texts through a {args.mb:g} MB bound: holds "
        f"{held / 1e6:.1f} MB, file and journal {bounded / 1e6:.1f} MB ({bounded / held:.2f}x); "
        f"a put of one list {put * 1000:.0f} ms, a warm get of the last {get * 1000:.0f} ms "
        f"({len(kept)} of {args.classes} hits)"
    )
    print(
        f"the layout before bounds, the same {total / 1e6:.1f} MB of rows: "
        f"{unbounded / 1e6:.1f} MB ({unbounded / total:.2f}x); bounded file / old file "
        f"{bounded / unbounded:.2f}x"
    )


if __name__ == "__main__":
    main()
