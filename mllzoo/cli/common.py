"""What every command module shares: the chosen registry, JSON output. Its own module so that ``cli``
and ``cli_labels`` both import it and neither imports the other (no cycle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mllzoo.output import json_text


def open_registry(ctx: click.Context, create: bool = False, write: bool = False) -> Any:
    """The registry chosen by ``--registry``/``MLLZOO_REGISTRY``/the default rule; ``write`` for commands
    that must write to it (a read-only command opens a registry it cannot write read-only)."""
    from mllzoo.store.registry import Registry, default_registry_path

    path = ctx.obj["registry_path"] or default_registry_path()
    if ctx.obj.get("verbose"):
        click.echo(f"registry: {Path(path).resolve()}", err=True)
    registry = Registry(path, create=create, write=write)
    ctx.call_on_close(registry.close)  # the command's end checkpoints and closes it, as exit would
    return registry


def registry_exists(ctx: click.Context) -> bool:
    from mllzoo.store.registry import default_registry_path

    return Path(ctx.obj["registry_path"] or default_registry_path()).exists()


def emit_json(data: Any) -> None:
    click.echo(json_text(data), nl=False)
