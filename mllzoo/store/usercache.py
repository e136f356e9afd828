"""The user's cache of text embeddings, so a class list embedded once costs nothing the next time.

It is an SQLite file of its own in the user data folder (``$MLLZOO_CACHE_DIR`` overrides it), never
a registry: the shipped registry stays as shipped, and a cache lost costs only time. Rows are keyed
by embedder id and the exact text. WAL mode and a busy timeout let concurrent processes share it;
a damaged file is set aside and rebuilt, and a cache that cannot be used is skipped, never an error.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np

from mllzoo.errors import warn
from mllzoo.store import blobs

CACHE_ENV = "MLLZOO_CACHE_DIR"
FILE_NAME = "embeddings-cache.db"
BUSY_MS = 10_000
SCHEMA = (
    "create table if not exists embeddings (embedder text not null, text text not null, dtype text not null, "
    "shape text not null, data blob not null, checksum text not null, primary key (embedder, text)) without rowid"
)


def default_path() -> Path:
    """``$MLLZOO_CACHE_DIR/embeddings-cache.db``, else beside the user registry in the user data folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / FILE_NAME
    import platformdirs

    return Path(platformdirs.user_data_dir("mllzoo")) / FILE_NAME


class EmbeddingCache:
    """Text embeddings by ``(embedder id, text)``; every failure degrades to a cache miss."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self._conn: sqlite3.Connection | None = None
        self._broken = False

    def get(self, embedder: str, texts: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``texts``, by text."""
        return blobs.lookup(
            self._run,
            "select text, dtype, shape, data, checksum from embeddings "
            "where embedder = ? and text in",
            [embedder],
            texts,
        )

    def put(self, embedder: str, texts: list[str], vectors: np.ndarray) -> None:
        """Remember ``vectors`` (one row per text) for ``embedder``, in one transaction."""
        packed = [blobs.pack(np.asarray(v, np.float32)) for v in vectors]
        rows = [
            (embedder, text, p["dtype"], p["shape"], p["data"], p["checksum"])
            for text, p in zip(texts, packed)
        ]
        if rows:
            self._run(
                "insert or replace into embeddings (embedder, text, dtype, shape, data, checksum) "
                "values (?, ?, ?, ?, ?, ?)",
                rows,
                many=True,
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self, sql: str, params: list, many: bool = False) -> list | None:
        """Run one statement; on a damaged file rebuild once, on any other failure give up quietly."""
        for attempt in range(2):
            conn = self._connect()
            if conn is None:
                return None
            try:
                if many:
                    with conn:
                        conn.executemany(sql, params)
                    return []
                return conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if attempt or not _damaged(exc):
                    self._give_up(exc)
                    return None
                self._rebuild(exc)
        return None

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and not self._broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=BUSY_MS / 1000)
                conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = wal")
                conn.execute(SCHEMA)
                self._conn = conn
            except (OSError, sqlite3.DatabaseError) as exc:
                if isinstance(exc, sqlite3.DatabaseError) and _damaged(exc):
                    self._rebuild(exc)
                    return self._connect()
                self._give_up(exc)
        return self._conn

    def _rebuild(self, exc: Exception) -> None:
        """Move the damaged file aside (its WAL and index files with it) and start an empty one."""
        self.close()
        warn(f"embedding cache {self.path} is damaged ({exc}); starting a new one")
        try:
            for suffix in ("", "-wal", "-shm"):
                damaged = Path(f"{self.path}{suffix}")
                if damaged.exists():
                    damaged.replace(Path(f"{self.path}.damaged{suffix}"))
        except OSError as move_error:
            self._give_up(move_error)

    def _give_up(self, exc: Exception) -> None:
        self.close()
        if not self._broken:
            warn(f"embedding cache {self.path} not used ({exc})")
        self._broken = True


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Not a database, malformed, or a table not ours: rebuilding cures it (locked, read-only or full does not)."""
    return (
        not isinstance(exc, sqlite3.OperationalError)
        or "no such" in str(exc)
        or "no column" in str(exc)
    )
