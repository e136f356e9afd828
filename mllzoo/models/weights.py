"""Whether this process can reach the Hugging Face Hub, decided once, so offline loads fail at once.

When the Hub cannot be reached, huggingface_hub retries every missing file with backoff: about half a
minute a file and minutes a model, and ``mllzoo register`` may try hundreds of models. Plugins ask
here first and, when the answer is no, load from the cache with huggingface_hub in offline mode or
fail with one line. Only the standard library at import; huggingface_hub is imported when switched.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import urlsplit

from mllzoo.errors import ModelLoadError

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0


def _is_true(value: str | None) -> bool:
    """huggingface_hub's reading of a boolean environment variable."""
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) as huggingface_hub reads it.

    huggingface_hub reads the variable once, when imported; its constant is honoured too, so turning
    offline mode on after that import (as tests do) counts as well.
    """
    constants = sys.modules.get("huggingface_hub.constants")
    return _is_true(
        os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    ) or bool(getattr(constants, "HF_HUB_OFFLINE", False))


def hub_endpoint() -> str:
    """The Hub's base URL: ``HF_ENDPOINT`` (a mirror), else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_unreachable_reason() -> str | None:
    """None when the Hub can be used now, else why not, as a phrase for a one-line error."""
    if hub_offline():
        return "offline mode is on (HF_HUB_OFFLINE)"
    endpoint = hub_endpoint()
    return None if reachable(endpoint) else f"{endpoint} cannot be reached"


def hub_reachable() -> bool:
    """False in offline mode or when the endpoint does not accept a connection within the timeout."""
    return hub_unreachable_reason() is None


def reachable(url: str) -> bool:
    """Whether ``url``'s host (or the proxy the environment names for it) accepts a TCP connection.

    The answer is kept for the rest of the process per host and port: a run that found the network
    down does not wait again for each of its models.
    """
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return _accepts_connection(parts.hostname or "", port)


@cache
def _accepts_connection(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:  # unresolvable name, refused, unroutable or timed out
        return False


def weights_unavailable(model_id: str, origin: str, why: str | BaseException) -> ModelLoadError:
    """The one-line :class:`~mllzoo.errors.ModelLoadError` every family raises when weights cannot be had here.

    ``why`` is a phrase ("not cached here and <host> cannot be reached") or the library's exception,
    of which only the first line is kept.
    """
    if isinstance(why, BaseException):
        why = _cut((str(why).strip().splitlines() or [type(why).__name__])[0])
    return ModelLoadError(
        f"cannot load {model_id}: weights are not available here ({why}); they would come from "
        f"{origin} (connect to the hub once to cache them, or name local weights)"
    )


MESSAGE_CHARS = 200  # of a library's error inside one line


def _cut(text: str) -> str:
    """``text`` cut to about :data:`MESSAGE_CHARS` at a word, marked by ``...`` where it was cut."""
    if len(text) <= MESSAGE_CHARS:
        return text
    return text[:MESSAGE_CHARS].rsplit(" ", 1)[0].rstrip(" ,;:[(") + " ..."


@contextmanager
def offline_unless_reachable() -> Iterator[bool]:
    """Run the block with huggingface_hub in offline mode unless the Hub is reachable; yield reachability.

    Offline, every Hub file a load needs (weights, configs, tokenizers) comes from the cache at once or
    fails at once, instead of being retried for half a minute.
    """
    from huggingface_hub import constants

    is_reachable = hub_reachable()
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = saved or not is_reachable
    try:
        yield is_reachable
    finally:
        constants.HF_HUB_OFFLINE = saved
