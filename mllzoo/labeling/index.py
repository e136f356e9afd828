"""Label indexes: a static folder of label files that any web server can host (``mllzoo labels publish``),
and pulling from one over the network (``mllzoo labels pull``). The format is in docs/label-index.md.

The folder is flat (a GitHub release holds no sub-folders): ``index.json``, one ``.mllzoo-graph`` file
per graph (:mod:`mllzoo.graph.graphfile`) and one ``.mllzoo-labels`` file per model and graph, as
``labels export`` writes it. Pulling reads the index, downloads what this registry's graph lacks
(:mod:`mllzoo.store.download`: resumed, size-bounded, SHA-256 checked), and only then imports, all or
nothing, through the same checks as ``labels import``. Nothing downloaded is ever executed: label and
graph files are zip archives of JSON and raw arrays, and a plugin the index names is only a name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import numpy as np

from mllzoo.defaults import DOWNLOAD_TIMEOUT
from mllzoo.errors import MllzooError, warn
from mllzoo.graph.graphfile import SUFFIX as GRAPH_SUFFIX
from mllzoo.graph.graphfile import PublishedGraph, read_graph_file, write_graph_file
from mllzoo.labeling.transfer import ORIGIN, export_labels, import_labels
from mllzoo.models.vlm import MODEL_ID, parse_model_id
from mllzoo.store import download
from mllzoo.store.files import replaced_atomically
from mllzoo.store.labelfile import open_label_file, read_many
from mllzoo.store.registry import Registry

INDEX_FORMAT = "mllzoo-label-index"
INDEX_VERSION = 1
INDEX_NAME = "index.json"
LABEL_SUFFIX = ".mllzoo-labels"
MAX_INDEX_BYTES = 64 * 1024**2  # about 10 KB per label: far more than any real index
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")  # flat: no folder, no '..', no scheme
SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
PACKAGE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?\Z")  # a name, never a URL
GRAPH_ID = re.compile(r"^[0-9a-f]{12}\Z")


class LabelIndexError(MllzooError):
    """An index that cannot be used: one line naming it."""


def label_file_name(model_id: str, graph_id: str) -> str:
    """``family.arch.tag.GRAPH.mllzoo-labels``: unique, since no id part holds a dot."""
    family, arch, tag = parse_model_id(model_id)
    return f"{family}.{arch}.{tag}.{graph_id}{LABEL_SUFFIX}"


def empty_index() -> dict:
    return {"format": INDEX_FORMAT, "version": INDEX_VERSION, "graphs": [], "labels": []}


# publishing ---------------------------------------------------------------------------------------


def publish(registry: Registry, folder: Path, model_ids: list[str]) -> dict:
    """Write the graph and the labels of ``model_ids`` (default: every label on the registry's graph) into
    ``folder`` and list them in its index, keeping the entries of other models and graphs there.

    Files are written before the index names them, each atomically, the index last."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MllzooError(f"{folder} is a file, not a folder to publish into")
    graph_id = registry.require_graph_id()
    labeled = registry.labeled_model_ids(graph_id)
    ids = list(dict.fromkeys(model_ids)) or sorted(labeled)
    if not ids:
        raise MllzooError(f"no labels on graph {graph_id} to publish")
    missing = sorted(set(ids) - labeled)
    if missing:
        raise MllzooError(f"not labeled on graph {graph_id}: {', '.join(missing)}")
    index_path = folder / INDEX_NAME
    index = (
        parse_index(index_path.read_bytes(), str(index_path))
        if index_path.is_file()
        else empty_index()
    )
    folder.mkdir(parents=True, exist_ok=True)
    graph_file = folder / f"{graph_id}{GRAPH_SUFFIX}"
    write_graph_file(graph_file, registry, graph_id)
    info = registry.graph_meta(graph_id) or {}
    graph_entry = {
        "id": graph_id,
        **_described(graph_file),
        **{key: info.get(key) for key in ("nodes", "edges", "images", "samples")},
        "embedders": registry.node_embedders(graph_id),
    }
    entries = []
    for model_id in ids:
        path = folder / label_file_name(model_id, graph_id)
        export_labels(registry, [model_id], path, force=True)
        label = open_label_file(path).manifest["labels"][0]
        model = label["model"]
        entries.append(
            {
                "model": model_id,
                "graph": graph_id,
                "format": label["format"],
                **_described(path),
                "plugin": model.get("plugin"),
                "plugin_version": model.get("plugin_version"),
                "metadata": model["metadata"],
                "created": label["created"],
            }
        )
    replaced = {(e["model"], e["graph"]) for e in entries}
    index["labels"] = sorted(
        [e for e in index["labels"] if (e["model"], e["graph"]) not in replaced] + entries,
        key=lambda e: (e["model"], e["graph"]),
    )
    index["graphs"] = sorted(
        [g for g in index["graphs"] if g["id"] != graph_id] + [graph_entry], key=lambda g: g["id"]
    )
    with replaced_atomically(index_path, ".partial") as stream:
        stream.write(json.dumps(index, indent=1, sort_keys=True).encode() + b"\n")
    return {"index": str(index_path), "graph": graph_id, "published": ids}


def _described(path: Path) -> dict:
    data = path.read_bytes()
    return {"file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# reading an index ---------------------------------------------------------------------------------


def index_url(source: str) -> str:
    """The index a source names: a folder's (or a URL's) ``index.json``, or the ``.json`` file named."""
    local = download.local_path(source)
    if local is not None:
        return str(local / INDEX_NAME if local.is_dir() else local)
    base = source.split("?", 1)[0].split("#", 1)[0]
    return source if base.endswith(".json") else base.rstrip("/") + "/" + INDEX_NAME


def file_url(index: str, name: str) -> str:
    """Where a file the index lists lies: beside the index."""
    if download.local_path(index) is not None and "://" not in index:
        return str(Path(index).parent / name)
    return urljoin(index.split("?", 1)[0], quote(name))


def shown(index: str) -> str:
    """The index as it is shown and recorded: a URL without credentials, a local file as a file:// URL."""
    if download.local_path(index) is not None and "://" not in index:
        return Path(index).resolve().as_uri()
    return download.without_credentials(index)


def read_index(url: str, timeout: float, pinned: str | None = None) -> dict:
    """The index at ``url``, checked against ``pinned`` (its SHA-256) when given, then parsed and checked."""
    data = download.read_bytes(url, MAX_INDEX_BYTES, timeout)
    if pinned is not None and hashlib.sha256(data).hexdigest() != pinned.lower():
        raise LabelIndexError(
            f"{shown(url)}: its SHA-256 is {hashlib.sha256(data).hexdigest()}, not the pinned "
            f"{pinned}: the index changed; nothing was pulled"
        )
    return parse_index(data, shown(url))


def parse_index(data: bytes, where: str) -> dict:
    """An index's content, refused in one line when it is not JSON, not an index, newer or malformed."""
    try:
        index = json.loads(data)
    except (ValueError, RecursionError):
        raise LabelIndexError(
            f"{where} is not JSON, so not a label index; nothing was pulled"
        ) from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise LabelIndexError(f"{where} is not an mllzoo label index; nothing was pulled")
    version = index.get("version")
    if version != INDEX_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > 1
        raise LabelIndexError(
            f"{where}: label index version {version!r} is "
            + (
                f"newer than this mllzoo reads ({INDEX_VERSION}): upgrade mllzoo"
                if newer
                else "unknown"
            )
            + "; nothing was pulled"
        )
    problem = _index_problem(index)
    if problem:
        raise LabelIndexError(f"{where}: {problem}; nothing was pulled")
    return index


def _index_problem(index: dict) -> str | None:
    graphs, entries = index.get("graphs"), index.get("labels")
    if not isinstance(graphs, list) or not isinstance(entries, list):
        return "it lacks its graphs or labels list"
    for graph in graphs:
        if not (isinstance(graph, dict) and GRAPH_ID.match(str(graph.get("id")))):
            return f"graph entry {str(graph)[:60]} has no graph id"
        problem = _file_problem(graph)
        if problem:
            return f"graph {graph['id']}: {problem}"
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("model"), str)
            and MODEL_ID.match(entry["model"])
            and isinstance(entry.get("graph"), str)
            and isinstance(entry.get("metadata"), dict)
        ):
            return f"label entry {str(entry)[:60]} lacks a model id, a graph or metadata"
        problem = _file_problem(entry)
        if problem:
            return f"{entry['model']}: {problem}"
    pairs = [(e["model"], e["graph"]) for e in entries]
    if len(set(pairs)) != len(pairs):
        return "it lists a model twice on one graph"
    return None


