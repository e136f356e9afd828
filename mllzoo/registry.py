"""The SQLite registry (through sqlite-utils): graphs, models, labels, text caches and runs.

One file holds everything selection needs, so ``recommend`` runs with no images, no WordNet and no
model weights. Schema changes go through ``sqlite_utils.Migrations("mllzoo")``; an applied
migration is never edited. WAL mode and a busy timeout let several processes share one file.
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

from . import blobs
from .errors import MllzooError

migrations = Migrations("mllzoo")
SHIPPED_REGISTRY = ("mllzoo", "data/registry.db")  # package data: in the wheel and in a checkout alike


@migrations()
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


@migrations()
def m002_node_embeddings(db: sqlite_utils.Database) -> None:
    """A graph's caption embeddings as one matrix per embedder: one read per ``recommend``."""
    db["node_embeddings"].create(
        {"graph_id": str, "embedder": str, "dtype": str, "shape": str, "data": bytes},
        pk=("graph_id", "embedder"), foreign_keys=[("graph_id", "graphs", "id")],
    )


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
    if not user.exists():
        copy_shipped_registry(user)
    return user


def copy_shipped_registry(target: Path) -> None:
    """Copy the registry shipped in the package to ``target`` (a new file appears whole or not at all)."""
    from importlib import resources

    package, name = SHIPPED_REGISTRY
    with resources.as_file(resources.files(package).joinpath(name)) as shipped:
        if not shipped.exists():
            return  # a build without the data file: the user starts with an empty registry
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(shipped, partial)
        partial.replace(target)


MMAP_BYTES = 1 << 30


