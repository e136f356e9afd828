"""Labels that travel: export a registry's labels to a label file, import files, and the labels plugins ship.

A model's label is computed once, by whoever has the images and the accelerator, and then copied:
``mllzoo labels export`` writes :mod:`mllzoo.labelfile` files, ``mllzoo labels import`` checks every
file it is given before it stores anything, in one transaction, and ``mllzoo register`` imports a
label a plugin ships (hook ``mllzoo_label_files``) for the registry's graph instead of running the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import MllzooError, warn
from .labelfile import LabelFileError, open_label_file, read_many, write_label_file
from .registry import Registry
from .vlm import parse_model_id


def export_labels(registry: Registry, model_ids: list[str], path: Path) -> None:
    """Write the labels of ``model_ids`` on the registry's graph, with their models rows, to ``path``."""
    graph_id = registry.require_graph_id()
    missing = sorted(set(model_ids) - registry.labeled_model_ids(graph_id))
    if missing:
        raise MllzooError(f"not labeled on graph {graph_id}: {', '.join(missing)}")
    entries = []
    for model_id in dict.fromkeys(model_ids):
        fmt, arrays, meta = registry.load_label(model_id, graph_id)
        entries.append({"model": model_row(registry, model_id, meta), "format": fmt, "meta": meta,
                        "created": registry.label_created(model_id, graph_id), "arrays": arrays})
    write_label_file(path, {"id": graph_id, **registry.graph_sizes(graph_id)}, entries)


def model_row(registry: Registry, model_id: str, meta: dict) -> dict:
    """The models-table row that travels with a label (from the label's meta when the registry has none)."""
    row = registry.model(model_id)
    if row is None:
        family, arch, tag = parse_model_id(model_id)
        row = {"id": model_id, "family": family, "arch": arch, "tag": tag, "plugin": meta.get("plugin"),
               "plugin_version": meta.get("plugin_version"), "metadata": {}}
    return {key: row[key] for key in ("id", "family", "arch", "tag", "plugin", "plugin_version", "metadata")}


def import_labels(registry: Registry, paths: list[Path], replace: bool = False) -> dict[str, list[str]]:
    """Store every label of ``paths`` on the registry's graph, all or none: ``{"imported", "kept"}``."""
    graph_id = registry.require_graph_id()
    found = read_many(paths, graph_id, registry.graph_sizes(graph_id), registry.graph_samples(graph_id))
    stored = registry.import_labels(graph_id, [_normalised(entry) for entry in found], replace=replace)
    return {"imported": stored, "kept": [e["model"]["id"] for e in found if e["model"]["id"] not in stored]}


def _normalised(entry: dict) -> dict:
    """The file's models row in the registry's columns, id parts taken from the id itself."""
    model = entry["model"]
    family, arch, tag = parse_model_id(model["id"])
    row = {"id": model["id"], "family": family, "arch": arch, "tag": tag, "plugin": model.get("plugin"),
           "plugin_version": model.get("plugin_version"), "metadata": model["metadata"]}
    return {**entry, "model": row}


def shipped_label_files() -> list[Path]:
    """The label files installed plugins ship (hook ``mllzoo_label_files``)."""
    from .plugins import load_plugins, pm

    load_plugins()
    files: list[Path] = []
    for impl in pm.hook.mllzoo_label_files.get_hookimpls():
        try:
            answer: Any = impl.function()  # pluggy types a hook's answer as object
            files += [Path(str(path)) for path in answer or []]
        except Exception as exc:  # one broken plugin must not stop register
            warn(f"plugin {impl.plugin_name} failed to list its label files: {exc}")
    return files


def import_shipped(registry: Registry, model_ids: set[str]) -> list[str]:
    """Import the shipped labels made on the registry's graph for ``model_ids``; the ids imported.

    A shipped file that cannot be used is a warning: its models are labeled the usual way instead.
    """
    if not model_ids:
        return []
    graph_id = registry.require_graph_id()
    wanted: dict[str, Path] = {}
    for path in shipped_label_files():
        try:
            opened = open_label_file(path)
        except LabelFileError as exc:
            warn(f"shipped label file skipped: {exc}")
            continue
        if opened.graph_id == graph_id:
            for model_id in opened.model_ids:
                if model_id in model_ids:
                    wanted.setdefault(model_id, opened.path)
    imported: list[str] = []
    sizes, samples = registry.graph_sizes(graph_id), registry.graph_samples(graph_id)
    for path in dict.fromkeys(wanted.values()):
        try:
            entries = [e for e in read_many([path], graph_id, sizes, samples) if e["model"]["id"] in model_ids]
        except LabelFileError as exc:
            warn(f"shipped label file skipped: {exc}")
            continue
        imported += registry.import_labels(graph_id, [_normalised(entry) for entry in entries])
    return imported


def label_listing(registry: Registry, catalog: dict[str, Any]) -> list[dict]:
    """Every label on the registry's graph: its plugin, whether that plugin is installed, its size and origin."""
    graph_id = registry.require_graph_id()
    rows = []
    for summary in registry.label_summaries(graph_id):
        entry = catalog.get(summary["id"])
        meta = summary["meta"]
        plugin = entry.plugin if entry else summary["plugin"] or meta.get("plugin")
        rows.append({"id": summary["id"], "plugin": plugin, "installed": entry is not None,
                     "created": summary["created"], "format": summary["format"], "bytes": meta.get("bytes"),
                     "graph": graph_id})
    return rows
