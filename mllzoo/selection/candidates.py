"""Which labeled models a selection may choose: named ones, one family, and by default installed ones only.

A registry can hold labels of models whose plugin is not installed here (imported, or left behind by
``mllzoo uninstall``); selecting one would make ``predict`` fail, so they are left out unless the
caller asks for them. When none of the candidates' plugins is installed (no plugin at all, or only
unrelated ones) a recommendation chooses among all of them, as a recommend-only install does: installing
an unrelated plugin never turns a working ``recommend`` into an error. Discovery reads the plugins'
tables only: no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mllzoo.errors import MllzooError, did_you_mean, note, warn
from mllzoo.store.registry import Registry

if TYPE_CHECKING:
    from mllzoo.models.status import ModelStatus


def candidate_models(
    labeled: list[str],
    registry: Registry,
    models: list[str] | None = None,
    family: str | None = None,
    include_uninstalled: bool = False,
    runnable: bool = False,
) -> list[str]:
    """The ids among ``labeled`` a selection considers, in ``labeled`` order; when none of them is
    installed, all of them unless ``runnable`` (the models must run here, as for ``predict``)."""
    pool = of_family(named(labeled, models), family, labeled)
    if include_uninstalled:
        return pool
    return installed_among(pool, registry, named=models is not None, runnable=runnable)


def named(labeled: list[str], models: list[str] | None) -> list[str]:
    """``labeled`` narrowed to ``models`` when given; an id that is not labeled is an error."""
    if models is None:
        return list(labeled)
    unknown = sorted(set(models) - set(labeled))
    if unknown:
        raise MllzooError(
            f"not labeled in this registry: {', '.join(unknown)}{did_you_mean(unknown[0], labeled)} "
            f"(see `mllzoo labels list`)"
        )
    return [m for m in labeled if m in models]


def of_family(pool: list[str], family: str | None, labeled: list[str]) -> list[str]:
    """``pool`` narrowed to one family when given; a family with no labeled model is an error."""
    if family is None:
        return pool
    kept = [m for m in pool if m.split("/", 1)[0] == family]
    if not kept:
        families = sorted({m.split("/", 1)[0] for m in labeled})
        raise MllzooError(
            f"no labeled model of family {family!r} among the candidates "
            f"(families labeled here: {', '.join(families)})"
        )
    return kept


def installed_among(pool: list[str], registry: Registry, named: bool, runnable: bool) -> list[str]:
    """The models of ``pool`` that run here; all of ``pool`` (with a note) when none does and the
    models need not run here. A model the caller named or must run is an error when it cannot."""
    from mllzoo.store.user_models import known_models

    catalog = known_models()
    installed = set(catalog)
    missing = [m for m in pool if m not in installed]
    if not missing:
        return pool
    if len(missing) == len(pool) and not runnable:
        from mllzoo.models.status import cannot_run

        found = statuses(registry, missing, catalog)
        none = (
            "none of the labeled models can run here"
            if any(s.plugin_installed for s in found)
            else "none of the labeled models' plugins is installed here"
        )
        note(
            f"{none} (as in a recommend-only install): choosing among all labeled models; "
            f"{cannot_run(found)}"
        )
        return pool
    if named or (runnable and len(missing) == len(pool)):
        raise MllzooError(missing_message(registry, missing, named, runnable))
    note(
        f"{len(missing)} labeled model(s) left out, they cannot run here: "
        f"{why_not_here(registry, missing)}"
        f"{'' if runnable else ' (--include-uninstalled selects them)'}"
    )
    return [m for m in pool if m in installed]


def missing_message(registry: Registry, missing: list[str], named: bool, runnable: bool) -> str:
    """Why named or needed models cannot be used, and the step that makes them usable
    (``--include-uninstalled`` only for a recommendation, since ``predict`` must run them)."""
    what = "named model(s)" if named else f"{len(missing)} labeled model(s)"
    anyway = "" if runnable else "; or pass --include-uninstalled to select them anyway"
    return f"the {what} cannot run here: {why_not_here(registry, missing)}{anyway}"


def why_not_here(registry: Registry, model_ids: list[str]) -> str:
    """Why these labeled models cannot run here, for each the real cause
    (:func:`~mllzoo.models.status.cannot_run`): its plugin is missing (with the install command), or
    is installed but does not offer it here."""
    from mllzoo.models.status import cannot_run
    from mllzoo.store.user_models import known_models

    return cannot_run(statuses(registry, model_ids, known_models()))


def statuses(registry: Registry, model_ids: list[str], catalog: dict) -> list[ModelStatus]:
    """Each model's :class:`~mllzoo.models.status.ModelStatus`, its plugin read from the registry."""
    from mllzoo.models.status import model_status

    return [
        model_status(m, (registry.model(m) or {}).get("plugin") or None, catalog) for m in model_ids
    ]


def plugins_of(registry: Registry, model_ids: list[str]) -> dict[str, str]:
    """The plugin each model was labeled with (from the registry's models table), by id."""
    return {m: (registry.model(m) or {}).get("plugin") or "(unknown plugin)" for m in model_ids}


def warn_uninstalled(registry: Registry, selected: list[str]) -> None:
    """One line saying why selected models ``predict`` would need cannot run here, and what to do."""
    from mllzoo.store.user_models import known_models

    installed = set(known_models())
    missing = [m for m in selected if m not in installed]
    if missing:
        warn(f"selected model(s) cannot run here: {why_not_here(registry, missing)}")