def _file_problem(entry: dict) -> str | None:
    size = entry.get("bytes")
    if not (isinstance(entry.get("file"), str) and FILE_NAME.match(entry["file"])):
        return f"file {str(entry.get('file'))[:60]!r} is not a plain file name beside the index"
    if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0):
        return "its size is not a whole number of bytes"
    if not (isinstance(entry.get("sha256"), str) and SHA256.match(entry["sha256"])):
        return "its sha256 is not 64 hex digits"
    return None


# pulling ------------------------------------------------------------------------------------------


def pull(
    registry_path: Path,
    source: str,
    model_ids: list[str],
    replace: bool = False,
    dry_run: bool = False,
    index_sha256: str | None = None,
    graph: str | None = None,
    timeout: float = DOWNLOAD_TIMEOUT,
    progress: bool | None = None,
) -> dict:
    """Pull the labels of ``model_ids`` (default: all) made on the registry's graph from the index at
    ``source``; a registry path that does not exist is first created from the index's graph.

    Everything is downloaded and verified before anything is imported, and the import is all or
    nothing: on any error the registry is as it was (a new one is not created). Returns ``pulled``,
    ``skipped`` and ``refused``."""
    url = index_url(source)
    index = read_index(url, timeout, index_sha256)
    where = shown(url)
    registry = (
        Registry(registry_path, create=False, write=not dry_run)
        if Path(registry_path).exists()
        else None
    )
    try:
        graph_entry = _graph_entry(index, where, graph) if registry is None else None
        graph_id = graph_entry["id"] if graph_entry else _graph_id(registry)
        plan = _plan(index, where, graph_id, model_ids, registry, replace)
        report: dict[str, Any] = {
            "index": where,
            "registry": str(registry_path),
            "graph": graph_id,
            "created": registry is None and not dry_run,
            "dry_run": dry_run,
            "pulled": [e["model"] for e in plan["pull"]] if dry_run else [],
            "skipped": plan["skipped"],
            "refused": plan["refused"],
        }
        if dry_run:
            report["skipped"] += [
                {
                    "model": e["model"],
                    "reason": "a label from elsewhere is here: pull compares them",
                }
                for e in plan["compare"]
            ]
            return report
        with _Downloads(url, timeout, progress) as downloads:
            files = {e["model"]: downloads.fetch(e) for e in plan["pull"] + plan["compare"]}
            published = read_graph_file(downloads.fetch(graph_entry)) if graph_entry else None
            for entry in plan["pull"] + plan["compare"]:
                _check_file(files[entry["model"]], entry)
            if registry is not None:  # (a new registry has no labels to compare)
                report["skipped"] += [
                    _compared(registry, graph_id, files[e["model"]], e["model"])
                    for e in plan["compare"]
                ]
            origins = {
                e["model"]: {"index": where, "file": e["file"], "sha256": e["sha256"]}
                for e in plan["pull"]
            }
            paths = [files[model_id] for model_id in origins]
            if published is not None:
                _create_registry(Path(registry_path), published, paths, origins)
            elif paths:
                assert registry is not None
                import_labels(registry, paths, replace=True, origins=origins)
            report["pulled"] = list(origins)
            downloads.discard()
            return report
    finally:
        if registry is not None:
            registry.close()


