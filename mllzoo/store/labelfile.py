"""The label file: labels that travel between registries (``mllzoo labels export/import``, shipped labels).

A label file is a zip archive holding

- ``manifest.json``: ``{"format": "mllzoo-labels", "version": 1, "graph": {"id", "nodes", "images",
  "samples"}, "labels": [...]}``, one entry per model with its models-table row (id, family, arch, tag,
  plugin, plugin_version, metadata: gflops etc. travel with the label), the label's format, creation
  time and meta, and per array its member name, dtype, shape and SHA-256;
- ``manifest.sha256``: the SHA-256 of ``manifest.json``'s bytes, so every byte of the file is covered;
- one member per array: raw little-endian bytes (:mod:`mllzoo.store.blobs`), never a pickle.

Both ways go one label at a time, so memory follows the largest label, not the file (49 paper-scale
labels make a file of gigabytes): :func:`write_label_file` streams each array into its member as
the labels come and writes the manifest, which needs every array's checksum, last;
:meth:`LabelFile.entries` reads, checks and hands over one label before it reads the next. Readers
find members by name, so files written before, with the manifest first, read the same.

The graph is named by its id, which is a content hash of its nodes, images and samples, so a label made
on another graph is recognised without the graph itself. Reading refuses, with one line, anything it
cannot vouch for: not a zip or a truncated one, a checksum that does not match, another format, a
newer version, arrays that do not fit the graph. Pure standard library and numpy: no torch, no SQLite.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mllzoo import labels
from mllzoo.errors import InvalidLabel, MllzooError
from mllzoo.store import blobs
from mllzoo.store.files import replaced_atomically

FORMAT_NAME = "mllzoo-labels"
VERSION = 1
MANIFEST, CHECKSUM = "manifest.json", "manifest.sha256"
ARRAY_NAMES = ("lists", "lengths", "rank")
ARRAY_KINDS = "iu"  # node indices, lengths and ranks are integers
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the same labels always give the same bytes
MAX_MANIFEST_BYTES = 64 * 1024**2  # a few KB per label: far more than any real manifest
CHUNK_BYTES = 1024**2  # an array passes between its member and memory this much at a time


class LabelFileError(MllzooError):
    """A label file that cannot be used: named in the one line the CLI prints."""


def write_label_file(path: Path, graph: dict, entries: Iterable[dict]) -> None:
    """Write ``entries`` (each ``model``, ``format``, ``created``, ``meta``, ``arrays``) made on ``graph``
    (``id``, ``nodes``, ``images``, ``samples``) to ``path``, atomically, holding one entry at a time
    (pass a generator to stream them)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise MllzooError(
            f"cannot write label file {path}: folder {path.parent} does not exist; nothing was written"
        )
    try:
        with (
            replaced_atomically(path, ".partial") as stream,
            zipfile.ZipFile(stream, "w") as archive,
        ):
            manifest_labels = [
                {
                    **{key: entry[key] for key in ("model", "format", "created", "meta")},
                    "arrays": {
                        name: _write_array(archive, f"labels/{number}/{name}.bin", array)
                        for name, array in entry["arrays"].items()
                    },
                }
                for number, entry in enumerate(entries)
            ]
            manifest = json.dumps(
                {
                    "format": FORMAT_NAME,
                    "version": VERSION,
                    "graph": graph,
                    "labels": manifest_labels,
                },
                indent=1,
                sort_keys=True,
            ).encode()
            archive.writestr(_member(MANIFEST), manifest)
            archive.writestr(_member(CHECKSUM), hashlib.sha256(manifest).hexdigest().encode())
    except OSError as exc:
        raise MllzooError(
            f"cannot write label file {path}: {exc.strerror or exc}; nothing was written"
        ) from None


