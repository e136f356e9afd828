"""The SQLite registry (through sqlite-utils): graphs, models, labels, text caches and runs.

One file holds everything selection needs, so ``recommend`` runs with no images, no WordNet and no
model weights. Schema changes go through ``sqlite_utils.Migrations("mllzoo")``; an applied
migration is never edited. WAL mode and a busy timeout let several processes share one file.
Every stored array carries a checksum, verified on read (:mod:`mllzoo.store.blobs`); what a path holds is
checked before SQLite opens it (:mod:`mllzoo.store.registry_file`).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shlex
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils
from sqlite_utils import Migrations

from mllzoo import labels
from mllzoo.errors import MllzooError, warn
from mllzoo.store import blobs, config, registry_file, upgrade
from mllzoo.store.files import replaced_atomically
from mllzoo.store.label_store import (
    LabelStore,
    binding,
    block_checksum,
    block_rows,
    new_token,
    utc_now,
)

migrations = Migrations("mllzoo")
MIGRATION_NAMES: list[
    str
] = []  # in order: a registry that applied any other name is newer than this code
SHIPPED_REGISTRY = (
    "mllzoo",
    "data/registry.db",
)  # package data: in the wheel and in a checkout alike


CHANGE_SIGNATURE = (
    "select (select value from settings where key = 'graph'), "
    "(select group_concat(model_id || ' ' || graph_id || ' ' || coalesce(token, created), ',') "
    "from (select * from labels order by model_id, graph_id)), "
    "(select group_concat(id || ' ' || coalesce(plugin, '') || ' ' || coalesce(metadata, ''), ',') "
    "from (select * from models order by id))"
)


def migration(fn):
    """Register a schema migration (and remember its name)."""
    MIGRATION_NAMES.append(fn.__name__)
    return migrations()(fn)


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db["settings"].create({"key": str, "value": str}, pk="key")
    db["graphs"].create({"id": str, "name": str, "created": str, "meta": str}, pk="id")
    db["nodes"].create(
        {
            "graph_id": str,
            "idx": int,
            "synset": str,
            "wnid": str,
            "name": str,
            "definition": str,
            "caption": str,
            "depth": int,
            "parents": str,
        },
        pk=("graph_id", "idx"),
        foreign_keys=[("graph_id", "graphs", "id")],
    )
    db["images"].create(
        {"graph_id": str, "idx": int, "hash": str, "path": str},
        pk=("graph_id", "idx"),
        foreign_keys=[("graph_id", "graphs", "id")],
    )
    db["samples"].create(
        {"graph_id": str, "node_idx": int, "image_idx": int},
        pk=("graph_id", "node_idx", "image_idx"),
        foreign_keys=[("graph_id", "graphs", "id")],
    )
    db["text_embeddings"].create(
        {"embedder": str, "text_hash": str, "text": str, "dtype": str, "shape": str, "data": bytes},
        pk=("embedder", "text_hash"),
    )
    db["models"].create(
        {
            "id": str,
            "family": str,
            "arch": str,
            "tag": str,
            "plugin": str,
            "plugin_version": str,
            "metadata": str,
            "first_seen": str,
        },
        pk="id",
    )
    db["labels"].create(
        {"model_id": str, "graph_id": str, "format": str, "created": str, "meta": str},
        pk=("model_id", "graph_id"),
        foreign_keys=[("graph_id", "graphs", "id")],
    )
    db["label_arrays"].create(
        {"model_id": str, "graph_id": str, "name": str, "dtype": str, "shape": str, "data": bytes},
        pk=("model_id", "graph_id", "name"),
    )
    db["label_parts"].create(
        {
            "model_id": str,
            "graph_id": str,
            "part": int,
            "name": str,
            "dtype": str,
            "shape": str,
            "data": bytes,
        },
        pk=("model_id", "graph_id", "part", "name"),
    )
    db["label_claims"].create(
        {"model_id": str, "graph_id": str, "host": str, "pid": int, "claimed": str},
        pk=("model_id", "graph_id"),
    )
    db["descriptions"].create(
        {"captioner": str, "key": str, "name": str, "texts": str, "created": str},
        pk=("captioner", "key"),
    )
    db["runs"].create(
        {"id": int, "command": str, "started": str, "finished": str, "status": str, "info": str},
        pk="id",
    )


@migration
def m002_node_embeddings(db: sqlite_utils.Database) -> None:
    """A graph's caption embeddings as one matrix per embedder: one read per ``recommend``."""
    db["node_embeddings"].create(
        {"graph_id": str, "embedder": str, "dtype": str, "shape": str, "data": bytes},
        pk=("graph_id", "embedder"),
        foreign_keys=[("graph_id", "graphs", "id")],
    )


