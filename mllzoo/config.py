"""User settings (``mllzoo config``): a small JSON file in the user config folder.

Choices that cost money or change results (which captioner describes classes, which embedder
embeds them) are made here or by a flag, never by what the environment happens to hold: an
``OPENAI_API_KEY`` alone switches nothing on. Only the standard library and platformdirs.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import MllzooError

# key -> (default, allowed values or None for any, what it chooses)
SETTINGS: dict[str, tuple[str, tuple[str, ...] | None, str]] = {
    "captioner": ("templates", ("templates", "openai"), "who describes the classes (openai is a paid API)"),
    "embedder": ("minilm", None, "the text embedder id used for selection (see `mllzoo config list`)"),
}


def config_path() -> Path:
    """``config.json`` in the user config folder (``$XDG_CONFIG_HOME/mllzoo`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("mllzoo")) / "config.json"


def read_config() -> dict[str, str]:
    """The settings the user set (defaults not included); a damaged file is one clear error."""
    path = config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise MllzooError(f"cannot read the settings in {path}: {exc}; fix or delete the file") from None
    if not isinstance(data, dict):
        raise MllzooError(f"{path} is not a JSON object of settings; fix or delete the file")
    return {str(key): str(value) for key, value in data.items()}


def _check_key(key: str) -> None:
    if key not in SETTINGS:
        raise MllzooError(f"unknown setting {key!r}; known: {', '.join(sorted(SETTINGS))}")


def setting(key: str) -> str:
    """The user's value for ``key``, else its default."""
    _check_key(key)
    return read_config().get(key, SETTINGS[key][0])


def set_setting(key: str, value: str) -> None:
    _check_key(key)
    allowed = SETTINGS[key][1]
    if allowed is not None and value not in allowed:
        raise MllzooError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    _write({**read_config(), key: value})


def unset_setting(key: str) -> None:
    _check_key(key)
    _write({k: v for k, v in read_config().items() if k != key})


def _write(values: dict[str, str]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)  # a crash leaves the old file or the new one, never half of one