class Registry:
    """A registry file, migrated on open. ``create=False`` refuses to make a new file."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise MllzooError(f"registry not found: {self.path}")
        if self.path.is_dir():
            raise MllzooError(f"registry path is a folder, not a file: {self.path}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 60000")
            # labels are read whole and often: mapped pages skip a read() call per 4 KB overflow page
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            self.db = sqlite_utils.Database(conn)
            self._check_schema()
            if migrations.pending(self.db):
                if self.db.journal_mode != "wal":
                    self.db.enable_wal()
                migrations.apply(self.db)
        except sqlite3.DatabaseError as exc:
            raise MllzooError(f"{self.path} is not a readable mllzoo registry ({exc})") from None

    def _check_schema(self) -> None:
        known = {migration.name for migration in migrations._migrations}
        newer = [m.name for m in migrations.applied(self.db) if m.name not in known]
        if newer:
            raise MllzooError(
                f"{self.path} was written by a newer mllzoo (schema {newer[-1]}); upgrade mllzoo to use it"
            )
        tables = set(self.db.table_names())
        if tables and migrations.migrations_table not in tables:
            raise MllzooError(f"{self.path} is an SQLite file but not an mllzoo registry")

    def close(self) -> None:
        self.db.conn.close()

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction that takes the write lock up front (``BEGIN IMMEDIATE``).

        Concurrent writers then wait for the busy timeout instead of failing on a stale read
        snapshot; sqlite-utils' own ``atomic()`` blocks nest inside as savepoints.
        """
        self.db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.conn.execute("ROLLBACK")
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
        """Cached vectors by text hash; read as plain tuples, since a graph has thousands of captions."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for text_hash, dtype, shape, data in self.db.execute(
                f"select text_hash, dtype, shape, data from text_embeddings "
                f"where embedder = ? and text_hash in ({marks})", [embedder, *chunk]
            ):
                found[text_hash] = blobs.array(dtype, shape, data)
        return found

    def cache_embeddings(self, embedder: str, items: list[tuple[str, str, np.ndarray]]) -> None:
        """Store ``(hash, text, vector)`` rows for ``embedder``."""
        rows = [{"embedder": embedder, "text_hash": h, "text": t, **blobs.pack(v.astype(np.float32))}
                for h, t, v in items]
        with self.transaction():
            self.db["text_embeddings"].upsert_all(rows, pk=("embedder", "text_hash"))

    def node_embeddings(self, graph_id: str, embedder: str) -> np.ndarray | None:
        rows = list(self.db["node_embeddings"].rows_where("graph_id = ? and embedder = ?", [graph_id, embedder]))
        return blobs.unpack(rows[0]) if rows else None

    def save_node_embeddings(self, graph_id: str, embedder: str, vectors: np.ndarray) -> None:
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
        arrays = {
            row["name"]: blobs.unpack(row)
            for row in self.db["label_arrays"].rows_where("model_id = ? and graph_id = ?", [model_id, graph_id])
        }
        return rows[0]["format"], arrays, json.loads(rows[0]["meta"] or "{}")

    def iter_labels(self, graph_id: str) -> Iterator[tuple[str, dict[str, np.ndarray], dict]]:
        """Every complete label on a graph, ``(model_id, arrays, meta)`` in model-id order, one at a time.

        One statement reads one consistent state of the file (WAL), so a label published meanwhile
        is either whole or absent; a caller can use each label before the next is read.
        """
        rows = self.db.execute(
            "select a.model_id, a.name, a.dtype, a.shape, a.data, l.meta from label_arrays a join labels l "
            "on a.model_id = l.model_id and a.graph_id = l.graph_id where a.graph_id = ? order by a.model_id",
            [graph_id])
        for model_id, group in itertools.groupby(rows, key=lambda row: row[0]):
            arrays, meta = {}, "{}"
            for _, name, dtype, shape, data, meta in group:
                arrays[name] = blobs.array(dtype, shape, data)
            yield model_id, arrays, json.loads(meta or "{}")

    def save_label_part(self, model_id: str, graph_id: str, part: int, arrays: dict[str, np.ndarray]) -> None:
        """Keep one finished chunk of a label so that an interrupted run resumes from it."""
        with self.transaction():
            self.db["label_parts"].upsert_all(
                [{"model_id": model_id, "graph_id": graph_id, "part": part, "name": name, **blobs.pack(a)}
                 for name, a in arrays.items()], pk=("model_id", "graph_id", "part", "name"),
            )

    def label_parts(self, model_id: str, graph_id: str) -> dict[int, dict[str, np.ndarray]]:
        parts: dict[int, dict[str, np.ndarray]] = {}
        for row in self.db["label_parts"].rows_where("model_id = ? and graph_id = ?", [model_id, graph_id]):
            parts.setdefault(row["part"], {})[row["name"]] = blobs.unpack(row)
        return parts

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

    # graphs -------------------------------------------------------------------------------
    def save_graph(self, graph_id: str, name: str, meta: dict, nodes: Iterable[dict], images: Iterable[tuple[str, str]],
                   samples: Iterable[tuple[int, int]]) -> None:
        """Store a graph (node rows, ``(hash, path)`` per image, ``(node, image)`` pairs) in one transaction,
        replacing one with the same id, and make it the current graph."""
        with self.transaction():
            for table in ("samples", "images", "nodes", "graphs"):
                self.db.execute(f"delete from {table} where {'id' if table == 'graphs' else 'graph_id'} = ?", [graph_id])
            self.db["graphs"].insert({"id": graph_id, "name": name, "created": now(), "meta": json.dumps(meta)})
            self.db["nodes"].insert_all({"graph_id": graph_id, **node} for node in nodes)
            self.db["images"].insert_all({"graph_id": graph_id, "idx": i, "hash": h, "path": p}
                                         for i, (h, p) in enumerate(images))
            self.db["samples"].insert_all({"graph_id": graph_id, "node_idx": int(n), "image_idx": int(i)}
                                          for n, i in samples)
            self.set_setting("graph", graph_id)

    def graph_nodes(self, graph_id: str) -> list[tuple]:
        """``(idx, synset, wnid, name, definition, caption, depth, parents JSON)`` per node, by idx (plain
        tuples: a graph has thousands of nodes)."""
        return self.db.execute("select idx, synset, wnid, name, definition, caption, depth, parents from nodes "
                               "where graph_id = ? order by idx", [graph_id]).fetchall()

    def graph_images(self, graph_id: str) -> list[tuple[str, str]]:
        """``(hash, path)`` per unique image, by idx."""
        return self.db.execute("select hash, path from images where graph_id = ? order by idx", [graph_id]).fetchall()

    def graph_samples(self, graph_id: str) -> np.ndarray:
        """The (node, image) pairs as int32 ``[n, 2]``, sorted."""
        rows = self.db.execute("select node_idx, image_idx from samples where graph_id = ? order by node_idx, image_idx",
                               [graph_id]).fetchall()
        return np.array(rows, dtype=np.int32).reshape(-1, 2)

    def graph_meta(self, graph_id: str) -> dict | None:
        rows = list(self.db["graphs"].rows_where("id = ?", [graph_id]))
        return json.loads(rows[0]["meta"]) if rows else None

    # class descriptions of remote captioners ----------------------------------------------
    def cached_descriptions(self, captioner: str, key: str) -> list[str] | None:
        rows = list(self.db["descriptions"].rows_where("captioner = ? and key = ?", [captioner, key]))
        return json.loads(rows[0]["texts"]) if rows else None

    def save_descriptions(self, captioner: str, key: str, name: str, texts: list[str]) -> None:
        with self.transaction():
            self.db["descriptions"].upsert(
                {"captioner": captioner, "key": key, "name": name, "texts": json.dumps(texts), "created": now()},
                pk=("captioner", "key"))


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
