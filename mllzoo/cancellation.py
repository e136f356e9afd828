"""Cooperative cancellation: long work stops at its next step once nobody waits for its answer.

A thread cannot be stopped from outside, so the loops that can run for minutes (embedding a
5,000-class list, batch by batch) call :func:`checkpoint` between steps. The web server runs each
request under a token (:func:`cancellable`) that it sets when the client leaves or the request's time
is up; the worker is then free again within one step, and what the steps finished (embeddings
cached) is kept for the next request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Cancelled(Exception):
    """The work's token was set: nobody waits for its answer any more."""


_local = threading.local()


@contextmanager
def cancellable(token: threading.Event) -> Iterator[None]:
    """Run the block under ``token``: a :func:`checkpoint` inside it raises once the token is set."""
    outer = getattr(_local, "token", None)
    _local.token = token
    try:
        yield
    finally:
        _local.token = outer


def checkpoint() -> None:
    """Raise :class:`Cancelled` if this thread's work was cancelled; nothing outside :func:`cancellable`."""
    token = getattr(_local, "token", None)
    if token is not None and token.is_set():
        raise Cancelled