def _graph_id(registry: Registry | None) -> str:
    assert registry is not None  # a registry that is not created here exists
    return registry.require_graph_id()


class _Downloads:
    """``with _Downloads(...) as downloads``: this pull's links to the verified files, in a folder of
    its own that goes when the pull ends; :meth:`discard` forgets the shared copies once imported."""

    def __init__(self, index: str, timeout: float, progress: bool | None):
        self.index, self.timeout, self.progress = index, timeout, progress
        self.digests: list[str] = []

    def __enter__(self) -> _Downloads:
        download.download_dir().mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="pull-", dir=download.download_dir()))
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def fetch(self, entry: dict) -> Path:
        self.digests.append(entry["sha256"])
        return download.fetch(
            file_url(self.index, entry["file"]),
            entry["bytes"],
            entry["sha256"],
            self.folder / entry["file"],
            self.timeout,
            self.progress,
        )

    def discard(self) -> None:
        for digest in self.digests:
            download.discard(digest)


def _graph_entry(index: dict, where: str, wanted: str | None) -> dict:
    """The graph a new registry is created from: ``wanted``, else the index's only graph."""
    graphs = {g["id"]: g for g in index["graphs"]}
    if wanted is not None:
        if wanted not in graphs:
            raise LabelIndexError(
                f"{where} has no graph {wanted} (it has: {', '.join(graphs) or 'none'})"
            )
        return graphs[wanted]
    if len(graphs) != 1:
        raise LabelIndexError(
            f"{where} lists {len(graphs)} graphs ({', '.join(graphs) or 'none'}): choose the one "
            f"to create the registry from with --graph"
        )
    return next(iter(graphs.values()))


