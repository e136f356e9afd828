"""The plugin manager: entry-point discovery in group ``mllzoo``, one failure isolated per plugin.

Modelled on simonw/llm's ``plugins.py``: ``MLLZOO_LOAD_PLUGINS`` (a comma list of distribution
names; empty means none) chooses which entry points load, and a plugin that fails to import is
reported as one warning line unless ``MLLZOO_STRICT_PLUGINS=1`` asks for the exception.
Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs

GROUP = "mllzoo"
DEFAULT_PLUGINS = ("mllzoo.default_plugins.minilm", "mllzoo.default_plugins.openai_api")

pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(hookspecs)


@dataclass
class PluginInfo:
    """One plugin as ``mllzoo plugins`` lists it."""

    name: str
    version: str | None
    hooks: list[str]
    error: str | None = None
    default: bool = False


_load_errors: dict[str, PluginInfo] = {}
_loaded = False


def load_plugins() -> None:
    """Register the built-in plugins and the installed entry points, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), module_name)
    wanted = _wanted_distributions()
    for ep in entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist else ep.name
        if wanted is not None and dist not in wanted:
            continue
        if pm.get_plugin(dist) is not None:
            continue
        try:
            pm.register(ep.load(), dist)
        except Exception as exc:  # a broken plugin must not take the tool down
            if os.environ.get("MLLZOO_STRICT_PLUGINS") == "1":
                raise
            version = ep.dist.version if ep.dist else None
            _load_errors[dist] = PluginInfo(dist, version, [], f"{type(exc).__name__}: {exc}")
            print(f"Warning: plugin {dist} failed to load: {type(exc).__name__}: {exc}", file=sys.stderr)


def _wanted_distributions() -> set[str] | None:
    value = os.environ.get("MLLZOO_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def list_plugins(include_default: bool = False) -> list[PluginInfo]:
    """Loaded plugins with their hooks, plus the ones that failed to load (with the error)."""
    load_plugins()
    infos = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        default = name in DEFAULT_PLUGINS
        if default and not include_default:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        infos.append(PluginInfo(name, None if default else _version(plugin, name), hooks, None, default))
    infos.extend(_load_errors.values())
    return sorted(infos, key=lambda info: info.name)


def _version(plugin: Any, name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return getattr(plugin, "__version__", None)


def plugin_version(name: str) -> str | None:
    """The installed version of a plugin distribution, if it is one."""
    plugin = pm.get_plugin(name)
    return None if plugin is None else _version(plugin, name)
