"""``mllzoo serve``: Datasette over one registry, opened immutable, with the mllzoo pages."""

from __future__ import annotations

import sys
from pathlib import Path

from mllzoo.errors import MllzooError, WarningHandler, set_warning_handler


def serve_registry(path: Path, host: str, port: int) -> None:
    """Check ``path`` is a registry (one line if not), then serve it until interrupted."""
    import asyncio

    import uvicorn  # Datasette's own server
    from datasette.app import Datasette
    from datasette.plugins import pm

    from mllzoo import web
    from mllzoo.store.registry import Registry
    from mllzoo.web.zoo import zoo_for

    Registry(
        path, create=False, write=False, immutable=True
    ).close()  # a bad path fails here, in one line
    check_address(host, port)
    datasette = Datasette(
        immutables=[str(path)],
        settings={"default_page_size": 50},
        metadata={"title": f"mllzoo: {path.name}", "plugins": {"mllzoo": {"database": path.stem}}},
    )
    if not pm.is_registered(web):  # not installed as a distribution (a source tree on sys.path)
        pm.register(web, name="mllzoo")
    asyncio.run(datasette.invoke_startup())
    zoo = zoo_for(path, immutable=True)
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
