"""Label storage in the registry: every label as one block per graph node, read node by node.

A query touches a small part of each label: 100 classes match at most 500 of a graph's nodes, so
``recommend`` needs the samples of those nodes only. Each label is therefore kept as the
:class:`~mllzoo.labels.SampleLists` of one node's samples per row of ``label_blocks`` (ranks, list
lengths, then the list entries above each sample's own node, in the label's index dtype), each row
with its own checksum, checked when it is read. The checksum covers the block's model, graph and node
and its label's ``token`` (random, new at each write of a label) as well as its bytes, so a block
swapped with another node's, copied from another model's label or left from another run of the same
model fails its check like a flipped byte does; checking it needs only the row itself and its
``labels`` row, so a query still reads just the matched nodes' blocks. :meth:`LabelStore.label_views` reads just the
matched nodes' rows of just the candidate labels in one statement; :meth:`LabelStore.load_label`
rebuilds the whole label (for export and checks) from all of them. An image sampled by several
nodes keeps its list in each of their blocks: the price of reading one node without its neighbours.

The methods are mixed into :class:`mllzoo.store.registry.Registry`, which owns the connection.
"""

from __future__ import annotations

import datetime
import itertools
import json
import secrets
import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from mllzoo import labels
from mllzoo.errors import DamagedLabelError, InvalidLabel, MllzooError
from mllzoo.store import blobs

if TYPE_CHECKING:
    import contextlib

    import sqlite_utils


def utc_now() -> str:
    """A timestamp as the registry stores them (UTC, to the second)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def new_token() -> str:
    """A label's ``token``: what ties its blocks to this one write of it."""
    return secrets.token_hex(8)


def block_rows(
    model_id: str, graph_id: str, label: labels.Label, samples: np.ndarray, token: str | None
) -> Iterator[dict]:
    """The ``label_blocks`` rows of a whole label on a graph with these (node-sorted) samples: one per
    node, nodes without samples included, so a missing row reads as damage. Their checksums are bound
    to ``token`` (the label row's); ``None`` writes the unbound checksums of schema m004 (its
    migration only). Made as they are inserted, so their copies of the label's bytes are not all
    held at once."""
    view = labels.sample_lists(label, np.arange(len(samples)), samples[:, 1])
    dtype = labels.index_dtype(label.n_nodes).newbyteorder("<")
    ranks, lengths, entries = (
        a.astype(dtype, copy=False).tobytes() for a in (view.rank, view.length, view.entries)
    )
    sample_ends = np.cumsum(np.bincount(samples[:, 0], minlength=label.n_nodes)).tolist()
    entry_ends = np.concatenate([[0], np.cumsum(view.above)])[sample_ends].tolist()
    s_start, e_start, size = 0, 0, dtype.itemsize
    for node, (s_end, e_end) in enumerate(zip(sample_ends, entry_ends)):
        columns = {
            "dtype": dtype.str,
            "ranks": ranks[s_start * size : s_end * size],
            "lengths": lengths[s_start * size : s_end * size],
            "entries": entries[e_start * size : e_end * size],
        }
        yield {
            "model_id": model_id,
            "graph_id": graph_id,
            "node": node,
            **columns,
            "checksum": block_checksum(
                columns["dtype"],
                columns["ranks"],
                columns["lengths"],
                columns["entries"],
                None if token is None else binding(model_id, graph_id, node, token),
            ),
        }
        s_start, e_start = s_end, e_end


def binding(model_id: str, graph_id: str, node: int, token: str) -> str:
    """What a block's checksum covers besides its bytes: whose block it is (JSON: no two differ alike)."""
    return json.dumps([model_id, graph_id, int(node), token])


def block_checksum(
    dtype: str, ranks: bytes, lengths: bytes, entries: bytes, bound: str | None
) -> str:
    """CRC-32 over what the block belongs to (``bound``: :func:`binding`), its dtype and its three
    arrays (each length implied by the next start); ``crc32b:`` when bound, ``crc32:`` (schema m004)
    when not."""
    crc = zlib.crc32(f"{dtype} {len(ranks)} {len(entries)}".encode())
    prefix = "crc32"
    if bound is not None:
        crc, prefix = zlib.crc32(bound.encode(), crc), "crc32b"
    return f"{prefix}:{zlib.crc32(entries, zlib.crc32(lengths, zlib.crc32(ranks, crc))):08x}"


