"""Which models the installed plugins offer: the ``mllzoo_register_models`` hook, per plugin.

Each plugin's registration runs on its own so that one failing plugin is a warning, and every
spec is recorded with the plugin that offered it (``mllzoo models`` shows it, the registry keeps it).
Plugins keep their specs in a shipped ``catalog.json`` that :func:`read_catalog` reads without torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mllzoo.errors import MllzooError, warn
from mllzoo.models.vlm import ModelSpec, parse_model_id
from mllzoo.plugins import call_each, plugin_loaded, plugin_version


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


def discover_models(added: Iterable[CatalogEntry] = ()) -> dict[str, CatalogEntry]:
    """Every model the loaded plugins register, by id. Plugins register in load order and the first
    to claim an id keeps it; a later plugin claiming it too gets one warning naming both.

    ``added`` are the models the user described with ``mllzoo models add`` (kept in the settings,
    :func:`mllzoo.store.user_models.known_models`): they come first, each with the plugin that
    described it, while that plugin is loaded."""
    found: dict[str, CatalogEntry] = {
        entry.spec.id: CatalogEntry(entry.spec, entry.plugin, plugin_version(entry.plugin))
        for entry in added
        if plugin_loaded(entry.plugin)
    }
    versions: dict[str, str | None] = {}
    taken: dict[tuple[str, str], list[str]] = {}  # (late plugin, keeping plugin) -> ids

    def register(spec: ModelSpec, plugin: str) -> None:
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"register() takes a ModelSpec, got {type(spec).__name__}")
        kept = found.get(spec.id)
        if kept is None:
            if plugin not in versions:
                versions[plugin] = plugin_version(plugin)
            found[spec.id] = CatalogEntry(spec, plugin, versions[plugin])
        elif kept.plugin != plugin:
            taken.setdefault((plugin, kept.plugin), []).append(spec.id)

    call_each(
        "mllzoo_register_models",
        "register models",
        lambda plugin: {"register": lambda spec: register(spec, plugin)},
    )
    for (plugin, keeper), ids in taken.items():
        warn(
            f"plugin {plugin} registers {len(ids)} model id(s) plugin {keeper} registered first, "
            f"which keeps them: {', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''}"
        )
    return found


def resolve(model_ids: list[str], catalog: dict[str, CatalogEntry]) -> list[CatalogEntry]:
    """Look up user-given ids; a malformed or unknown one is a user error naming it."""
    for model_id in model_ids:
        parse_model_id(model_id)
    unknown = [model_id for model_id in model_ids if model_id not in catalog]
    if unknown:
        raise MllzooError(f"unknown model id: {', '.join(unknown)} (see `mllzoo models`)")
    return [catalog[model_id] for model_id in model_ids]
