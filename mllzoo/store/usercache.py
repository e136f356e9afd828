"""The user's cache of text embeddings, so a class list embedded once costs nothing the next time.

It is an SQLite file of its own in the user data folder (``$MLLZOO_CACHE_DIR`` overrides it), never
a registry: the shipped registry stays as shipped, and a cache lost costs only time. Rows are keyed
by embedder id and the exact text. WAL mode and a busy timeout let concurrent processes share it;
a damaged file is set aside and rebuilt, and a cache that cannot be used is skipped, never an error.

It is bounded (the ``embedding-cache-mb`` setting; 0 turns it off): triggers keep the bytes it holds
in one row, and a write that takes it past the bound evicts the least recently used rows in the same
transaction, so the bound holds however many processes write. A row's last use is a coarse
timestamp, rewritten on a hit only when it is older than :data:`USE_RESOLUTION`: readers of a warm
cache do not write.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mllzoo.errors import MllzooError, warn
from mllzoo.store import blobs, config

CACHE_ENV = "MLLZOO_CACHE_DIR"
FILE_NAME = "embeddings-cache.db"
BUSY_MS = 10_000
USE_RESOLUTION = 300  # seconds: a hit rewrites a row's last use only when it is older than this
JOURNAL_BYTES = (
    4_000_000  # the WAL is cut back to this after each checkpoint: it counts on disk too
)
VERSION = 2  # PRAGMA user_version of a cache with last use and a byte count (1: neither)
SCHEMA = [  # a rowid table: a row of a few KB fits its page (one WITHOUT ROWID spilled to overflow pages)
    "create table if not exists embeddings (embedder text not null, text text not null, dtype text not "
    "null, shape text not null, data blob not null, checksum text not null, used integer not null "
    "default 0)",
    "create unique index if not exists embeddings_key on embeddings (embedder, text)",
    "create index if not exists embeddings_used on embeddings (used)",
]


def row_bytes(row: str) -> str:
    """What one row counts against the bound, in SQL over ``row`` (``new``, ``old`` or the table): its
    vector, text and embedder id, and a fixed allowance for the rest of the row and the index."""
    return (
        f"(length({row}.data) + length(cast({row}.text as blob)) "
        f"+ length(cast({row}.embedder as blob)) + 64)"
    )


COUNTING = [  # the byte count, kept by triggers
    "create table if not exists usage (id integer primary key check (id = 0), bytes integer not null)",
    "create trigger if not exists counted_insert after insert on embeddings begin "
    f"update usage set bytes = bytes + {row_bytes('new')}; end",
    "create trigger if not exists counted_delete after delete on embeddings begin "
    f"update usage set bytes = bytes - {row_bytes('old')}; end",
    "create trigger if not exists counted_update after update on embeddings begin "
    f"update usage set bytes = bytes + {row_bytes('new')} - {row_bytes('old')}; end",
    "insert or replace into usage values "
    f"(0, (select coalesce(sum({row_bytes('embeddings')}), 0) from embeddings))",
    f"pragma user_version = {VERSION}",
]


def default_path() -> Path:
    """``$MLLZOO_CACHE_DIR/embeddings-cache.db``, else beside the user registry in the user data folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / FILE_NAME
    import platformdirs

    return Path(platformdirs.user_data_dir("mllzoo")) / FILE_NAME


