"""The SQLite registry (through sqlite-utils): graphs, models, labels, text caches and runs.

One file holds everything selection needs, so ``recommend`` runs with no images, no WordNet and no
model weights. Schema changes go through ``sqlite_utils.Migrations("mllzoo")``; an applied
migration is never edited. WAL mode and a busy timeout let several processes share one file.
Every stored array carries a checksum, verified on read (:mod:`mllzoo.blobs`); what a path holds is
checked before SQLite opens it (:mod:`mllzoo.registry_file`).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import os
import shutil
import socket
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import sqlite_utils
from sqlite_utils import Migrations

from . import blobs, registry_file
from .errors import DamagedLabelError, MllzooError

migrations = Migrations("mllzoo")
MIGRATION_NAMES: list[str] = []  # in order: a registry that applied any other name is newer than this code
SHIPPED_REGISTRY = Path(__file__).resolve().parent.parent / "registry.db"
BLOB_TABLES = ("label_arrays", "label_parts", "node_embeddings", "text_embeddings")


def migration(fn):
    """Register a schema migration (and remember its name)."""
    MIGRATION_NAMES.append(fn.__name__)
    return migrations()(fn)


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db["settings"].create({"key": str, "value": str}, pk="key")
    db["graphs"].create({"id": str, "name": str, "created": str, "meta": str}, pk="id")
    db["nodes"].create(
        {"graph_id": str, "idx": int, "synset": str, "wnid": str, "name": str, "definition": str,
         "caption": str, "depth": int, "parents": str},
        pk=("graph_id", "idx"), foreign_keys=[("graph_id", "graphs", "id")],
    )
    db["images"].create(
        {"graph_id": str, "idx": int, "hash": str, "path": str},
        pk=("graph_id", "idx"), foreign_keys=[("graph_id", "graphs", "id")],
    )
    db["samples"].create(
        {"graph_id": str, "node_idx": int, "image_idx": int},
        pk=("graph_id", "node_idx", "image_idx"), foreign_keys=[("graph_id", "graphs", "id")],
    )
    db["text_embeddings"].create(
        {"embedder": str, "text_hash": str, "text": str, "dtype": str, "shape": str, "data": bytes},
        pk=("embedder", "text_hash"),
    )
    db["models"].create(
        {"id": str, "family": str, "arch": str, "tag": str, "plugin": str, "plugin_version": str,
         "metadata": str, "first_seen": str},
        pk="id",
    )
    db["labels"].create(
        {"model_id": str, "graph_id": str, "format": str, "created": str, "meta": str},
        pk=("model_id", "graph_id"), foreign_keys=[("graph_id", "graphs", "id")],
    )
    db["label_arrays"].create(
        {"model_id": str, "graph_id": str, "name": str, "dtype": str, "shape": str, "data": bytes},
        pk=("model_id", "graph_id", "name"),
    )
    db["label_parts"].create(
        {"model_id": str, "graph_id": str, "part": int, "name": str, "dtype": str, "shape": str,
         "data": bytes},
        pk=("model_id", "graph_id", "part", "name"),
    )
    db["label_claims"].create(
        {"model_id": str, "graph_id": str, "host": str, "pid": int, "claimed": str},
        pk=("model_id", "graph_id"),
    )
    db["descriptions"].create(
        {"captioner": str, "key": str, "name": str, "texts": str, "created": str}, pk=("captioner", "key")
    )
    db["runs"].create(
        {"id": int, "command": str, "started": str, "finished": str, "status": str, "info": str}, pk="id"
    )


@migration
def m002_node_embeddings(db: sqlite_utils.Database) -> None:
    """A graph's caption embeddings as one matrix per embedder: one read per ``recommend``."""
    db["node_embeddings"].create(
        {"graph_id": str, "embedder": str, "dtype": str, "shape": str, "data": bytes},
        pk=("graph_id", "embedder"), foreign_keys=[("graph_id", "graphs", "id")],
    )


@migration
def m003_checksums(db: sqlite_utils.Database) -> None:
    """A checksum beside every stored array, verified on read; a blob that already did not fit its
    dtype and shape gets none, so it reads as damaged."""
    db.conn.create_function("mllzoo_checksum", 3, blobs.migrated_checksum, deterministic=True)
    for table in BLOB_TABLES:
        db[table].add_column("checksum", str)
        db.execute(f"update {table} set checksum = mllzoo_checksum(dtype, shape, data)")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def default_registry_path() -> Path:
    """``$MLLZOO_REGISTRY``, else ``./registry.db`` when present, else the user data dir's copy."""
    if os.environ.get("MLLZOO_REGISTRY"):
        return Path(os.environ["MLLZOO_REGISTRY"])
    local = Path("registry.db")
    if local.exists():
        return local
    import platformdirs

    user = Path(platformdirs.user_data_dir("mllzoo")) / "registry.db"
    if not user.exists() and SHIPPED_REGISTRY.exists():
        user.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHIPPED_REGISTRY, user)
    return user


