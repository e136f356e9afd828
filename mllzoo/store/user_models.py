"""The models a user added with ``mllzoo models add``, kept in the settings file beside the settings.

Each is stored as the spec its family's plugin described (ids, metadata, what loading needs) with that
plugin's name, so listing them reads JSON only, no torch, and every command sees them through
:func:`known_models`: the plugins' catalogues plus these.
"""

from __future__ import annotations

from typing import Any

from mllzoo.errors import MllzooError, warn
from mllzoo.models.catalog import CatalogEntry, discover_models
from mllzoo.models.vlm import ModelSpec
from mllzoo.store.config import MODELS_KEY, config_path, read_settings_file, update_settings_file


def known_models() -> dict[str, CatalogEntry]:
    """Every model usable here, by id: the ones the user added, then the plugins' catalogues."""
    return discover_models(added_models())


def added_models() -> list[CatalogEntry]:
    """The added models; a hand-damaged entry is one warning and left out, never a stop."""
    stored = read_settings_file().get(MODELS_KEY, {})
    if not isinstance(stored, dict):
        warn(f"{config_path()}: '{MODELS_KEY}' is not an object of added models; ignored")
        return []
    entries = []
    for model_id, row in sorted(stored.items()):
        try:
            entries.append(_entry(row))
        except (TypeError, ValueError, KeyError) as exc:
            warn(f"{config_path()}: added model {model_id} is damaged ({exc}); ignored")
    return entries


def _entry(row: Any) -> CatalogEntry:
    fields = {key: value for key, value in row.items() if key != "plugin"}
    spec = ModelSpec(**{**fields, "hubs": tuple(fields.get("hubs", ()))})
    return CatalogEntry(spec, str(row["plugin"]), None)


def add_model(entry: CatalogEntry) -> None:
    """Keep ``entry`` (a described model) for every later command."""
    row = {
        "family": entry.spec.family,
        "arch": entry.spec.arch,
        "tag": entry.spec.tag,
        "plugin": entry.plugin,
        **entry.spec.metadata(),
    }
    update_settings_file(lambda data: {**data, MODELS_KEY: {**_models(data), entry.spec.id: row}})


def remove_model(model_id: str) -> None:
    """Forget an added model (checked under the settings lock); one that was not added is one line
    naming the added ones."""

    def without(data: dict[str, Any]) -> dict[str, Any]:
        added = _models(data)
        if model_id not in added:
            raise MllzooError(
                f"{model_id} was not added with `mllzoo models add`, so there is nothing to remove "
                f"(added: {', '.join(sorted(added)) or 'none'})"
            )
        return {**data, MODELS_KEY: {key: row for key, row in added.items() if key != model_id}}

    update_settings_file(without)


def _models(data: dict[str, Any]) -> dict[str, Any]:
    stored = data.get(MODELS_KEY, {})
    return stored if isinstance(stored, dict) else {}
