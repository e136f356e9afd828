"""User settings (``mllzoo config``): a small JSON file in the user config folder.

Choices that cost money or change results (which captioner describes classes, which embedder
embeds them) are made here or by a flag, never by what the environment happens to hold: an
``OPENAI_API_KEY`` alone switches nothing on. Only the standard library and platformdirs.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not on Windows: there a concurrent `config set` may lose an update
    fcntl = None  # type: ignore[assignment]

from mllzoo.defaults import CLAIM_LEASE, EMBEDDING_CACHE_MB
from mllzoo.errors import MllzooError
from mllzoo.store.files import replaced_atomically

# key -> (default, allowed values or None for any, what it chooses)
SETTINGS: dict[str, tuple[str, tuple[str, ...] | None, str]] = {
    "captioner": (
        "templates",
        ("templates", "openai"),
        "who describes the classes (openai is a paid API)",
    ),
    "embedder": (
        "minilm",
        None,
        "the text embedder used for selection: minilm, or openai:MODEL (needs mllzoo[openai] and a key)",
    ),
    "claim-lease": (
        str(CLAIM_LEASE),
        None,
        "seconds a labeling claim holds unless its register renews it; then another may take it over",
    ),
    "embedding-cache-mb": (
        str(EMBEDDING_CACHE_MB),
        None,
        "megabytes the user's text-embedding cache keeps, least recently used first out; 0 turns it off",
    ),
}


def config_path() -> Path:
    """``config.json`` in the user config folder (``$XDG_CONFIG_HOME/mllzoo`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("mllzoo")) / "config.json"


MAX_CONFIG_BYTES = 64 * 1024  # a settings file is a few lines: anything larger is not one


MODELS_KEY = "models"  # the models `mllzoo models add` described, kept beside the settings


def read_config() -> dict[str, str]:
    """The settings the user set (defaults not included); a damaged file is one clear error."""
    return {key: str(value) for key, value in read_settings_file().items() if key != MODELS_KEY}


def read_settings_file() -> dict[str, Any]:
    """The whole settings file as JSON: the settings and the ``models`` the user added."""
    path = config_path()
    text = _read_regular(path)
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than json parses
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise MllzooError(
            f"cannot read the settings in {path}: {reason}; fix or delete the file"
        ) from None
    if not isinstance(data, dict):
        raise MllzooError(f"{path} is not a JSON object of settings; fix or delete the file")
    return {str(key): value for key, value in data.items()}


def _read_regular(path: Path) -> str | None:
    """The file's text, read only when it is a regular file of at most :data:`MAX_CONFIG_BYTES` (a FIFO
    would block every command, a link to ``/dev/zero`` never ends); ``None`` when there is none."""
    try:  # O_NONBLOCK: opening a FIFO returns at once, and fstat then tells it apart
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MllzooError(
            f"cannot read the settings in {path}: {exc.strerror or exc}; fix or delete the file"
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise MllzooError(f"{path} is not a regular file, so it holds no settings; delete it")
        data = b""
        while len(data) <= MAX_CONFIG_BYTES:
            block = os.read(handle, MAX_CONFIG_BYTES + 1 - len(data))
            if not block:
                break
            data += block
        if len(data) > MAX_CONFIG_BYTES:
            raise MllzooError(
                f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KB, so it is not a settings file; "
                f"fix or delete it"
            )
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MllzooError(
            f"cannot read the settings in {path}: not UTF-8 text; fix or delete the file"
        ) from None
    except OSError as exc:
        raise MllzooError(
            f"cannot read the settings in {path}: {exc.strerror or exc}; fix or delete the file"
        ) from None
    finally:
        os.close(handle)


def _check_key(key: str) -> None:
    if key not in SETTINGS:
        raise MllzooError(f"unknown setting {key!r}; known: {', '.join(sorted(SETTINGS))}")


def setting(key: str) -> str:
    """The user's value for ``key``, else its default."""
    _check_key(key)
    return read_config().get(key, SETTINGS[key][0])


def claim_lease() -> float:
    """The ``claim-lease`` setting in seconds; a hand-edited value that is no positive number is one
    clear error."""
    return _seconds("claim-lease", setting("claim-lease"))


def _seconds(key: str, value: str) -> float:
    return _number(key, value, lambda s: 0 < s < float("inf"), "a positive number of seconds")


def _number(key: str, value: str, fits: Callable[[float], bool], what: str) -> float:
    """``value`` as a number that ``fits`` (NaN never does), else one line saying what it must be."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not fits(number):
        raise MllzooError(f"{key} must be {what}, not {value!r}")
    return number


def embedding_cache_bytes() -> int:
    """The ``embedding-cache-mb`` setting in bytes (0: no cache); a hand-edited value that is no
    non-negative number is one clear error."""
    return _megabytes("embedding-cache-mb", setting("embedding-cache-mb"))


def _megabytes(key: str, value: str) -> int:
    megabytes = _number(
        key, value, lambda m: 0 <= m < float("inf"), "a number of megabytes, 0 or more"
    )
    return int(megabytes * 1_000_000)


def set_setting(key: str, value: str) -> None:
    _check_key(key)
    allowed = SETTINGS[key][1]
    if allowed is not None and value not in allowed:
        raise MllzooError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    if key == "claim-lease":
        _seconds(key, value)
    if key == "embedding-cache-mb":
        _megabytes(key, value)
    update_settings_file(lambda values: {**values, key: value})


def unset_setting(key: str) -> None:
    _check_key(key)
    update_settings_file(lambda values: {k: v for k, v in values.items() if k != key})


def update_settings_file(change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Read, change and write the settings under an exclusive lock, so that concurrent ``config set``
    calls never lose an update; the new file is written to a temporary file of its own and replaced
    onto the old one, so a reader or a crash sees the old file or the new one, never half of one."""
    path = config_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            values = change(read_settings_file())
            with replaced_atomically(path) as stream:
                stream.write((json.dumps(values, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    except OSError as exc:
        raise MllzooError(f"cannot change the settings in {path}: {exc.strerror or exc}") from None
