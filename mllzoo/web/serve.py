"""``mllzoo serve``: Datasette over one registry, read-only, with the mllzoo pages.

The registry may change while it is served: the mllzoo pages follow it (:mod:`mllzoo.web.zoo`), and so
do Datasette's own table pages where the file can be read with locks (``mode=ro``). A registry this
user cannot write is served immutable instead: a read-only reader would leave ``-wal``/``-shm``
files beside it as read-only as it, which would then refuse every write.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from mllzoo.errors import MllzooError, WarningHandler, note, set_warning_handler

RESERVED_NAMES = ("_internal",)  # database names Datasette gives its own databases


def serve_registry(path: Path, host: str, port: int, no_sql: bool = False) -> None:
    """Check ``path`` is a registry (one line if not), then serve it until interrupted; ``no_sql``
    turns off Datasette's SQL and table pages (the mllzoo pages stay)."""
    from mllzoo.store import registry_file
    from mllzoo.store.registry import Registry

    path = path.resolve()  # once: the file a link names
    checked = Registry(path, create=False, write=False, read_only=True)  # a bad path: one line
    follow = (
        registry_file.check(path, create=False, write=False) and not checked.immutable_connection
    )
    checked.close()
    check_address(host, port)
    if not loopback(host):
        note(
            f"{host} is not a loopback address: anyone who reaches port {port} can read "
            + (
                "the mllzoo pages"
                if no_sql
                else "the whole registry and run read-only SQL on it (--no-sql turns that off)"
            )
        )
    with tempfile.TemporaryDirectory(prefix="mllzoo-serve-") as folder:
        served = uri_safe(path, Path(folder))
        _serve(make_datasette(path, served, follow, no_sql), path, host, port, follow)


def make_datasette(path: Path, served: Path, follow: bool, no_sql: bool):
    """Datasette over the registry ``path`` (as ``served``, :func:`uri_safe`): read with locks when
    ``follow``, else immutable; ``no_sql`` denies every table, query and SQL page to everyone."""
    from datasette.app import Datasette

    metadata: dict = {
        "title": f"mllzoo: {path.name}",
        "plugins": {"mllzoo": {"database": served.stem}},
    }
    if no_sql:
        metadata.update(allow=False, allow_sql=False)
    return Datasette(
        **{"files" if follow else "immutables": [str(served)]},
        settings={"default_page_size": 50},
        metadata=metadata,
    )


def loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def uri_safe(path: Path, folder: Path) -> Path:
    """``path``, or a link to it in ``folder`` with a plain name where ``path`` holds a character a
    ``file:`` URI reads otherwise (``#``, ``?``, ``%``): Datasette puts the path in one unquoted, and
    would open another file (``exp#3/r.db`` as ``exp``). Likewise where its name is one Datasette
    keeps for itself (``_internal.db`` would be served as ``_internal_2``, and the pages would look
    for the registry in Datasette's own database). SQLite keeps the journal beside the target."""
    if quote(str(path), safe="/") == str(path) and path.stem not in RESERVED_NAMES:
        return path
    link = folder / ((re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem).lstrip("_") or "registry") + ".db")
    link.symlink_to(path)
    return link


def _serve(datasette, path: Path, host: str, port: int, follow: bool) -> None:
    import asyncio

    import uvicorn  # Datasette's own server
    from datasette.plugins import pm

    from mllzoo import web
    from mllzoo.web.zoo import zoo_for

    if not pm.is_registered(web):  # not installed as a distribution (a source tree on sys.path)
        pm.register(web, name="mllzoo")
    asyncio.run(datasette.invoke_startup())
    zoo = zoo_for(path, immutable=not follow)
    zoo.run(
        _warm, zoo
    )  # the selector loads while the server starts: the first recommend does not wait for it
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}/-/mllzoo"
    print(f"Serving {path} read-only at {where} (Ctrl-C stops)", file=sys.stderr, flush=True)
    set_warning_handler(once(set_warning_handler(None)))
    server = uvicorn.Server(
        uvicorn.Config(datasette.app(), host=host, port=port, log_level="warning", lifespan="on")
    )
    server.run()
    if server.should_exit:  # stopped by Ctrl-C or SIGTERM, as any interrupted command: status 130
        raise KeyboardInterrupt


def once(handler: WarningHandler) -> WarningHandler:
    """``handler`` for each message the first time only: a server answers the same request many
    times, and a note about the registry says nothing new the second time."""
    seen: set[tuple[str, str]] = set()

    def handle(message: str, kind: str) -> None:
        if (message, kind) not in seen:
            seen.add((message, kind))
            handler(message, kind)

    return handle


def _warm(zoo) -> None:
    try:
        _ = zoo.selector  # a property: loading it is the point
    except MllzooError:
        pass  # the page says what is wrong, on the first request


def check_address(host: str, port: int) -> None:
    """One line, before anything starts, when ``host:port`` cannot be listened on (in use, not an address here)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError as exc:
        reason = (
            "is in use"
            if getattr(exc, "errno", None) == 98
            else f"cannot be listened on ({exc.strerror or exc})"
        )
        raise MllzooError(
            f"{host}:{port} {reason}: pick another with --port N (or --host)"
        ) from None
