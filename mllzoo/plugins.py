"""The plugin manager: entry-point discovery in group ``mllzoo``, one failure isolated per plugin.

Modelled on simonw/llm's ``plugins.py``: ``MLLZOO_LOAD_PLUGINS`` (a comma list of distribution
names; empty means none) chooses which entry points load. Every hook call from the core goes through
:func:`call_each` or :func:`call_first`, so a plugin that fails to import or raises in a hook
(``SystemExit`` included; only ``KeyboardInterrupt`` passes) is one warning line or one error naming
it, and a "failed" mark in ``mllzoo plugins``; ``MLLZOO_STRICT_PLUGINS=1`` asks for the exception.
Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from mllzoo import hookspecs
from mllzoo.errors import MllzooError, PluginError, warn

GROUP = "mllzoo"
DEFAULT_PLUGINS = ("mllzoo.default_plugins.minilm", "mllzoo.default_plugins.openai_api")

# PEP 508's distribution name: what `pip install NAME` takes as one name and nothing more
DISTRIBUTION_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE)

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

    @property
    def status(self) -> str:
        return "failed" if self.error else "ok"


_load_errors: dict[str, PluginInfo] = {}  # plugins that failed to import
_failures: dict[str, str] = {}  # loaded plugins whose hooks failed in this process: name -> reason
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
    points = list(entry_points(group=GROUP))
    if wanted is not None:
        installed = {_normalized(ep.dist.name if ep.dist else ep.name) for ep in points}
        for name in sorted(wanted - installed):
            warn(
                f"MLLZOO_LOAD_PLUGINS names {name!r}, which is no installed mllzoo plugin "
                f"(installed: {', '.join(sorted(installed)) or 'none'})"
            )
    for ep in points:
        dist = ep.dist.name if ep.dist else ep.name
        if wanted is not None and _normalized(dist) not in wanted:
            continue
        if pm.get_plugin(dist) is not None:
            continue
        module, exc = isolated(ep.load)
        if exc is None:
            pm.register(module, dist)
        else:
            version = ep.dist.version if ep.dist else None
            _load_errors[dist] = PluginInfo(dist, version, [], f"failed to load: {one_line(exc)}")
            warn(f"plugin {dist} failed to load: {one_line(exc)}")


def unload_plugins() -> None:
    """Forget every loaded plugin and failure, so the next hook call loads them afresh from the
    environment (``MLLZOO_LOAD_PLUGINS``, the installed entry points): for a long-lived process whose
    environment changed, such as a test session that runs the CLI in-process."""
    global _loaded
    for plugin in pm.get_plugins():
        pm.unregister(plugin)
    _load_errors.clear()
    _failures.clear()
    _loaded = False


def isolated(
    function: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[Any, BaseException | None]:
    """``(answer, None)``, or ``(None, exception)`` when a plugin's ``function`` raised: the one place
    where a plugin's failure is caught, so that it never takes the tool down (``sys.exit`` included;
    only ``KeyboardInterrupt`` passes). ``MLLZOO_STRICT_PLUGINS=1`` lets the exception through."""
    try:
        return function(*args, **kwargs), None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        if os.environ.get("MLLZOO_STRICT_PLUGINS") == "1":
            raise
        return None, exc


def one_line(exc: BaseException) -> str:
    """An exception as one line: a plugin's own user error as its message, anything else with its type."""
    text = str(exc) if isinstance(exc, MllzooError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def mark_failed(plugin: str, reason: str) -> None:
    """Show ``plugin`` as failed in this process's ``mllzoo plugins`` (the first reason is kept)."""
    _failures.setdefault(plugin, reason)


def _impls(hook_name: str) -> list[Any]:
    """A hook's implementations in plugin registration order, wrappers left out."""
    return [
        impl
        for impl in getattr(pm.hook, hook_name).get_hookimpls()
        if not (impl.hookwrapper or getattr(impl, "wrapper", False))
    ]


def implementing(hook_name: str) -> list[str]:
    """The loaded plugins that implement ``hook_name``, in registration order."""
    load_plugins()
    return [impl.plugin_name for impl in _impls(hook_name)]


def _call(impl: Any, kwargs: dict[str, Any]) -> Any:
    return impl.function(*[kwargs[name] for name in impl.argnames])  # as pluggy passes them


def call_each(
    hook_name: str, doing: str, arguments: Callable[[str], dict[str, Any]]
) -> list[tuple[str, Any]]:
    """Call every plugin's ``hook_name`` in registration order with ``arguments(plugin name)``; one
    that raises is one warning line ("plugin P failed to ``doing``: ...") and a failed mark, and
    the others still run. Returns ``(plugin, answer)`` of the plugins that did not raise."""
    load_plugins()
    answers = []
    for impl in _impls(hook_name):
        answer, exc = isolated(_call, impl, arguments(impl.plugin_name))
        if exc is None:
            answers.append((impl.plugin_name, answer))
        else:
            mark_failed(impl.plugin_name, f"failed to {doing}: {one_line(exc)}")
            warn(f"plugin {impl.plugin_name} failed to {doing}: {one_line(exc)}")
    return answers


def call_first(
    hook_name: str, context: str, prefer: str | None = None, **kwargs: Any
) -> tuple[str | None, Any]:
    """``(plugin, answer)``: the first plugin's non-None answer, in pluggy's firstresult order but with
    plugin ``prefer`` asked first; ``(None, None)`` when none answers. A plugin that raises is a
    :class:`PluginError` naming it and ``context`` (e.g. "model x/y.z failed to load")."""
    load_plugins()
    impls = list(reversed(_impls(hook_name)))  # pluggy calls the last registered first
    impls.sort(key=lambda impl: impl.plugin_name != prefer)  # stable: the rest keep their order
    for impl in impls:
        answer, exc = isolated(_call, impl, kwargs)
        if exc is not None:
            if not isinstance(exc, MllzooError):  # a plugin's own one-line error is not a fault
                mark_failed(impl.plugin_name, f"{context}: {one_line(exc)}")
            raise PluginError(f"plugin {impl.plugin_name}: {context}: {one_line(exc)}") from None
        if answer is not None:
            return impl.plugin_name, answer
    return None, None


def _wanted_distributions() -> set[str] | None:
    value = os.environ.get("MLLZOO_LOAD_PLUGINS")
    if value is None:
        return None
    return {_normalized(name) for name in value.split(",") if name.strip()}


def _normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them (``mllzoo_plugin_x`` is ``mllzoo-plugin-x``)."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def list_plugins(include_default: bool = False) -> list[PluginInfo]:
    """Loaded plugins with their hooks, plus the ones that failed to load (with the error)."""
    load_plugins()
    infos = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        if name is None:  # pluggy names every registered plugin; this only narrows the type
            continue
        default = name in DEFAULT_PLUGINS
        if default and not include_default:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        infos.append(
            PluginInfo(
                name,
                None if default else _version(plugin, name),
                hooks,
                _failures.get(name),
                default,
            )
        )
    infos.extend(_load_errors.values())
    return sorted(infos, key=lambda info: info.name)


def _version(plugin: Any, name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return getattr(plugin, "__version__", None)


def plugin_loaded(name: str | None) -> bool:
    """Whether the plugin distribution ``name`` is installed and loaded in this process: then a model
    of it that is missing from the catalogue is one it cannot offer here (a checkpoint setting that is
    not set, weights not on this machine), not one of a missing plugin."""
    load_plugins()
    return name is not None and pm.get_plugin(name) is not None


def plugin_version(name: str) -> str | None:
    """The installed version of a plugin distribution, if it is one."""
    plugin = pm.get_plugin(name)
    return None if plugin is None else _version(plugin, name)


def is_distribution_name(name: object) -> bool:
    """Whether ``name`` is a valid distribution name (PEP 508), safe to show inside a command."""
    return isinstance(name, str) and bool(DISTRIBUTION_NAME.match(name))
