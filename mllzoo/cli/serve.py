"""``mllzoo serve``: the web pages over the registry."""

from __future__ import annotations

from pathlib import Path

import click

from mllzoo.defaults import HOST, PORT


@click.command()
@click.option(
    "--host",
    default=HOST,
    show_default=True,
    help="Address to listen on (0.0.0.0 serves every network this machine is on).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=PORT,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--no-sql",
    is_flag=True,
    help="Turn off Datasette's SQL and table pages; keep the mllzoo pages (for a wider --host).",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, no_sql: bool) -> None:
    """Web pages over the registry (Datasette, read-only): recommend, models, concepts, compare, with JSON."""
    from mllzoo.extras import require
    from mllzoo.store.registry import default_registry_path

    require("datasette", "web", "mllzoo serve")
    from mllzoo.web.serve import serve_registry

    serve_registry(Path(ctx.obj["registry_path"] or default_registry_path()), host, port, no_sql)