MMAP_BYTES = 1 << 30


class Registry:
    """A registry file, migrated on open.

    ``create=False`` refuses to make a new file; ``write=False`` (read-only commands) opens a registry
    that cannot be written read-only instead of refusing it. A file that is not an mllzoo registry is
    never written to, and one that is gets migrated only when it can be written.
    """

    def __init__(self, path: str | Path, create: bool = True, write: bool = True):
        self.path = Path(path)
        self.writable = registry_file.check(self.path, create, write)
        try:
            if self.writable:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = registry_file.connect(self.path, self.writable)
            conn.execute("PRAGMA busy_timeout = 60000")
            # labels are read whole and often: mapped pages skip a read() call per 4 KB overflow page
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            self.db = sqlite_utils.Database(conn)
            self._check_schema(empty_ok=create and write)
            pending = migrations.pending(self.db)
            if pending and not self.writable:
                raise MllzooError(f"registry {self.path} needs a schema upgrade ({pending[-1].name}) but is "
                                  f"read-only: run any mllzoo command on it once with write access")
            if pending:
                if self.db.journal_mode != "wal":
                    self.db.enable_wal()
                migrations.apply(self.db)
        except sqlite3.OperationalError as exc:
            raise (registry_file.read_only(self.path) if _refused_write(exc)
                   else MllzooError(f"registry {self.path} cannot be opened ({exc})")) from None
        except sqlite3.DatabaseError as exc:
            raise registry_file.not_sqlite(self.path, exc) from None

    def _check_schema(self, empty_ok: bool) -> None:
        """Refuse, before any write, a file that is not an mllzoo registry or was written by a newer mllzoo."""
        newer = [m.name for m in migrations.applied(self.db) if m.name not in MIGRATION_NAMES]
        if newer:
            raise MllzooError(
                f"{self.path} was written by a newer mllzoo (schema {newer[-1]}); upgrade mllzoo to use it"
            )
        tables = self.db.table_names()
        if not tables and not empty_ok:
            raise MllzooError(f"{self.path} is an empty SQLite database, not an mllzoo registry")
        if tables and not migrations.applied(self.db):
            raise MllzooError(f"{self.path} is an SQLite database but not an mllzoo registry "
                              f"(its tables: {', '.join(sorted(tables)[:5])})")


    def close(self) -> None:
        self.db.conn.close()

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction that takes the write lock up front (``BEGIN IMMEDIATE``).

        Concurrent writers then wait for the busy timeout instead of failing on a stale read
        snapshot; sqlite-utils' own ``atomic()`` blocks nest inside as savepoints.
        """
        try:
            self.db.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _refused_write(exc):
                raise registry_file.read_only(self.path) from None
            raise
        try:
            yield self.db
        except BaseException as exc:
            if self.db.conn.in_transaction:
                self.db.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _refused_write(exc):
                raise registry_file.read_only(self.path) from None
            raise
        self.db.conn.execute("COMMIT")

    # settings -----------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        rows = list(self.db["settings"].rows_where("key = ?", [key]))
        return rows[0]["value"] if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self.db["settings"].upsert({"key": key, "value": value}, pk="key")

    # models -------------------------------------------------------------------------------
    def record_models(self, entries: Iterable[Any]) -> None:
        """Remember what the plugins offer (id, plugin and its version, metadata)."""
        rows = []
        for entry in entries:
            spec = entry.spec
            rows.append({
                "id": spec.id, "family": spec.family, "arch": spec.arch, "tag": spec.tag,
                "plugin": entry.plugin, "plugin_version": entry.plugin_version,
                "metadata": json.dumps(spec.metadata(), sort_keys=True),
            })
        columns = ["id", "family", "arch", "tag", "plugin", "plugin_version", "metadata"]
        with self.transaction():
            for row in rows:  # first_seen is kept from the first time a model was recorded
                self.db.execute(
                    f"insert into models ({', '.join(columns)}, first_seen) values ({', '.join('?' * 8)}) "
                    f"on conflict(id) do update set {', '.join(f'{c} = excluded.{c}' for c in columns[1:])}",
                    [row[c] for c in columns] + [now()])

    def models(self) -> list[dict]:
        """Models the registry knows, metadata decoded."""
        return [
            {**row, "metadata": json.loads(row["metadata"] or "{}")}
            for row in self.db["models"].rows_where(order_by="id")
        ]

    # graphs -------------------------------------------------------------------------------
    def current_graph_id(self) -> str | None:
        return self.get_setting("graph")

    def require_graph_id(self) -> str:
        graph_id = self.current_graph_id()
        if graph_id is None:
            raise MllzooError(f"{self.path} has no semantic graph yet: run `mllzoo graph build --samples DIR`")
        return graph_id

    # text embeddings ----------------------------------------------------------------------
    def cached_embeddings(self, embedder: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors by text hash; read as plain tuples, since a graph has thousands of captions.

        A damaged vector is left out, so the caller embeds that text again and overwrites it.
        """
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for text_hash, *columns in self.db.execute(
                f"select text_hash, dtype, shape, data, checksum from text_embeddings "
                f"where embedder = ? and text_hash in ({marks})", [embedder, *chunk]
            ):
                with contextlib.suppress(blobs.DamagedBlob):
                    found[text_hash] = blobs.array(*columns)
        return found

    def cache_embeddings(self, embedder: str, items: list[tuple[str, str, np.ndarray]]) -> None:
        """Store ``(hash, text, vector)`` rows for ``embedder`` (not in a read-only registry: a cache is optional)."""
        if not self.writable:
            return
        rows = [{"embedder": embedder, "text_hash": h, "text": t, **blobs.pack(v.astype(np.float32))}
                for h, t, v in items]
        with self.transaction():
            self.db["text_embeddings"].upsert_all(rows, pk=("embedder", "text_hash"))

    def node_embeddings(self, graph_id: str, embedder: str) -> np.ndarray | None:
        """The kept caption embeddings of a graph, ``None`` if there are none; raises ``blobs.DamagedBlob``."""
        rows = list(self.db["node_embeddings"].rows_where("graph_id = ? and embedder = ?", [graph_id, embedder]))
        return blobs.unpack(rows[0]) if rows else None

    def save_node_embeddings(self, graph_id: str, embedder: str, vectors: np.ndarray) -> None:
        """Keep a graph's caption embeddings (not in a read-only registry: they are recomputed each time)."""
        if not self.writable:
            return
        with self.transaction():
            self.db["node_embeddings"].upsert(
                {"graph_id": graph_id, "embedder": embedder, **blobs.pack(vectors.astype(np.float32))},
                pk=("graph_id", "embedder"))

    # labels -------------------------------------------------------------------------------
    def labeled_model_ids(self, graph_id: str) -> set[str]:
        return {row["model_id"] for row in self.db["labels"].rows_where("graph_id = ?", [graph_id])}

    def save_label(self, model_id: str, graph_id: str, fmt: str, arrays: dict[str, np.ndarray],
                   meta: dict) -> None:
        """Publish a complete label in one transaction and drop its partial work."""
        with self.transaction():
            self.db.execute("delete from label_arrays where model_id = ? and graph_id = ?", [model_id, graph_id])
            self.db["label_arrays"].insert_all(
                [{"model_id": model_id, "graph_id": graph_id, "name": name, **blobs.pack(a)}
                 for name, a in arrays.items()]
            )
            self.db["labels"].upsert(
                {"model_id": model_id, "graph_id": graph_id, "format": fmt, "created": now(),
                 "meta": json.dumps(meta, sort_keys=True)}, pk=("model_id", "graph_id"),
            )
            self.db.execute("delete from label_parts where model_id = ? and graph_id = ?", [model_id, graph_id])

    def load_label(self, model_id: str, graph_id: str) -> tuple[str, dict[str, np.ndarray], dict]:
        rows = list(self.db["labels"].rows_where("model_id = ? and graph_id = ?", [model_id, graph_id]))
        if not rows:
            raise MllzooError(f"{model_id} has no label on graph {graph_id}: run `mllzoo register {model_id}`")
        arrays = {}
        for row in self.db["label_arrays"].rows_where("model_id = ? and graph_id = ?", [model_id, graph_id]):
            try:
                arrays[row["name"]] = blobs.unpack(row)
            except blobs.DamagedBlob as exc:
                raise DamagedLabelError(model_id, f"is damaged (array {row['name']!r}: {exc})") from None
        return rows[0]["format"], arrays, json.loads(rows[0]["meta"] or "{}")

    def iter_labels(self, graph_id: str, fmt: str, skip_damaged: bool = False
                    ) -> Iterator[tuple[str, dict[str, np.ndarray] | DamagedLabelError, dict]]:
        """Every complete label on a graph, ``(model_id, arrays, meta)`` in model-id order, one at a time.

        One statement reads one consistent state of the file (WAL), so a label published meanwhile
        is either whole or absent; a caller can use each label before the next is read. A label
        that is damaged or not in format ``fmt`` raises :class:`DamagedLabelError`; with
        ``skip_damaged`` that error is yielded in place of its arrays and reading goes on.
        """
        rows = self.db.execute(
            "select a.model_id, a.name, a.dtype, a.shape, a.data, a.checksum, l.meta, l.format "
            "from label_arrays a join labels l on a.model_id = l.model_id and a.graph_id = l.graph_id "
            "where a.graph_id = ? order by a.model_id", [graph_id])
        for model_id, group in itertools.groupby(rows, key=lambda row: row[0]):
            arrays: dict[str, np.ndarray] = {}
            meta, problem = "{}", None
            for _, name, dtype, shape, data, checksum, meta, stored_fmt in group:
                if stored_fmt != fmt:
                    problem = f"has format {stored_fmt!r}, which this mllzoo does not read"
                elif problem is None:
                    try:
                        arrays[name] = blobs.array(dtype, shape, data, checksum)
                    except blobs.DamagedBlob as exc:
                        problem = f"is damaged (array {name!r}: {exc})"
            if problem is None:
                yield model_id, arrays, json.loads(meta or "{}")
            elif skip_damaged:
                yield model_id, DamagedLabelError(model_id, problem), json.loads(meta or "{}")
            else:
                raise DamagedLabelError(model_id, problem)

    def save_label_part(self, model_id: str, graph_id: str, part: int, arrays: dict[str, np.ndarray]) -> None:
        """Keep one finished chunk of a label so that an interrupted run resumes from it."""
        with self.transaction():
            self.db["label_parts"].upsert_all(
                [{"model_id": model_id, "graph_id": graph_id, "part": part, "name": name, **blobs.pack(a)}
                 for name, a in arrays.items()], pk=("model_id", "graph_id", "part", "name"),
            )

    def label_parts(self, model_id: str, graph_id: str) -> dict[int, dict[str, np.ndarray]]:
        """Saved chunks by part; a part with a damaged array is left out, so it is redone."""
        parts: dict[int, dict[str, np.ndarray]] = {}
        damaged = set()
        for row in self.db["label_parts"].rows_where("model_id = ? and graph_id = ?", [model_id, graph_id]):
            try:
                parts.setdefault(row["part"], {})[row["name"]] = blobs.unpack(row)
            except blobs.DamagedBlob:
                damaged.add(row["part"])
        return {part: arrays for part, arrays in parts.items() if part not in damaged}

    def claim(self, model_id: str, graph_id: str) -> bool:
        """Take the right to label a model; a claim whose process died is taken over."""
        host, pid = socket.gethostname(), os.getpid()
        with self.transaction():
            rows = list(self.db["label_claims"].rows_where("model_id = ? and graph_id = ?", [model_id, graph_id]))
            if rows and not (rows[0]["host"] == host and rows[0]["pid"] == pid) and _alive(rows[0], host):
                return False
            self.db["label_claims"].upsert(
                {"model_id": model_id, "graph_id": graph_id, "host": host, "pid": pid, "claimed": now()},
                pk=("model_id", "graph_id"),
            )
        return True

    def release(self, model_id: str, graph_id: str) -> None:
        with self.transaction():
            self.db.execute("delete from label_claims where model_id = ? and graph_id = ? and pid = ?",
                            [model_id, graph_id, os.getpid()])

    # runs ---------------------------------------------------------------------------------
    def start_run(self, command: str, info: dict) -> int:
        with self.transaction():
            return self.db["runs"].insert(
                {"command": command, "started": now(), "status": "running", "info": json.dumps(info)}
            ).last_pk

    def finish_run(self, run_id: int, status: str, info: dict) -> None:
        with self.transaction():
            self.db["runs"].update(run_id, {"finished": now(), "status": status, "info": json.dumps(info)})


def _refused_write(exc: sqlite3.OperationalError) -> bool:
    """SQLite's answer to a write on a file it may not change (permissions checked late, read-only media)."""
    return "readonly" in str(exc)


def _alive(claim: dict, host: str) -> bool:
    """A claim from another host is trusted; on this host, only while its process lives."""
    if claim["host"] != host:
        return True
    try:
        os.kill(claim["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