@migration
def m003_checksums(db: sqlite_utils.Database) -> None:
    """A checksum beside every stored array, verified on read; a blob that already did not fit its
    dtype and shape gets none, so it reads as damaged."""
    db.conn.create_function("mllzoo_checksum", 3, blobs.migrated_checksum, deterministic=True)
    for table in ("label_arrays", "label_parts", "node_embeddings", "text_embeddings"):
        db[table].add_column("checksum", str)
        db.execute(f"update {table} set checksum = mllzoo_checksum(dtype, shape, data)")


@migration
def m004_label_blocks(db: sqlite_utils.Database) -> None:
    """Labels as one checksummed block per graph node (:mod:`mllzoo.store.label_store`), so a query reads only
    the nodes it matched. Each whole label is converted; one already damaged keeps its labels row
    and no blocks, so it still reads as damaged."""
    db["label_blocks"].create(
        {
            "model_id": str,
            "graph_id": str,
            "node": int,
            "dtype": str,
            "ranks": bytes,
            "lengths": bytes,
            "entries": bytes,
            "checksum": str,
        },
        pk=("model_id", "graph_id", "node"),
    )
    samples_of: dict[str, np.ndarray] = {}
    for model_id, graph_id, meta in db.execute(
        "select model_id, graph_id, meta from labels"
    ).fetchall():
        if graph_id not in samples_of:
            samples_of[graph_id] = np.array(
                db.execute(
                    "select node_idx, image_idx from samples where graph_id = ? order by node_idx, image_idx",
                    [graph_id],
                ).fetchall(),
                dtype=np.int32,
            ).reshape(-1, 2)
        try:
            arrays = {
                name: blobs.array(*columns)
                for name, *columns in db.execute(
                    "select name, dtype, shape, data, checksum from label_arrays where model_id = ? and graph_id = ?",
                    [model_id, graph_id],
                )
            }
            rows = block_rows(
                model_id,
                graph_id,
                labels.Label.from_arrays(arrays, json.loads(meta)),
                samples_of[graph_id],
                token=None,
            )
        except (blobs.DamagedBlob, KeyError, ValueError, IndexError):
            continue
        db["label_blocks"].insert_all(rows, batch_size=1000)
    db["label_arrays"].drop()


@migration
def m005_bound_label_blocks(db: sqlite_utils.Database) -> None:
    """Tie every label block to its label: a ``token`` per label and block checksums over the block's
    model, graph, node and token as well as its bytes (:func:`~mllzoo.store.label_store.binding`). A
    block that fails its old checksum keeps it, so it still reads as damaged."""
    db["labels"].add_column("token", str)
    for model_id, graph_id in db.execute("select model_id, graph_id from labels").fetchall():
        token = new_token()
        db.execute(
            "update labels set token = ? where model_id = ? and graph_id = ?",
            [token, model_id, graph_id],
        )
        for node, dtype, ranks, lengths, entries, checksum in db.execute(
            "select node, dtype, ranks, lengths, entries, checksum from label_blocks "
            "where model_id = ? and graph_id = ?",
            [model_id, graph_id],
        ).fetchall():
            if not all(isinstance(b, bytes) for b in (ranks, lengths, entries)) or (
                checksum != block_checksum(dtype, ranks, lengths, entries, bound=None)
            ):
                continue
            bound = binding(model_id, graph_id, node, token)
            db.execute(
                "update label_blocks set checksum = ? where model_id = ? and graph_id = ? "
                "and node = ?",
                [block_checksum(dtype, ranks, lengths, entries, bound), model_id, graph_id, node],
            )


