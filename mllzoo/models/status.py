"""Whether a labeled model can run here, and if not the real cause: one answer for every surface.

A model runs here when an installed plugin offers it (it is in the catalogue). When it is missing,
either its plugin is not installed (installing it is the step to take), or the plugin is installed
but does not offer the model on this machine: its checkpoint setting is not set, or its weights are
not here. Telling those two apart keeps ``models``, ``labels list``, ``recommend`` and the web pages
from suggesting to install what is already installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

RUNS = "installed"
NOT_OFFERED = "not offered here"
NO_PLUGIN = "plugin not installed"

NOT_OFFERED_WHY = "its checkpoint setting or weights are missing on this machine"


@dataclass(frozen=True)
class ModelStatus:
    """Where a model stands here: ``state`` is :data:`RUNS`, :data:`NOT_OFFERED` or :data:`NO_PLUGIN`."""

    model_id: str
    plugin: str | None  # the plugin that offers it, else the one its label was made with
    state: str

    @property
    def runs(self) -> bool:
        return self.state == RUNS

    @property
    def plugin_installed(self) -> bool:
        return self.state != NO_PLUGIN

    def text(self) -> str:
        """The short phrase a listing shows (``models``, ``models show``, the web's model page)."""
        if self.state == NOT_OFFERED:
            return f"plugin installed, but it does not offer this model here: {NOT_OFFERED_WHY}"
        return self.state

    def explained(self) -> str:
        """What ``labels list`` shows after the plugin's name: :meth:`text`, or for a missing plugin
        the step to take (the install command)."""
        from mllzoo.plugin_source import install_command

        if self.state != NO_PLUGIN:
            return self.text()
        if not self.plugin:
            return "not installed, and no plugin recorded for it"
        return f"not installed: {install_command([self.plugin])}"


def model_status(model_id: str, recorded_plugin: str | None, catalog: Mapping) -> ModelStatus:
    """The status of ``model_id`` given the catalogue (:func:`~mllzoo.models.catalog.discover_models`)
    and the plugin its label was recorded with (the registry's models table)."""
    from mllzoo.plugins import plugin_loaded

    entry = catalog.get(model_id)
    if entry is not None:
        return ModelStatus(model_id, entry.plugin, RUNS)
    state = NOT_OFFERED if plugin_loaded(recorded_plugin) else NO_PLUGIN
    return ModelStatus(model_id, recorded_plugin, state)


def cannot_run(statuses: list[ModelStatus]) -> str:
    """Why these models cannot run here and the step for each group, in one clause:
    ``A, B need a plugin that is not installed here: mllzoo install X; C has its plugin installed, ...``."""
    from mllzoo.plugin_source import install_command

    def listed(ids: list[str]) -> str:
        return f"{', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}"

    missing = [s for s in statuses if s.state == NO_PLUGIN]
    unoffered = [s for s in statuses if s.state == NOT_OFFERED]
    parts = []
    if missing:
        parts.append(
            f"{listed([s.model_id for s in missing])} need a plugin that is not installed here: "
            f"{install_command([s.plugin for s in missing])}"
        )
    if unoffered:
        plugins = ", ".join(sorted({s.plugin or "?" for s in unoffered}))
        parts.append(
            f"{listed([s.model_id for s in unoffered])} have their plugin installed ({plugins}), "
            f"but it does not offer them here: {NOT_OFFERED_WHY} "
            f"(`mllzoo models show {unoffered[0].model_id}`)"
        )
    return "; ".join(parts)
