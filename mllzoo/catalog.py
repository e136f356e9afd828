"""Which models the installed plugins offer: the ``mllzoo_register_models`` hook, per plugin.

Each plugin's registration runs on its own so that one failing plugin is a warning, and every
spec is recorded with the plugin that offered it (``mllzoo models`` shows it, the registry keeps it).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from .errors import MllzooError
from .plugins import load_plugins, plugin_version, pm
from .vlm import ModelSpec, parse_model_id


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
    """Look up user-given ids; a malformed or unknown one is a user error naming it."""
    for model_id in model_ids:
        parse_model_id(model_id)
    unknown = [model_id for model_id in model_ids if model_id not in catalog]
    if unknown:
        raise MllzooError(f"unknown model id: {', '.join(unknown)} (see `mllzoo models`)")
    return [catalog[model_id] for model_id in model_ids]
