"""Labels that travel: export a registry's labels to a label file, import files, and the labels plugins ship.

A model's label is computed once, by whoever has the images and the accelerator, and then copied:
``mllzoo labels export`` writes :mod:`mllzoo.store.labelfile` files, ``mllzoo labels import`` checks every
file it is given before it stores anything, in one transaction, and ``mllzoo register`` imports a
label a plugin ships (hook ``mllzoo_label_files``) for the registry's graph instead of running the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path, PureWindowsPath
from typing import Any

from mllzoo.errors import MllzooError, warn
from mllzoo.models.vlm import parse_model_id
from mllzoo.store.labelfile import (
    LabelFileError,
    checked_files,
    each_label,
    open_label_file,
    write_label_file,
)
from mllzoo.store.registry import Registry

ORIGIN = "origin"  # the label meta key naming the index a pulled label came from


def export_labels(
    registry: Registry, model_ids: list[str], path: Path, force: bool = False
) -> None:
    """Write the labels of ``model_ids`` on the registry's graph, with their models rows, to ``path``.

    Never onto the registry being read (or its ``-wal``/``-shm``/``-journal`` files); an existing file
    only with ``force``."""
    path = Path(path)
    own = [
        registry.path.with_name(registry.path.name + suffix)
        for suffix in ("", "-wal", "-shm", "-journal")
    ]
    if any(_same_file(path, file) for file in own):
        raise MllzooError(
            f"refusing to export onto {path}: it is the registry being read ({registry.path}); "
            f"choose another output file"
        )
    if (path.exists() or path.is_symlink()) and not force:
        raise MllzooError(
            f"{path} already exists: pass --force to overwrite it, or choose another output file"
        )
    graph_id = registry.require_graph_id()
    missing = sorted(set(model_ids) - registry.labeled_model_ids(graph_id))
    if missing:
        raise MllzooError(f"not labeled on graph {graph_id}: {', '.join(missing)}")
    samples = registry.graph_samples(graph_id)

    def entries() -> Iterator[dict]:  # one label read at a time, as the file is written
        for model_id in dict.fromkeys(model_ids):
            fmt, arrays, meta = registry.load_label(model_id, graph_id, samples)
            meta = {key: value for key, value in meta.items() if key != ORIGIN}  # where *we* got it
            yield {
                "model": model_row(registry, model_id, meta),
                "format": fmt,
                "meta": meta,
                "created": registry.label_created(model_id, graph_id),
                "arrays": arrays,
            }

    write_label_file(path, {"id": graph_id, **registry.graph_sizes(graph_id)}, entries())


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links, or the same path before it exists)."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def model_row(registry: Registry, model_id: str, meta: dict) -> dict:
    """The models-table row that travels with a label (from the label's meta when the registry has none)."""
    row = registry.model(model_id)
    if row is None:
        family, arch, tag = parse_model_id(model_id)
        row = {
            "id": model_id,
            "family": family,
            "arch": arch,
            "tag": tag,
            "plugin": meta.get("plugin"),
            "plugin_version": meta.get("plugin_version"),
            "metadata": {},
        }
    travelling = {
        key: row[key]
        for key in ("id", "family", "arch", "tag", "plugin", "plugin_version", "metadata")
    }
    source = travelling["metadata"].get("source")
    if isinstance(source, str) and (
        Path(source).is_absolute() or PureWindowsPath(source).is_absolute()
    ):
        # a folder of this machine (a model the user named by path): only its name travels
        travelling["metadata"] = {
            **travelling["metadata"],
            "source": PureWindowsPath(source).name or Path(source).name,
        }
    return travelling


class Claimed(MllzooError):
    """A model another live process has claimed for labeling."""


@contextlib.contextmanager
def claimed(registry: Registry, model_ids: list[str], graph_id: str, doing: str):
    """Hold the labeling claim of every model while their labels change, so that no running
    ``register`` has its saved work replaced or removed underneath it; a model claimed by another
    live process refuses the whole command in one line naming the claim."""
    taken: list[str] = []
    try:
        for model_id in dict.fromkeys(model_ids):
            if not registry.claim(model_id, graph_id):
                holder = registry.claim_holder(model_id, graph_id) or "another process"
                raise Claimed(
                    f"cannot {doing} {model_id}: it is claimed for labeling on graph {graph_id} by "
                    f"{holder}; wait for that `mllzoo register` to finish, then retry; nothing was changed"
                )
            taken.append(model_id)
        yield
    finally:
        for model_id in taken:
            registry.release(model_id, graph_id)


def import_labels(
    registry: Registry,
    paths: list[Path],
    replace: bool = False,
    origins: dict[str, dict] | None = None,
) -> dict[str, list[str]]:
    """Store every label of ``paths`` on the registry's graph, all or none: ``{"imported", "kept"}``.

    Every manifest is checked first; then the labels stream, one read, checked and stored at a time,
    inside one transaction that a bad label (or a kill) rolls back whole. ``origins`` (by model id)
    is recorded in the label's meta as ``origin``: where ``labels pull`` found it."""
    graph_id = registry.require_graph_id()
    sizes = registry.graph_sizes(graph_id)
    files = checked_files(paths, graph_id, sizes)
    model_ids = list(dict.fromkeys(model_id for opened in files for model_id in opened.model_ids))
    samples = registry.graph_samples(graph_id)

    def entries() -> Iterator[dict]:
        for entry in each_label(files, sizes, samples):
            entry["meta"].pop(ORIGIN, None)  # only this import says where the label came from
            if origins and entry["model"]["id"] in origins:
                entry["meta"][ORIGIN] = origins[entry["model"]["id"]]
            yield _normalised(entry)

    with claimed(registry, model_ids, graph_id, "import a label for"):
        stored = registry.import_labels(graph_id, entries(), replace=replace)
    from mllzoo.store.user_models import known_models

    catalog = known_models()  # where an installed plugin describes the model, its catalogue wins
    registry.record_models([catalog[model_id] for model_id in stored if model_id in catalog])
    return {"imported": stored, "kept": [m for m in model_ids if m not in stored]}


def remove_labels(registry: Registry, model_ids: list[str]) -> None:
    """Remove these models' labels on the registry's graph, all or none, none of them claimed by a running register."""
    graph_id = registry.require_graph_id()
    with claimed(registry, model_ids, graph_id, "remove the label of"):
        registry.remove_labels(list(dict.fromkeys(model_ids)), graph_id)


def _normalised(entry: dict) -> dict:
    """The file's models row in the registry's columns, id parts taken from the id itself."""
    model = entry["model"]
    family, arch, tag = parse_model_id(model["id"])
    row = {
        "id": model["id"],
        "family": family,
        "arch": arch,
        "tag": tag,
        "plugin": model.get("plugin"),
        "plugin_version": model.get("plugin_version"),
        "metadata": model["metadata"],
    }
    return {**entry, "model": row}


def shipped_label_files() -> list[tuple[str, Path]]:
    """``(plugin, path)`` of every label file installed plugins ship (hook ``mllzoo_label_files``).

    A plugin that raises (``sys.exit`` included) or answers anything but a list of paths is one
    warning naming it, and its answer is left out; the other plugins' files still count."""
    import os

    from mllzoo.plugins import call_each, mark_failed

    files: list[tuple[str, Path]] = []
    for plugin, answer in call_each("mllzoo_label_files", "list its label files", lambda _: {}):
        answer = [] if answer is None else answer
        bad = (
            answer
            if isinstance(answer, (str, bytes, dict)) or not isinstance(answer, (list, tuple))
            else next(
                (
                    item
                    for item in answer
                    if not isinstance(item, (str, os.PathLike)) and not hasattr(item, "joinpath")
                ),
                None,
            )
        )
        if bad is None:
            files += [(plugin, Path(str(path))) for path in answer]
            continue
        problem = (
            f"listed its label files as {type(answer).__name__} {str(answer)[:60]!r}, "
            "not a list of paths"
            if bad is answer
            else f"listed {type(bad).__name__} {str(bad)[:60]!r} as a label file, not a path"
        )
        mark_failed(plugin, problem)
        warn(f"plugin {plugin} {problem}")
    return files


def import_shipped(registry: Registry, model_ids: set[str]) -> list[str]:
    """Import the shipped labels made on the registry's graph for ``model_ids``; the ids imported.

    A shipped file that cannot be used is a warning: its models are labeled the usual way instead.
    """
    if not model_ids:
        return []
    graph_id = registry.require_graph_id()
    wanted: dict[str, Path] = {}
    for plugin, path in shipped_label_files():
        try:
            opened = open_label_file(path)
        except LabelFileError as exc:
            warn(f"shipped label file skipped: {exc}")
            continue
        if opened.graph_id != graph_id and set(opened.model_ids) & model_ids:
            warn(
                f"plugin {plugin} ships {path}, made on graph {opened.graph_id}, but this registry's "
                f"graph is {graph_id}: its models are labeled the usual way instead"
            )
        if opened.graph_id == graph_id:
            for model_id in opened.model_ids:
                if model_id in model_ids:
                    wanted.setdefault(model_id, opened.path)
    imported: list[str] = []
    sizes, samples = registry.graph_sizes(graph_id), registry.graph_samples(graph_id)
    for path in dict.fromkeys(wanted.values()):
        try:
            (opened,) = checked_files([path], graph_id, sizes)
        except LabelFileError as exc:
            warn(f"shipped label file skipped: {exc}")
            continue
        free = {  # a model another register is labeling is left to it
            model_id
            for model_id in opened.model_ids
            if model_id in model_ids and registry.claim_holder(model_id, graph_id) is None
        }
        entries = (  # every label of the file is read and checked, the free ones stored
            _normalised(entry)
            for entry in opened.entries(sizes, samples)
            if entry["model"]["id"] in free
        )
        try:
            with claimed(
                registry,
                [m for m in opened.model_ids if m in free],
                graph_id,
                "import a shipped label for",
            ):
                imported += registry.import_labels(graph_id, entries)
        except Claimed as exc:  # claimed since the check above
            warn(f"shipped label file {path} skipped: {exc}")
        except LabelFileError as exc:  # found while reading its arrays: nothing of it was stored
            warn(f"shipped label file skipped: {exc}")
    return imported


def label_listing(registry: Registry, catalog: dict[str, Any]) -> list[dict]:
    """Every label on the registry's graph: its plugin, whether the model runs here (and if not, why), its
    size and origin."""
    from mllzoo.models.status import model_status

    graph_id = registry.require_graph_id()
    rows = []
    for summary in registry.label_summaries(graph_id):
        meta = summary["meta"]
        status = model_status(summary["id"], summary["plugin"] or meta.get("plugin"), catalog)
        rows.append(
            {
                "id": summary["id"],
                "plugin": status.plugin,
                "installed": status.runs,
                "availability": status.text(),
                "created": summary["created"],
                "format": summary["format"],
                "bytes": meta.get("bytes"),
                "graph": graph_id,
            }
        )
    return rows