class EmbeddingCache:
    """Text embeddings by ``(embedder id, text)``; every failure degrades to a cache miss.

    ``limit_bytes`` bounds it (default: the ``embedding-cache-mb`` setting; 0: no cache, the file is
    not even opened); ``clock`` gives the time a row is last used (seconds)."""

    def __init__(
        self,
        path: str | Path | None = None,
        limit_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.path = Path(path) if path else default_path()
        self._limit = limit_bytes
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._broken = False

    def get(self, embedder: str, texts: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``texts``, by text; the hits whose last use is stale are touched."""
        now = int(self._clock())
        stale: list[str] = []

        def execute(sql: str, params: list) -> list:
            rows = self._run(sql, params) or []
            stale.extend(row[0] for row in rows if not row[-1] > now - USE_RESOLUTION)
            return [row[:-1] for row in rows]

        found = blobs.lookup(
            execute,
            "select text, dtype, shape, data, checksum, used from embeddings "
            "where embedder = ? and text in",
            [embedder],
            texts,
        )
        touched = [text for text in stale if text in found]
        for start in range(0, len(touched), 500):
            part = touched[start : start + 500]
            self._run(
                f"update embeddings set used = ? where embedder = ? and text in "
                f"({','.join('?' * len(part))})",
                [[now, embedder, *part]],
                many=True,
            )
        return found

    def put(self, embedder: str, texts: list[str], vectors: np.ndarray) -> None:
        """Remember ``vectors`` (one row per text) for ``embedder`` and evict the least recently used rows
        past the bound, in one transaction."""
        now = int(self._clock())
        packed = [blobs.pack(np.asarray(v, np.float32)) for v in vectors]
        rows = [
            (embedder, text, p["dtype"], p["shape"], p["data"], p["checksum"], now)
            for text, p in zip(texts, packed)
        ]
        if rows:
            self._run(
                "insert into embeddings (embedder, text, dtype, shape, data, checksum, used) "
                "values (?, ?, ?, ?, ?, ?, ?) on conflict (embedder, text) do update set "
                "dtype = excluded.dtype, shape = excluded.shape, data = excluded.data, "
                "checksum = excluded.checksum, used = excluded.used",
                rows,
                many=True,
            )

    def held_bytes(self) -> int | None:
        """What the cache holds, counted as the bound counts it; ``None`` when it is not used."""
        rows = self._run("select bytes from usage", [])
        return rows[0][0] if rows else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self, sql: str, params: list, many: bool = False) -> list | None:
        """Run one statement (``many``: a write, then eviction, in one transaction); on a damaged file
        rebuild once, on any other failure give up quietly."""
        for attempt in range(2):
            conn = self._connect()
            if conn is None:
                return None
            try:
                if many:
                    with _write(conn):
                        conn.executemany(sql, params)
                        self._evict(conn)
                    return []
                return conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if attempt or not _damaged(exc):
                    self._give_up(exc)
                    return None
                self._rebuild(exc)
        return None

    def _evict(self, conn: sqlite3.Connection) -> None:
        """Delete the least recently used rows until the cache is within its bound (in the caller's
        transaction, so no other process sees it past the bound)."""
        excess = conn.execute("select bytes from usage").fetchone()[0] - self._limit_bytes()
        if excess <= 0:
            return
        doomed = []
        for key in conn.execute(
            f"select embedder, text, {row_bytes('embeddings')} from embeddings "
            "order by used, embedder, text"
        ):
            doomed.append(key[:2])
            excess -= key[2]
            if excess <= 0:
                break
        conn.executemany("delete from embeddings where embedder = ? and text = ?", doomed)

    def _limit_bytes(self) -> int:
        if self._limit is None:
            self._limit = config.embedding_cache_bytes()
        return self._limit

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and not self._broken:
            try:
                if not self._limit_bytes():
                    self._broken = True  # turned off: never opened
                    return None
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = wal")
                conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_BYTES}")
                if conn.execute("PRAGMA user_version").fetchone()[0] != VERSION:
                    _upgrade(conn)
                self._conn = conn
            except (OSError, sqlite3.DatabaseError, MllzooError) as exc:
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


@contextlib.contextmanager
def _write(conn: sqlite3.Connection):
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error: the write lock up front, so that the
    byte count a transaction reads is the one it changes."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _upgrade(conn: sqlite3.Connection) -> None:
    """Make a new cache, or bound one written before bounds: its rows are kept, last used long ago."""
    with _write(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == VERSION:
            return  # another process upgraded it meanwhile
        unbounded = conn.execute(
            "select count(*) from sqlite_master where type = 'table' and name = 'embeddings'"
        ).fetchone()[0]
        if unbounded:
            conn.execute("alter table embeddings rename to unbounded")
        for statement in SCHEMA:
            conn.execute(statement)
        if unbounded:
            conn.execute(
                "insert into embeddings (embedder, text, dtype, shape, data, checksum) "
                "select embedder, text, dtype, shape, data, checksum from unbounded"
            )
            conn.execute("drop table unbounded")
        for statement in COUNTING:
            conn.execute(statement)
