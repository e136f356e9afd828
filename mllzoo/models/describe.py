"""A user's own checkpoint as a model (``mllzoo models add``): the family's plugin checks and describes it.

The id's family picks the plugin (the one whose catalogue offers that family); it answers the
``mllzoo_describe_model`` hook with a :class:`~mllzoo.models.vlm.ModelSpec` holding everything a later
load needs, so the spec alone travels to Ray workers. A family whose plugin lacks the hook is one line.
"""

from __future__ import annotations

from pathlib import Path

from mllzoo.errors import MllzooError, PluginError
from mllzoo.models.catalog import CatalogEntry
from mllzoo.models.vlm import ModelSpec, parse_model_id
from mllzoo.plugins import call_first, implementing, plugin_version

HOOK = "mllzoo_describe_model"
LOCAL_DIR = "local-dir:"  # open_clip's (and the Hub's) name for a folder holding config and weights


def absolute_checkpoint(checkpoint: str) -> str:
    """``checkpoint`` as an absolute path (a ``local-dir:`` prefix kept), once it is known to exist:
    the settings and Ray workers must not depend on the folder the user ran ``models add`` in."""
    prefix = LOCAL_DIR if checkpoint.startswith(LOCAL_DIR) else ""
    path = Path(checkpoint.removeprefix(prefix)).expanduser()
    if not path.exists():
        raise MllzooError(f"checkpoint {path} does not exist")
    return prefix + str(path.resolve())


def describe_model(
    model_id: str, checkpoint: str, config: str | None, catalog: dict[str, CatalogEntry]
) -> CatalogEntry:
    """The plugin of ``model_id``'s family checks ``checkpoint`` (and ``config``) and describes it."""
    family, _, _ = parse_model_id(model_id)
    if model_id in catalog:
        raise MllzooError(
            f"{model_id} is already a known model (plugin {catalog[model_id].plugin}); "
            f"give your checkpoint another tag, or `mllzoo models remove` the one you added"
        )
    owners = sorted({e.plugin for e in catalog.values() if e.spec.family == family})
    if not owners:
        families = sorted({e.spec.family for e in catalog.values()})
        raise MllzooError(
            f"no installed plugin offers family {family!r}, so none can describe {model_id} "
            f"(families here: {', '.join(families) or 'none'})"
        )
    describing = [plugin for plugin in implementing(HOOK) if plugin in owners]
    if not describing:
        raise MllzooError(
            f"plugin {owners[0]} (family {family}) cannot add checkpoints: it does not implement "
            f"the {HOOK} hook"
        )
    if config is not None and not Path(config).expanduser().is_file():
        raise MllzooError(f"config {config} is not a file")
    answered, spec = call_first(
        HOOK,
        f"could not add {model_id}",
        prefer=describing[0],
        model_id=model_id,
        checkpoint=absolute_checkpoint(checkpoint),
        config=None if config is None else str(Path(config).expanduser().resolve()),
    )
    if spec is None:
        raise MllzooError(f"plugin {describing[0]} did not describe {model_id}")
    if not isinstance(spec, ModelSpec) or spec.id != model_id:
        what = spec.id if isinstance(spec, ModelSpec) else type(spec).__name__
        raise PluginError(f"plugin {answered}: described {model_id} as {what}, not that model")
    return CatalogEntry(spec, str(answered), plugin_version(str(answered)))