def _member(name: str) -> zipfile.ZipInfo:
    """A deflated member with the fixed time: the same labels always give the same bytes."""
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _write_array(archive: zipfile.ZipFile, member: str, array: np.ndarray) -> dict:
    """Stream ``array``'s little-endian bytes into ``member``, :data:`CHUNK_BYTES` at a time (no copy
    of the array), and describe it as the manifest does: member, dtype, shape and SHA-256."""
    little = blobs.little_endian(array)
    data = little.reshape(-1).view(np.uint8).data
    digest = hashlib.sha256()
    with archive.open(_member(member), "w") as out:
        for start in range(0, len(data), CHUNK_BYTES):
            digest.update(data[start : start + CHUNK_BYTES])
            out.write(data[start : start + CHUNK_BYTES])
    return {
        "file": member,
        "dtype": little.dtype.str,
        "shape": list(little.shape),
        "sha256": digest.hexdigest(),
    }


@dataclass
class LabelFile:
    """An opened label file whose manifest checks out; :meth:`labels` reads and checks the arrays."""

    path: Path
    manifest: dict

    @property
    def graph_id(self) -> str:
        return self.manifest["graph"]["id"]

    @property
    def model_ids(self) -> list[str]:
        return [entry["model"]["id"] for entry in self.manifest["labels"]]

    def refuse(self, reason: str) -> LabelFileError:
        return LabelFileError(f"{self.path}: {reason}; nothing was imported")

    def check_graph(self, graph_id: str, sizes: dict[str, int]) -> None:
        """Refuse a file whose manifest names another graph, or this graph with other sizes."""
        if self.graph_id != graph_id:
            raise self.refuse(
                f"its labels were made on graph {self.graph_id}, this registry's graph is {graph_id}"
            )
        if any(self.manifest["graph"].get(key) != sizes[key] for key in sizes):
            raise self.refuse(
                f"graph {graph_id} sizes differ from the file's {self.manifest['graph']}"
            )

    def entries(self, sizes: dict[str, int], samples: np.ndarray) -> Iterator[dict]:
        """The labels one at a time, each read whole and verified against its checksums and the graph
        (its ``sizes`` and ``[n_samples, 2]`` (node, image) ``samples``) before it is yielded and the
        next is read; call :meth:`check_graph` first."""
        limits = {
            "lengths": sizes["images"],
            "rank": sizes["samples"],
            "lists": sizes["images"] * sizes["nodes"],
        }
        try:
            with zipfile.ZipFile(self.path) as archive:
                for entry in self.manifest["labels"]:
                    arrays = {
                        name: self._array(archive, name, entry["arrays"][name], limits)
                        for name in ARRAY_NAMES
                    }
                    self._check_label(entry, arrays, samples, sizes)
                    yield {
                        **{key: entry[key] for key in ("model", "format", "created", "meta")},
                        "arrays": arrays,
                    }
        except (
            zipfile.BadZipFile,
            KeyError,
            TypeError,
            ValueError,
            zlib.error,
            OSError,
            EOFError,
        ) as exc:
            raise self.refuse(f"unreadable ({type(exc).__name__}: {exc})") from None

    def _array(
        self, archive: zipfile.ZipFile, name: str, described: dict, limits: dict[str, int]
    ) -> np.ndarray:
        """One array, read :data:`CHUNK_BYTES` at a time into the array itself and hashed as it
        comes, once its declared dtype and shape fit the graph and its member's size."""
        dtype = np.dtype(described["dtype"])
        if dtype.kind not in ARRAY_KINDS:
            raise self.refuse(f"array dtype {described['dtype']} is not an integer type")
        shape = tuple(int(n) for n in described["shape"])
        if (
            len(shape) != 1 or not 0 <= shape[0] <= limits[name]
        ):  # before reading: never more than the graph allows
            raise self.refuse(
                f"array {name} declares shape {list(shape)}, more than graph {self.graph_id} "
                f"allows ({limits[name]})"
            )
        expected = shape[0] * dtype.itemsize
        if archive.getinfo(described["file"]).file_size != expected:
            raise self.refuse(f"{described['file']} does not hold {shape} x {dtype}")
        data = np.empty(expected, np.uint8)
        digest, filled = hashlib.sha256(), 0
        with archive.open(described["file"]) as member:
            while filled < expected:
                chunk = member.read(min(CHUNK_BYTES, expected - filled))
                if not chunk:
                    raise EOFError(f"{described['file']} ends after {filled} of {expected} bytes")
                digest.update(chunk)
                data[filled : filled + len(chunk)] = np.frombuffer(chunk, np.uint8)
                filled += len(chunk)
            if member.read(1):  # reading to its end also checks the member's CRC-32
                raise ValueError(f"{described['file']} holds more than {expected} bytes")
        if digest.hexdigest() != described["sha256"]:
            raise self.refuse(
                f"checksum of {described['file']} does not match: the file was altered"
            )
        return data.view(dtype)

    def _check_label(
        self, entry: dict, arrays: dict[str, np.ndarray], samples: np.ndarray, sizes: dict[str, int]
    ) -> None:
        """A label is usable only in the format replay reads and when it is a valid label of this graph
        (:func:`labels.validate`, the check ``register`` makes before it publishes)."""
        model_id = entry["model"]["id"]
        if entry["format"] != labels.FORMAT:
            raise self.refuse(
                f"{model_id}: label format {entry['format']!r} is unknown to this mllzoo"
            )
        does_not_fit = f"{model_id}: its label does not fit graph {self.graph_id}"
        if int(entry["meta"].get("n_nodes", -1)) != sizes["nodes"] or arrays["lengths"].ndim != 1:
            raise self.refuse(does_not_fit)
        label = labels.Label(arrays["lists"], arrays["lengths"], arrays["rank"], sizes["nodes"])
        try:
            labels.validate(label, sizes["images"], samples, sizes["nodes"])
        except InvalidLabel as exc:
            raise self.refuse(f"{does_not_fit} ({exc})") from None


