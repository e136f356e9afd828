"""Which labeled models a selection may choose: named ones, one family, and by default installed ones only.

A registry can hold labels of models whose plugin is not installed here (imported, or left behind by
``mllzoo uninstall``); selecting one would make ``predict`` fail, so they are left out unless the
caller asks for them. Discovery reads the plugins' tables only: no torch.
"""

from __future__ import annotations

from mllzoo.errors import MllzooError, did_you_mean, note, warn
from mllzoo.store.registry import Registry


def candidate_models(
    labeled: list[str],
    registry: Registry,
    models: list[str] | None = None,
    family: str | None = None,
    include_uninstalled: bool = False,
    runnable: bool = False,
) -> list[str]:
    """The ids among ``labeled`` a selection considers, in ``labeled`` order; with no model plugin
    installed, all of them unless ``runnable`` (the models must run here)."""
    from mllzoo.models.catalog import discover_models

    if models is not None:
        unknown = sorted(set(models) - set(labeled))
        if unknown:
            raise MllzooError(
                f"not labeled in this registry: {', '.join(unknown)}{did_you_mean(unknown[0], labeled)} "
                f"(see `mllzoo labels list`)"
            )
    pool = [m for m in labeled if models is None or m in models]
    if family is not None:
        pool = [m for m in pool if m.split("/", 1)[0] == family]
        if not pool:
            families = sorted({m.split("/", 1)[0] for m in labeled})
            raise MllzooError(
                f"no labeled model of family {family!r} among the candidates "
                f"(families labeled here: {', '.join(families)})"
            )
    if include_uninstalled:
        return pool
    installed = set(discover_models())
    if (
        not installed and not runnable
    ):  # a recommend-only install: every label is a candidate, and the output names the plugins
        note(
            "no model plugin is installed here (a recommend-only install): choosing among all labeled "
            "models; `mllzoo install PLUGIN` runs them"
        )
        return pool
    missing = [m for m in pool if m not in installed]
    if missing and (models is not None or len(missing) == len(pool)):
        what = "named model(s)" if models is not None else f"{len(pool)} labeled model(s)"
        raise MllzooError(
            f"the {what} {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} need a "
            f"plugin that is not installed: {install_hint(registry, missing)}, "
            f"or pass --include-uninstalled to select them anyway"
        )
    if missing:
        note(
            f"{len(missing)} labeled model(s) left out, their plugin is not installed here "
            f"(`mllzoo labels list` names it; --include-uninstalled selects them)"
        )
    return [m for m in pool if m in installed]


def install_hint(registry: Registry, model_ids: list[str]) -> str:
    """``mllzoo install PLUGIN ...`` for the plugins these models were labeled with (a recorded name that
    is not a distribution name is shown quoted, outside the command: :func:`mllzoo.plugins.install_hint`)."""
    from mllzoo.plugins import install_hint as hint

    return hint([(registry.model(m) or {}).get("plugin") or None for m in model_ids])


def plugins_of(registry: Registry, model_ids: list[str]) -> dict[str, str]:
    """The plugin each model was labeled with (from the registry's models table), by id."""
    return {m: (registry.model(m) or {}).get("plugin") or "(unknown plugin)" for m in model_ids}


def warn_uninstalled(registry: Registry, selected: list[str]) -> None:
    """One line naming the plugins ``predict`` would need for selected models that are not installed."""
    from mllzoo.models.catalog import discover_models

    installed = set(discover_models())
    missing = [m for m in selected if m not in installed]
    if missing:
        warn(
            f"selected model(s) {', '.join(missing)} need a plugin that is not installed here; "
            f"to use them: {install_hint(registry, missing)}"
        )