@migration
def m006_claim_leases(db: sqlite_utils.Database) -> None:
    """A claim is a lease: ``renewed`` (seconds since the epoch) is when its register last renewed it,
    so a claim left by a job that died on another host expires instead of blocking its model forever.
    Claims made before leases count as renewed when they were made."""
    db["label_claims"].add_column("renewed", float)


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
        with open(shipped, "rb") as source, replaced_atomically(target, ".partial") as copy:
            shutil.copyfileobj(source, copy)


class Registry(LabelStore):
    """A registry file, migrated on open.

    ``create=False`` refuses to make a new file; ``write=False`` (read-only commands) opens a registry
    that cannot be written read-only instead of refusing it. A file that is not an mllzoo registry is
    never written to, and one that is gets migrated only when it can be written.
    """

    def __init__(
        self,
        path: str | Path,
        create: bool = True,
        write: bool = True,
        read_only: bool = False,
        immutable: bool = False,
    ):
        self.path = Path(path)
        self.unknown_costs: set[str] = set()  # models whose stored GFLOPs were refused on read
        self._warned_metadata: set[str] = set()
        self.immutable = immutable  # a server's registry (`mllzoo serve`): read-only, and nobody changes the file
        read_only = (
            read_only or immutable
        )  # a web page's registry: never written, even when it could be
        could_write = registry_file.check(self.path, create and not read_only, write)
        self.writable = could_write and not read_only
        try:
            self._open(immutable, empty_ok=create and write, by_choice=could_write)
        except BaseException:
            if hasattr(self, "db"):  # a refused registry is left as it was found: no -wal, no -shm
                self.db.conn.close()
            raise

    def _open(self, immutable: bool, empty_ok: bool, by_choice: bool) -> None:
        """Connect, check the schema and apply pending migrations; user errors as one line
        (``by_choice``: a read-only registry could be written, but is read only, as the web pages do)."""
        try:
            if self.writable:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = registry_file.connect(self.path, self.writable, immutable)
            conn.execute("PRAGMA busy_timeout = 60000")
            self.db = sqlite_utils.Database(conn)
            self._check_schema(empty_ok)
            pending = migrations.pending(self.db)
            if pending and not self.writable:
                raise self._cannot_upgrade(pending[-1].name, by_choice)
            if pending:
                self._upgrade()
        except sqlite3.OperationalError as exc:
            raise (
                registry_file.read_only(self.path)
                if _refused_write(exc)
                else MllzooError(f"registry {self.path} cannot be opened ({exc})")
            ) from None
        except sqlite3.DatabaseError as exc:
            raise registry_file.not_sqlite(self.path, exc) from None

    def _upgrade(self) -> None:
        """Apply the pending migrations; a registry that has a schema already is upgraded as
        :mod:`mllzoo.store.upgrade` says (one process at a time; space checked, announced, backed up,
        compacted)."""
        if not migrations.applied(self.db):  # a new registry
            self._migrate()
            return
        upgrade.check_space(  # before anything is written, the lock file included
            self.path,
            migrations.applied(self.db)[-1].name,
            [m.name for m in migrations.pending(self.db)],
        )
        with upgrade.one_at_a_time(self.path):
            pending = [m.name for m in migrations.pending(self.db)]
            if not pending:  # another process upgraded it while this one waited
                return
            applied = migrations.applied(self.db)[-1].name
            kept = upgrade.backup_path(self.path, applied)
            upgrade.announce(self.path, applied, pending[-1], len(pending), kept)
            upgrade.backup(self.db.conn, self.path, kept)
            self._migrate()
            upgrade.compact(self.db.conn, self.path)

    def _migrate(self) -> None:
        if self.db.journal_mode != "wal":
            self.db.enable_wal()
        migrations.apply(self.db)

    def _cannot_upgrade(self, target: str, by_choice: bool) -> MllzooError:
        """The one line for a registry that needs an upgrade this open may not make."""
        if upgrade.is_backup(self.path.resolve()):
            return upgrade.refuse_backup(self.path)
        if by_choice:  # served: the pages never write it, so the user upgrades it once
            return MllzooError(
                f"registry {self.path} needs a schema upgrade ({target}), which is never made "
                f"here (it is only read): run `mllzoo --registry {shlex.quote(str(self.path))} "
                f"models` once to upgrade it, then reload"
            )
        return MllzooError(
            f"registry {self.path} needs a schema upgrade ({target}) but is read-only: run any "
            f"mllzoo command on it once with write access"
        )

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
            raise MllzooError(
                f"{self.path} is an SQLite database but not an mllzoo registry "
                f"(its tables: {', '.join(sorted(tables)[:5])})"
            )

    @property
    def immutable_connection(self) -> bool:
        """Whether the file is read through an immutable connection: it cannot see another process's
        change, so a reader that must follow changes watches the file itself."""
        return isinstance(self.db.conn, registry_file.ImmutableConnection)

    def change_signature(self) -> tuple:
        """What the web pages read, summed up in one statement (the current graph, each label's token,
        the models rows): it differs whenever another process changed any of it."""
        return tuple(self.db.execute(CHANGE_SIGNATURE).fetchone())

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
            full = self._disk_full(exc)
            if full:
                raise full from None
            raise
        try:
            yield self.db
            self.db.conn.execute("COMMIT")
        except BaseException as exc:
            if self.db.conn.in_transaction:
                self.db.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _refused_write(exc):
                raise registry_file.read_only(self.path) from None
            if isinstance(exc, sqlite3.OperationalError) and self._disk_full(exc):
                raise self._disk_full(exc) from None
            raise

    def _disk_full(self, exc: sqlite3.OperationalError) -> MllzooError | None:
        """SQLite's "database or disk is full": the transaction was rolled back, so the registry is as before."""
        if "disk is full" not in str(exc):
            return None
        return MllzooError(
            f"registry {self.path}: {exc}; that write was rolled back, the registry is consistent "
            f"as it was before it: free some space and run the command again"
        )

    # settings -----------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        rows = list(self.db["settings"].rows_where("key = ?", [key]))
        return rows[0]["value"] if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self.db["settings"].upsert({"key": key, "value": value}, pk="key")

    # models -------------------------------------------------------------------------------
    def record_models(self, entries: Iterable[Any]) -> None:
        """Remember what the plugins offer (id, plugin and its version, metadata without this
        machine's paths)."""
        from mllzoo.models.vlm import portable_metadata

        rows = []
        for entry in entries:
            spec = entry.spec
            rows.append(
                {
                    "id": spec.id,
                    "family": spec.family,
                    "arch": spec.arch,
                    "tag": spec.tag,
                    "plugin": entry.plugin,
                    "plugin_version": entry.plugin_version,
                    "metadata": portable_metadata(spec.metadata()),
                }
            )
        with self.transaction():
            self._write_models(rows, update=True)

    def _write_models(self, rows: list[dict], update: bool) -> None:
        """Insert model rows (``metadata`` a dict); ``update`` refreshes known ones, else they are kept.
        first_seen is kept from the first time a model was recorded. Call inside a transaction."""
        columns = ["id", "family", "arch", "tag", "plugin", "plugin_version", "metadata"]
        conflict = (
            f"do update set {', '.join(f'{c} = excluded.{c}' for c in columns[1:])}"
            if update
            else "do nothing"
        )
        for row in rows:
            values = {**row, "metadata": json.dumps(row["metadata"], sort_keys=True)}
            self.db.execute(
                f"insert into models ({', '.join(columns)}, first_seen) values ({', '.join('?' * 8)}) "
                f"on conflict(id) {conflict}",
                [values[c] for c in columns] + [utc_now()],
            )

    def models(self) -> list[dict]:
        """Models the registry knows, metadata decoded and checked (:meth:`_checked_row`)."""
        return [self._checked_row(row) for row in self.db["models"].rows_where(order_by="id")]

    def model(self, model_id: str) -> dict | None:
        """One model's row, metadata decoded and checked, or None when the registry does not know it."""
        rows = list(self.db["models"].rows_where("id = ?", [model_id]))
        return self._checked_row(rows[0]) if rows else None

    def _checked_row(self, row: dict) -> dict:
        """A models row with its metadata decoded and each entry the metadata checks refuse left out,
        one warning per model: rows imported before those checks existed (or edited since) are checked
        where they are read. A model whose stored cost was refused joins :attr:`unknown_costs`."""
        from mllzoo.models.vlm import checked_metadata

        try:
            raw = json.loads(row["metadata"] or "{}")
        except ValueError:
            raw = None
        metadata, problems = checked_metadata(raw)
        if problems:
            if not isinstance(raw, dict) or (
                raw.get("gflops") is not None and "gflops" not in metadata
            ):
                self.unknown_costs.add(row["id"])
            if row["id"] not in self._warned_metadata:
                self._warned_metadata.add(row["id"])
                warn(f"model {row['id']}: stored {'; '.join(problems)}; that entry is ignored")
        return {**row, "metadata": metadata}

    # graphs -------------------------------------------------------------------------------
    def current_graph_id(self) -> str | None:
        return self.get_setting("graph")

    def require_graph_id(self) -> str:
        graph_id = self.current_graph_id()
        if graph_id is None:
            raise MllzooError(
                f"{self.path} has no semantic graph yet: run `mllzoo graph build --samples DIR`"
            )
        return graph_id

    def graph_sizes(self, graph_id: str) -> dict[str, int]:
        """How many nodes, images and samples a graph has: what a label's arrays must match."""
        return {
            table: self.db.execute(
                f"select count(*) from {table} where graph_id = ?", [graph_id]
            ).fetchone()[0]
            for table in ("nodes", "images", "samples")
        }

    # text embeddings ----------------------------------------------------------------------
    def cached_embeddings(self, embedder: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors by text hash; read as plain tuples, since a graph has thousands of captions.

        A damaged vector is left out, so the caller embeds that text again and overwrites it.
        """
        return blobs.lookup(
            self.db.execute,
            "select text_hash, dtype, shape, data, checksum from text_embeddings "
            "where embedder = ? and text_hash in",
            [embedder],
            hashes,
        )

    def cache_embeddings(self, embedder: str, items: list[tuple[str, str, np.ndarray]]) -> None:
        """Store ``(hash, text, vector)`` rows for ``embedder`` (not in a read-only registry: a cache is optional)."""
        if not self.writable:
            return
        rows = [
            {"embedder": embedder, "text_hash": h, "text": t, **blobs.pack(v.astype(np.float32))}
            for h, t, v in items
        ]
        with self.transaction():
            self.db["text_embeddings"].upsert_all(rows, pk=("embedder", "text_hash"))

    def node_embeddings(self, graph_id: str, embedder: str) -> np.ndarray | None:
        """The kept caption embeddings of a graph, ``None`` if there are none; raises ``blobs.DamagedBlob``."""
        rows = list(
            self.db["node_embeddings"].rows_where(
                "graph_id = ? and embedder = ?", [graph_id, embedder]
            )
        )
        return blobs.unpack(rows[0]) if rows else None

    def node_embedders(self, graph_id: str) -> list[str]:
        """The embedders whose caption embeddings of a graph are kept, by id."""
        return [
            row[0]
            for row in self.db.execute(
                "select embedder from node_embeddings where graph_id = ? order by embedder",
                [graph_id],
            )
        ]

    def save_node_embeddings(self, graph_id: str, embedder: str, vectors: np.ndarray) -> None:
        """Keep a graph's caption embeddings (not in a read-only registry: they are recomputed each time)."""
        if not self.writable:
            return
        with self.transaction():
            self.db["node_embeddings"].upsert(
                {
                    "graph_id": graph_id,
                    "embedder": embedder,
                    **blobs.pack(vectors.astype(np.float32)),
                },
                pk=("graph_id", "embedder"),
            )

    # claims -------------------------------------------------------------------------------
    def claim(self, model_id: str, graph_id: str, lease: float | None = None) -> bool:
        """Take the right to label a model. Another process's claim blocks while it is renewed within
        ``lease`` seconds (default: the ``claim-lease`` setting) and, on this host, while that process
        lives; a claim past either is taken over, with one warning naming its host and process."""
        lease = config.claim_lease() if lease is None else lease
        host, pid = socket.gethostname(), os.getpid()
        with self.transaction():
            row = self._claim(model_id, graph_id)
            stale = None if row is None or _ours(row) else _stale(row, host, lease)
            if row is not None and not _ours(row) and stale is None:
                return False
            self.db["label_claims"].upsert(
                {
                    "model_id": model_id,
                    "graph_id": graph_id,
                    "host": host,
                    "pid": pid,
                    "claimed": utc_now(),
                    "renewed": time.time(),
                },
                pk=("model_id", "graph_id"),
            )
        if row is not None and stale is not None:
            warn(
                f"took over the labeling claim on {model_id} from process {row['pid']} on "
                f"{row['host']}: {stale}"
            )
        return True

    def _claim(self, model_id: str, graph_id: str) -> dict | None:
        rows = list(
            self.db["label_claims"].rows_where(
                "model_id = ? and graph_id = ?", [model_id, graph_id]
            )
        )
        return rows[0] if rows else None

    def claim_holder(self, model_id: str, graph_id: str, lease: float | None = None) -> str | None:
        """Who holds a live claim on a model other than this process, in words; ``None`` when nobody does."""
        lease = config.claim_lease() if lease is None else lease
        row = self._claim(model_id, graph_id)
        if row is None or _ours(row) or _stale(row, socket.gethostname(), lease) is not None:
            return None
        return _holder(row)

    def holds_claim(self, model_id: str, graph_id: str) -> bool:
        """Whether this process still holds its claim on a model (another may have taken it over)."""
        row = self._claim(model_id, graph_id)
        return row is not None and _ours(row)

    def renew_claims(self) -> int:
        """Renew every claim of this process (what a running ``register`` does); how many it holds."""
        with self.transaction():
            return self.db.execute(
                "update label_claims set renewed = ? where host = ? and pid = ?",
                [time.time(), socket.gethostname(), os.getpid()],
            ).rowcount

    def unclaim(self, model_ids: list[str], graph_id: str) -> dict[str, str]:
        """Clear claims their owners will never release (jobs that died on another node), all or
        none; each holder in words. A claim whose process still runs on this host is refused: stop
        that process instead."""
        holders = {}
        with self.transaction():
            for model_id in dict.fromkeys(model_ids):
                row = self._claim(model_id, graph_id)
                if row is None:
                    raise MllzooError(
                        f"{model_id} is not claimed for labeling on graph {graph_id}; nothing cleared"
                    )
                if row["host"] == socket.gethostname() and _alive(row["pid"]) and not _ours(row):
                    raise MllzooError(
                        f"{model_id} is claimed by {_holder(row)}, which still runs on this host: "
                        f"stop it (kill {row['pid']}) and it releases its claim; nothing cleared"
                    )
                holders[model_id] = _holder(row)
                self.db.execute(
                    "delete from label_claims where model_id = ? and graph_id = ?",
                    [model_id, graph_id],
                )
        return holders

    def release(self, model_id: str, graph_id: str) -> None:
        with self.transaction():
            self.db.execute(
                "delete from label_claims where model_id = ? and graph_id = ? and host = ? "
                "and pid = ?",
                [model_id, graph_id, socket.gethostname(), os.getpid()],
            )

    # runs ---------------------------------------------------------------------------------
    def start_run(self, command: str, info: dict) -> int:
        with self.transaction():
            run_id = (
                self.db["runs"]
                .insert(
                    {
                        "command": command,
                        "started": utc_now(),
                        "status": "running",
                        "info": json.dumps(info),
                    }
                )
                .last_pk
            )
        assert isinstance(run_id, int)  # the rowid of the integer primary key just inserted
        return run_id

    def finish_run(self, run_id: int, status: str, info: dict) -> None:
        with self.transaction():
            self.db["runs"].update(
                run_id, {"finished": utc_now(), "status": status, "info": json.dumps(info)}
            )

    # graphs -------------------------------------------------------------------------------
    def save_graph(
        self,
        graph_id: str,
        name: str,
        meta: dict,
        nodes: Iterable[dict],
        images: Iterable[tuple[str, str]],
        samples: Iterable[tuple[int, int]],
    ) -> None:
        """Store a graph (node rows, ``(hash, path)`` per image, ``(node, image)`` pairs) in one transaction,
        replacing one with the same id, and make it the current graph."""
        with self.transaction():
            for table in ("samples", "images", "nodes", "graphs"):
                self.db.execute(
                    f"delete from {table} where {'id' if table == 'graphs' else 'graph_id'} = ?",
                    [graph_id],
                )
            self.db["graphs"].insert(
                {"id": graph_id, "name": name, "created": utc_now(), "meta": json.dumps(meta)}
            )
            self.db["nodes"].insert_all({"graph_id": graph_id, **node} for node in nodes)
            self.db["images"].insert_all(
                {"graph_id": graph_id, "idx": i, "hash": h, "path": p}
                for i, (h, p) in enumerate(images)
            )
            self.db["samples"].insert_all(
                {"graph_id": graph_id, "node_idx": int(n), "image_idx": int(i)} for n, i in samples
            )
            self.set_setting("graph", graph_id)

    def graph_nodes(self, graph_id: str) -> list[tuple]:
        """``(idx, synset, wnid, name, definition, caption, depth, parents JSON)`` per node, by idx (plain
        tuples: a graph has thousands of nodes)."""
        return self.db.execute(
            "select idx, synset, wnid, name, definition, caption, depth, parents from nodes "
            "where graph_id = ? order by idx",
            [graph_id],
        ).fetchall()

    def graph_images(self, graph_id: str) -> list[tuple[str, str]]:
        """``(hash, path)`` per unique image, by idx."""
        return self.db.execute(
            "select hash, path from images where graph_id = ? order by idx", [graph_id]
        ).fetchall()

    def graph_samples(self, graph_id: str) -> np.ndarray:
        """The (node, image) pairs as int32 ``[n, 2]``, sorted."""
        rows = self.db.execute(
            "select node_idx, image_idx from samples where graph_id = ? order by node_idx, image_idx",
            [graph_id],
        ).fetchall()
        return np.array(rows, dtype=np.int32).reshape(-1, 2)

    def graph_name(self, graph_id: str) -> str | None:
        row = self.db.execute("select name from graphs where id = ?", [graph_id]).fetchone()
        return row[0] if row else None

    def graph_meta(self, graph_id: str) -> dict | None:
        rows = list(self.db["graphs"].rows_where("id = ?", [graph_id]))
        return json.loads(rows[0]["meta"]) if rows else None

    # class descriptions of remote captioners ----------------------------------------------
    def cached_descriptions(self, captioner: str, key: str) -> list[str] | None:
        rows = list(
            self.db["descriptions"].rows_where("captioner = ? and key = ?", [captioner, key])
        )
        return json.loads(rows[0]["texts"]) if rows else None

    def save_descriptions(self, captioner: str, key: str, name: str, texts: list[str]) -> None:
        with self.transaction():
            self.db["descriptions"].upsert(
                {
                    "captioner": captioner,
                    "key": key,
                    "name": name,
                    "texts": json.dumps(texts),
                    "created": utc_now(),
                },
                pk=("captioner", "key"),
            )


def _refused_write(exc: sqlite3.OperationalError) -> bool:
    """SQLite's answer to a write on a file it may not change (permissions checked late, read-only media)."""
    return "readonly" in str(exc)


def _ours(claim: dict) -> bool:
    return claim["host"] == socket.gethostname() and claim["pid"] == os.getpid()


def _holder(claim: dict) -> str:
    return f"process {claim['pid']} on {claim['host']} (since {claim['claimed']})"


def _stale(claim: dict, host: str, lease: float) -> str | None:
    """Why another process's claim may be taken over (its process is gone, or it was not renewed
    within ``lease`` seconds); ``None`` while it holds. Hosts' clocks are assumed to agree to well
    within the lease."""
    if claim["host"] == host and not _alive(claim["pid"]):
        return "that process is gone"
    renewed = claim.get("renewed")
    if renewed is None:  # made before leases: renewed when it was made
        try:
            renewed = datetime.datetime.fromisoformat(claim["claimed"]).timestamp()
        except (TypeError, ValueError):  # a hand edit: a claim nobody can date holds nothing
            return f"its time {claim['claimed']!r} is unreadable"
    age = time.time() - renewed
    if age > lease:
        return f"not renewed for {age:.0f} s (claim-lease {lease:g} s)"
    return None


def _alive(pid: int) -> bool:
    """Whether a process of this host runs with that id."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