def _plan(
    index: dict,
    where: str,
    graph_id: str,
    model_ids: list[str],
    registry: Registry | None,
    replace: bool,
) -> dict[str, list]:
    """Which entries to download (``pull``), which to download and compare with the label already here
    (``compare``), and which are ``skipped`` or ``refused`` without a download."""
    entries = index["labels"]
    if model_ids:
        unknown = sorted(set(model_ids) - {e["model"] for e in entries})
        if unknown:
            raise LabelIndexError(
                f"{where} lists no label of {', '.join(unknown)}; nothing was pulled"
            )
        entries = [e for e in entries if e["model"] in set(model_ids)]
    other = [e for e in entries if e["graph"] != graph_id]
    plan: dict[str, list] = {
        "pull": [],
        "compare": [],
        "skipped": [],
        "refused": [
            {
                "model": e["model"],
                "graph": e["graph"],
                "reason": f"made on graph {e['graph']}, this registry's graph is {graph_id}",
            }
            for e in other
        ],
    }
    if other:
        warn(
            f"skipped {len(other)} label(s) of {where} made on other graphs "
            f"({', '.join(sorted({e['graph'] for e in other}))}); this registry's graph is {graph_id}"
        )
    here = (
        {s["id"]: s["meta"].get(ORIGIN) for s in registry.label_summaries(graph_id)}
        if registry
        else {}
    )
    for entry in (e for e in entries if e["graph"] == graph_id):
        plugin = entry.get("plugin")
        if plugin is not None and not (isinstance(plugin, str) and PACKAGE_NAME.match(plugin)):
            plan["refused"].append(
                {
                    "model": entry["model"],
                    "graph": graph_id,
                    "reason": f"its plugin {str(plugin)[:60]!r} is not a package name",
                }
            )
            continue
        origin = here.get(entry["model"], False)
        if entry["model"] not in here:
            plan["pull"].append(entry)
        elif isinstance(origin, dict) and origin.get("sha256") == entry["sha256"]:
            plan["skipped"].append({"model": entry["model"], "reason": "already pulled, identical"})
        elif replace or (isinstance(origin, dict) and origin.get("index") == where):
            plan["pull"].append(entry)  # a label pulled from this index before: its newer version
        else:
            plan["compare"].append(entry)
    return plan


def _check_file(path: Path, entry: dict) -> None:
    """A downloaded label file holds exactly the model the index says, with a plugin that is a name."""
    opened = open_label_file(path)
    if opened.model_ids != [entry["model"]] or opened.graph_id != entry["graph"]:
        raise LabelIndexError(
            f"{entry['file']} holds {', '.join(opened.model_ids)} on graph {opened.graph_id}, not "
            f"{entry['model']} on graph {entry['graph']} as the index says; nothing was pulled"
        )
    plugin = opened.manifest["labels"][0]["model"].get("plugin")
    if plugin is not None and not PACKAGE_NAME.match(plugin):
        raise LabelIndexError(
            f"{entry['file']}: its plugin {plugin[:60]!r} is not a package name; nothing was pulled"
        )


def _compared(registry: Registry, graph_id: str, path: Path, model_id: str) -> dict:
    """The skip of a label already here from elsewhere: identical to the file's, array for array, or not."""
    samples = registry.graph_samples(graph_id)
    (entry,) = read_many([path], graph_id, registry.graph_sizes(graph_id), samples)
    fmt, arrays, _ = registry.load_label(model_id, graph_id, samples)
    same = fmt == entry["format"] and all(
        np.array_equal(arrays[name], entry["arrays"][name]) for name in arrays
    )
    reason = (
        "an identical label is already here"
        if same
        else "a different label is here (--replace overwrites it)"
    )
    return {"model": model_id, "reason": reason}


def _create_registry(
    path: Path, graph: PublishedGraph, labels: list[Path], origins: dict[str, Any]
) -> None:
    """A new registry at ``path`` holding ``graph`` and ``labels``, built beside it and linked into place
    only once complete, so a failed pull leaves no registry behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.pulling-{os.getpid()}")
    try:
        registry = Registry(temporary)
        try:
            graph.save(registry)
            if labels:
                import_labels(registry, labels, origins=origins)
        finally:
            registry.close()
        try:
            os.link(temporary, path)  # never over a registry made meanwhile
        except FileExistsError:
            raise MllzooError(
                f"registry {path} was created by another process during the pull; nothing was pulled"
            ) from None
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(f"{temporary}{suffix}")
