"""Which models the installed plugins offer: the ``mllzoo_register_models`` hook, per plugin.

Each plugin's registration runs on its own so that one failing plugin is a warning, and every
spec is recorded with the plugin that offered it (``mllzoo models`` shows it, the registry keeps it).
Plugins keep their specs in a shipped ``catalog.json`` that :func:`read_catalog` reads without torch.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import MllzooError
from .plugins import load_plugins, plugin_version, pm
from .vlm import ModelSpec


def read_catalog(package: str, name: str = "catalog.json") -> list[ModelSpec]:
    """The specs stored in a plugin package's catalogue file (package data)."""
    rows = json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))
    return [ModelSpec(**{**row, "hubs": tuple(row["hubs"])}) for row in rows]


def write_catalog(specs: list[ModelSpec], path: Path) -> None:
    """Write specs in the layout :func:`read_catalog` reads (a JSON list sorted by id)."""
    rows = [{"family": s.family, "arch": s.arch, "tag": s.tag, **s.metadata()} for s in specs]
    rows.sort(key=lambda row: (row["arch"].lower(), row["tag"]))
    lines = ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
    path.write_text(f"[\n{lines}\n]\n", encoding="utf-8")  # one model a line: readable diffs


@dataclass(frozen=True)
class CatalogEntry:
    spec: ModelSpec
    plugin: str
    plugin_version: str | None


def discover_models() -> dict[str, CatalogEntry]:
    """Every model the loaded plugins register, by id; the first plugin to claim an id keeps it."""
    load_plugins()
    found: dict[str, CatalogEntry] = {}
    for impl in reversed(pm.hook.mllzoo_register_models.get_hookimpls()):  # registration order
        plugin = impl.plugin_name
        version = plugin_version(plugin)

        def register(spec: ModelSpec, plugin: str = plugin, version: str | None = version) -> None:
            if not isinstance(spec, ModelSpec):
                raise TypeError(f"register() takes a ModelSpec, got {type(spec).__name__}")
            found.setdefault(spec.id, CatalogEntry(spec, plugin, version))

        try:
            impl.function(register=register)
        except Exception as exc:
            if os.environ.get("MLLZOO_STRICT_PLUGINS") == "1":
                raise
            print(f"Warning: plugin {plugin} failed to register models: {exc}", file=sys.stderr)
    return found


def resolve(model_ids: list[str], catalog: dict[str, CatalogEntry]) -> list[CatalogEntry]:
    """Look up user-given ids; an unknown one is a user error naming it."""
    unknown = [model_id for model_id in model_ids if model_id not in catalog]
    if unknown:
        raise MllzooError(f"unknown model id: {', '.join(unknown)} (see `mllzoo models`)")
    return [catalog[model_id] for model_id in model_ids]