def decode_blocks(
    rows: list[tuple], model_id: str, graph_id: str, token: str | None
) -> tuple[np.ndarray, labels.SampleLists]:
    """``(own node per sample, view)`` from ``(node, dtype, ranks, lengths, entries, checksum)`` rows in
    node order, each checked as a block of this model's label on this graph with this ``token``;
    raises :class:`blobs.DamagedBlob` naming the first block that fails its checks."""
    if not isinstance(token, str):
        raise blobs.DamagedBlob("its label row has no token")
    dtypes = {row[1] for row in rows}
    if len(dtypes) > 1:
        raise blobs.DamagedBlob(f"blocks of several dtypes {sorted(dtypes)}")
    try:
        dtype = np.dtype(dtypes.pop()) if dtypes else np.dtype("<i2")
    except TypeError:
        raise blobs.DamagedBlob("a block of an unreadable dtype") from None
    for node, dtype_str, ranks, lengths, entries, checksum in rows:
        if (
            not all(isinstance(b, bytes) for b in (ranks, lengths, entries))
            or len(ranks) != len(lengths)
            or (len(ranks) | len(entries)) % dtype.itemsize
        ):
            raise blobs.DamagedBlob(f"block of node {node}: its arrays do not fit {dtype}")
        bound = binding(model_id, graph_id, node, token)
        if checksum != block_checksum(dtype_str, ranks, lengths, entries, bound):
            raise blobs.DamagedBlob(
                f"block of node {node}: checksum mismatch (damaged, or not this label's block)"
            )
    counts = np.array([len(row[2]) // dtype.itemsize for row in rows], np.int64)
    view = labels.SampleLists(
        *(np.frombuffer(b"".join(row[i] for row in rows), dtype) for i in (2, 3, 4))
    )
    if int(view.above.sum()) != len(view.entries):
        raise blobs.DamagedBlob("block entries do not match their ranks")
    return np.repeat(np.array([row[0] for row in rows], np.int64), counts), view


class LabelStore:
    """The label methods of :class:`mllzoo.store.registry.Registry` (``self.db``, ``self.transaction``)."""

    db: sqlite_utils.Database

    if TYPE_CHECKING:  # provided by Registry

        def transaction(self) -> contextlib.AbstractContextManager[sqlite_utils.Database]: ...
        def graph_samples(self, graph_id: str) -> np.ndarray: ...
        def graph_sizes(self, graph_id: str) -> dict[str, int]: ...
        def _write_models(self, rows: list[dict], update: bool) -> None: ...

    def labeled_model_ids(self, graph_id: str) -> set[str]:
        return {row["model_id"] for row in self.db["labels"].rows_where("graph_id = ?", [graph_id])}

    def save_label(
        self, model_id: str, graph_id: str, fmt: str, arrays: dict[str, np.ndarray], meta: dict
    ) -> None:
        """Publish a complete label in one transaction and drop its partial work."""
        samples = self.graph_samples(graph_id)
        with self.transaction():
            self._write_label(model_id, graph_id, fmt, arrays, meta, utc_now(), samples)

    def _write_label(
        self,
        model_id: str,
        graph_id: str,
        fmt: str,
        arrays: dict[str, np.ndarray],
        meta: dict,
        created: str,
        samples: np.ndarray,
    ) -> None:
        """Replace a model's label on a graph and drop its partial work. Call inside a transaction."""
        self._delete_label(model_id, graph_id)
        label, token = labels.Label.from_arrays(arrays, meta), new_token()
        self.db["label_blocks"].insert_all(
            block_rows(model_id, graph_id, label, samples, token), batch_size=1000
        )
        self.db["labels"].insert(
            {
                "model_id": model_id,
                "graph_id": graph_id,
                "format": fmt,
                "created": created,
                "meta": json.dumps(meta, sort_keys=True),
                "token": token,
            },
            pk=("model_id", "graph_id"),
        )

    def _delete_label(self, model_id: str, graph_id: str) -> None:
        for table in ("labels", "label_blocks", "label_parts"):
            self.db.execute(
                f"delete from {table} where model_id = ? and graph_id = ?", [model_id, graph_id]
            )

    def label_created(self, model_id: str, graph_id: str) -> str | None:
        rows = list(
            self.db["labels"].rows_where("model_id = ? and graph_id = ?", [model_id, graph_id])
        )
        return rows[0]["created"] if rows else None

    def import_labels(
        self, graph_id: str, items: Iterable[dict], replace: bool = False
    ) -> list[str]:
        """Store labels made elsewhere, all in one transaction; the ids stored, in order.

        Each item holds ``model`` (a models-table row, ``metadata`` a dict), ``format``, ``created``,
        ``meta`` and ``arrays``. A model the registry already knows keeps its own row (its installed
        plugin's metadata); an existing label is kept unless ``replace``. ``items`` is consumed one
        at a time inside the transaction, so a generator that reads and checks each label as it is
        asked for streams an import of any size, and its error rolls back every label before it.
        """
        stored = []
        samples = self.graph_samples(graph_id)
        with self.transaction():
            done = self.labeled_model_ids(graph_id)
            for item in items:
                self._write_models([item["model"]], update=False)
                model_id = item["model"]["id"]
                if model_id in done and not replace:
                    continue
                self._write_label(
                    model_id,
                    graph_id,
                    item["format"],
                    item["arrays"],
                    item["meta"],
                    item["created"],
                    samples,
                )
                stored.append(model_id)
        return stored

    def remove_labels(self, model_ids: list[str], graph_id: str) -> None:
        """Drop these models' labels on a graph in one transaction; all must be labeled, or none is removed."""
        with self.transaction():
            missing = sorted(set(model_ids) - self.labeled_model_ids(graph_id))
            if missing:
                raise MllzooError(f"not labeled on graph {graph_id}: {', '.join(missing)}")
            for model_id in model_ids:
                self._delete_label(model_id, graph_id)

    def label_summaries(self, graph_id: str) -> list[dict]:
        """Every label on a graph without its arrays: model id, format, created, meta, and the models row."""
        rows = self.db.execute(
            "select l.model_id, l.format, l.created, l.meta, m.family, m.plugin, m.plugin_version from labels l "
            "left join models m on m.id = l.model_id where l.graph_id = ? order by l.model_id",
            [graph_id],
        )
        names = ["id", "format", "created", "meta", "family", "plugin", "plugin_version"]
        return [{**dict(zip(names, row)), "meta": json.loads(row[3] or "{}")} for row in rows]

    def load_label(
        self, model_id: str, graph_id: str, samples: np.ndarray | None = None
    ) -> tuple[str, dict[str, np.ndarray], dict]:
        """A whole label, ``(format, arrays, meta)``, rebuilt from all its blocks; raises
        :class:`DamagedLabelError` when a block is damaged or missing. A caller reading several labels
        passes the graph's ``samples`` (:meth:`graph_samples`) so they are read once."""
        rows = list(
            self.db["labels"].rows_where("model_id = ? and graph_id = ?", [model_id, graph_id])
        )
        if not rows:
            raise MllzooError(
                f"{model_id} has no label on graph {graph_id}: run `mllzoo register {model_id}`"
            )
        meta = json.loads(rows[0]["meta"] or "{}")
        samples = self.graph_samples(graph_id) if samples is None else samples
        sizes = self.graph_sizes(graph_id)
        n_nodes, n_images = sizes["nodes"], sizes["images"]
        blocks = self.db.execute(
            "select node, dtype, ranks, lengths, entries, checksum from label_blocks "
            "where model_id = ? and graph_id = ? order by node",
            [model_id, graph_id],
        ).fetchall()
        try:
            found = [row[0] for row in blocks]
            if found != list(range(n_nodes)):
                missing = n_nodes - len(set(found) & set(range(n_nodes)))
                raise blobs.DamagedBlob(
                    f"{missing} of its {n_nodes} node blocks are missing"
                    if missing
                    else f"it has {len(found) - n_nodes} block(s) of nodes the graph does not have"
                )
            own, view = decode_blocks(blocks, model_id, graph_id, rows[0].get("token"))
            del blocks  # the view holds their bytes: a second copy of the label is not kept
            if not np.array_equal(own, samples[:, 0]):
                raise blobs.DamagedBlob("its blocks do not hold the graph's samples")
            label = labels.whole_label(
                view, samples[:, 1], n_images, int(meta.get("n_nodes", n_nodes))
            )
        except (blobs.DamagedBlob, InvalidLabel) as exc:
            raise DamagedLabelError(model_id, f"is damaged ({exc})") from None
        return rows[0]["format"], label.arrays(), meta

    def label(
        self, model_id: str, graph_id: str, samples: np.ndarray | None = None
    ) -> tuple[labels.Label, dict]:
        """A whole label as a :class:`~mllzoo.labels.Label`, with its metadata (see :meth:`load_label`)."""
        _, arrays, meta = self.load_label(model_id, graph_id, samples)
        return labels.Label.from_arrays(arrays, meta), meta

    def whole_labels(
        self, graph_id: str, model_ids: list[str] | None = None
    ) -> Iterator[tuple[str, labels.Label]]:
        """``(model id, whole label)`` for ``model_ids`` (default: every label on the graph, by id), one at a time."""
        samples = self.graph_samples(graph_id)
        for model_id in (
            model_ids if model_ids is not None else sorted(self.labeled_model_ids(graph_id))
        ):
            yield model_id, self.label(model_id, graph_id, samples)[0]

    def label_views(
        self,
        graph_id: str,
        model_ids: list[str],
        nodes: np.ndarray,
        fmt: str,
        skip_damaged: bool = False,
    ) -> Iterator[tuple[str, tuple[np.ndarray, labels.SampleLists] | DamagedLabelError]]:
        """Per label of ``model_ids`` on the graph (in id order), ``(own node per sample, view)`` of the
        samples of ``nodes`` (sorted, unique): only those nodes' blocks are read.

        One statement reads one consistent state of the file (WAL), so a label published meanwhile is
        either whole or absent, and a caller replays each label before the next is read. A label that
        is damaged, misses a block or is not in format ``fmt`` raises :class:`DamagedLabelError`; with
        ``skip_damaged`` that error is yielded in its place and reading goes on. A label removed
        meanwhile is simply not yielded: callers compare what they got with what they asked.
        """
        wanted = [int(n) for n in nodes]
        rows = self.db.execute(
            "select l.model_id, l.format, l.token, b.node, b.dtype, b.ranks, b.lengths, b.entries, "
            "b.checksum "
            "from labels l left join label_blocks b on b.model_id = l.model_id and b.graph_id = l.graph_id "
            "and b.node in (select value from json_each(:nodes)) "
            "where l.graph_id = :graph and l.model_id in (select value from json_each(:models)) "
            "order by l.model_id, b.node",
            {
                "graph": graph_id,
                "nodes": json.dumps(wanted),
                "models": json.dumps(sorted(set(model_ids))),
            },
        )
        for model_id, group in itertools.groupby(rows, key=lambda row: row[0]):
            try:
                found: tuple[np.ndarray, labels.SampleLists] | DamagedLabelError = _view(
                    model_id, graph_id, list(group), wanted, fmt
                )
            except DamagedLabelError as error:
                if not skip_damaged:
                    raise
                found = error
            yield model_id, found

    # partial work of a running register ----------------------------------------------------
    def save_label_part(
        self, model_id: str, graph_id: str, part: int, arrays: dict[str, np.ndarray]
    ) -> None:
        """Keep one finished chunk of a label so that an interrupted run resumes from it; it replaces
        whatever was saved under the same part number."""
        with self.transaction():
            self.db.execute(
                "delete from label_parts where model_id = ? and graph_id = ? and part = ?",
                [model_id, graph_id, part],
            )
            self.db["label_parts"].upsert_all(
                [
                    {
                        "model_id": model_id,
                        "graph_id": graph_id,
                        "part": part,
                        "name": name,
                        **blobs.pack(a),
                    }
                    for name, a in arrays.items()
                ],
                pk=("model_id", "graph_id", "part", "name"),
            )

    def drop_label_parts(self, model_id: str, graph_id: str) -> None:
        """Forget a model's saved partial work (it did not assemble into a valid label)."""
        with self.transaction():
            self.db.execute(
                "delete from label_parts where model_id = ? and graph_id = ?", [model_id, graph_id]
            )

    def label_parts(self, model_id: str, graph_id: str) -> dict[int, dict[str, np.ndarray]]:
        """Saved chunks by part; a part with a damaged array is left out, so it is redone."""
        parts: dict[int, dict[str, np.ndarray]] = {}
        damaged = set()
        for row in self.db["label_parts"].rows_where(
            "model_id = ? and graph_id = ?", [model_id, graph_id]
        ):
            try:
                parts.setdefault(row["part"], {})[row["name"]] = blobs.unpack(row)
            except blobs.DamagedBlob:
                damaged.add(row["part"])
        return {part: arrays for part, arrays in parts.items() if part not in damaged}


def _view(
    model_id: str, graph_id: str, rows: list[tuple], wanted: list[int], fmt: str
) -> tuple[np.ndarray, labels.SampleLists]:
    """One label's part of a :meth:`LabelStore.label_views` statement, checked and decoded."""
    if rows[0][1] != fmt:
        raise DamagedLabelError(
            model_id, f"has format {rows[0][1]!r}, which this mllzoo does not read"
        )
    blocks = [row[3:] for row in rows if row[3] is not None]
    if [row[0] for row in blocks] != wanted:
        raise DamagedLabelError(
            model_id, f"is damaged ({len(wanted) - len(blocks)} node blocks missing)"
        )
    try:
        return decode_blocks(blocks, model_id, graph_id, rows[0][2])
    except blobs.DamagedBlob as exc:
        raise DamagedLabelError(model_id, f"is damaged ({exc})") from None