def open_label_file(path: Path) -> LabelFile:
    """Open ``path`` and check its container, manifest checksum, format and version (arrays are read later)."""
    path = Path(path)
    if not path.exists():
        raise LabelFileError(f"label file not found: {path}")
    if not path.is_file():
        raise LabelFileError(
            f"{path} is not a regular file (a folder, FIFO or device), so not a label file; "
            f"nothing was imported"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            _refuse_members(path, archive)
            manifest_bytes = archive.read(MANIFEST)
            checksum = archive.read(CHECKSUM).decode("ascii", "replace").strip()
    except (
        zipfile.BadZipFile,
        KeyError,
        OSError,
        EOFError,
        zlib.error,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        raise LabelFileError(
            f"{path} is not a readable mllzoo label file (truncated or not one: {exc}); "
            f"nothing was imported"
        ) from None
    if hashlib.sha256(manifest_bytes).hexdigest() != checksum:
        raise LabelFileError(
            f"{path}: checksum of {MANIFEST} does not match: the file was altered; nothing was imported"
        )
    try:
        manifest = json.loads(manifest_bytes)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than json parses
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
        raise LabelFileError(f"{path}: {MANIFEST} is {reason}; nothing was imported") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise LabelFileError(f"{path} is not an mllzoo label file; nothing was imported")
    version = manifest.get("version")
    if version != VERSION:
        newer = isinstance(version, int) and version > VERSION
        raise LabelFileError(
            f"{path}: label file version {version!r} is "
            + ("newer than this mllzoo reads (1): upgrade mllzoo" if newer else "unknown")
            + "; nothing was imported"
        )
    if not _well_formed(manifest):
        raise LabelFileError(f"{path}: {MANIFEST} lacks required fields; nothing was imported")
    for entry in manifest["labels"]:
        problem = _model_problem(entry["model"])
        if problem:
            raise LabelFileError(
                f"{path}: model {entry['model']['id']}: {problem}; nothing was imported"
            )
    return LabelFile(path, manifest)


def _model_problem(model: dict) -> str | None:
    """What is wrong with a label's models row: its plugin fields and its metadata (types and ranges)."""
    from mllzoo.models.vlm import metadata_problem
    from mllzoo.plugins import is_distribution_name

    for key in ("plugin", "plugin_version"):
        if model.get(key) is not None and not isinstance(model[key], str):
            return f"{key} must be text, not {type(model[key]).__name__}"
    if model.get("plugin") is not None and not is_distribution_name(model["plugin"]):
        return f"plugin {model['plugin'][:80]!r} is not a distribution name (PEP 508)"
    return metadata_problem(model["metadata"])


def _refuse_members(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse, before reading any member, what this reader cannot vouch for: encrypted members, a
    compression other than stored or deflate, and a manifest or checksum declared larger than any is."""
    for info in archive.infolist():
        if info.flag_bits & 0x1:
            raise LabelFileError(
                f"{path}: member {info.filename} is encrypted; nothing was imported"
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise LabelFileError(
                f"{path}: member {info.filename} uses compression method {info.compress_type}, "
                f"not stored or deflate; nothing was imported"
            )
    for name, cap in ((MANIFEST, MAX_MANIFEST_BYTES), (CHECKSUM, 1024)):
        if name in archive.NameToInfo and archive.getinfo(name).file_size > cap:
            raise LabelFileError(
                f"{path}: {name} declares {archive.getinfo(name).file_size} bytes, more than "
                f"a label file's {cap}; nothing was imported"
            )


def _well_formed(manifest: dict) -> bool:
    from mllzoo.models.vlm import MODEL_ID

    graph, entries = manifest.get("graph"), manifest.get("labels")
    if not (
        isinstance(graph, dict)
        and isinstance(graph.get("id"), str)
        and isinstance(entries, list)
        and entries
    ):
        return False
    for entry in entries:
        if not isinstance(entry, dict):
            return False
        model, arrays = entry.get("model"), entry.get("arrays")
        if not (
            isinstance(model, dict)
            and isinstance(model.get("id"), str)
            and MODEL_ID.match(model["id"])
            and isinstance(model.get("metadata"), dict)
            and isinstance(entry.get("meta"), dict)
            and isinstance(arrays, dict)
            and set(arrays) == set(ARRAY_NAMES)
            and all(
                isinstance(a, dict) and {"file", "dtype", "shape", "sha256"} <= set(a)
                for a in arrays.values()
            )
        ):
            return False
    ids = [entry["model"]["id"] for entry in entries]
    return len(set(ids)) == len(ids)


def checked_files(paths: list[Path], graph_id: str, sizes: dict[str, int]) -> list[LabelFile]:
    """Every file opened and its manifest checked, for this graph, before any array is read."""
    opened_files = [open_label_file(path) for path in paths]
    for opened in opened_files:
        opened.check_graph(graph_id, sizes)
    return opened_files


def each_label(
    files: list[LabelFile], sizes: dict[str, int], samples: np.ndarray
) -> Iterator[dict]:
    """Every label of ``files`` (:func:`checked_files`), one read and checked at a time, a model
    found in two files refused when its second label has been read."""
    found: dict[str, Path] = {}
    for opened in files:
        for entry in opened.entries(sizes, samples):
            model_id = entry["model"]["id"]
            if model_id in found:
                raise opened.refuse(f"{model_id} is also in {found[model_id]}")
            found[model_id] = opened.path
            yield entry


def read_many(
    paths: list[Path], graph_id: str, sizes: dict[str, int], samples: np.ndarray
) -> list[dict]:
    """Every label of every file, all checked before any is returned: all held in memory at once, so
    for a few labels only (an import streams them through :func:`each_label`)."""
    return list(each_label(checked_files(paths, graph_id, sizes), sizes, samples))


__all__ = [
    "LabelFile",
    "LabelFileError",
    "checked_files",
    "each_label",
    "open_label_file",
    "read_many",
    "write_label_file",
    "VERSION",
]
