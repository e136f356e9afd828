"""``mllzoo plugins``, ``install``, ``uninstall``: the installed plugins and pip in mllzoo's environment."""

from __future__ import annotations

import subprocess
import sys

import click

from mllzoo.cli.common import emit_json
from mllzoo.errors import MllzooError


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include the built-in default plugins.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def plugins(show_all: bool, as_json: bool) -> None:
    """List installed plugins, their hooks, and whether they failed (with the reason)."""
    from dataclasses import asdict

    from mllzoo.models.catalog import discover_models
    from mllzoo.plugins import list_plugins
    from mllzoo.text.embedders import embedders

    discover_models()  # the cheap hooks run, so that a plugin failing in them shows as failed
    embedders()
    infos = list_plugins(include_default=show_all)
    if as_json:
        emit_json([{**asdict(info), "status": info.status} for info in infos])
        return
    if not infos:
        from mllzoo.plugin_source import install_command

        click.echo(f"No plugins installed. Try: {install_command(['mllzoo-plugin-openclip'])}")
    for info in infos:
        status = f"  failed: {info.error}" if info.error else ""
        click.echo(
            f"{info.name} {info.version or ''}".rstrip() + f"  [{', '.join(info.hooks)}]{status}"
        )


@click.command()
@click.argument("packages", nargs=-1)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade packages to the latest version.")
@click.option(
    "-e",
    "--editable",
    type=click.Path(file_okay=False, exists=True),
    help="Install a plugin from a local folder in editable mode.",
)
def install(packages: tuple[str, ...], upgrade: bool, editable: str | None) -> None:
    """Install plugins with pip into mllzoo's own environment."""
    if not packages and not editable:
        raise MllzooError(
            "name a plugin to install, e.g. mllzoo install -e plugins/mllzoo-plugin-eva"
        )
    args = [sys.executable, "-m", "pip", "install", *packages]
    if upgrade:
        args.append("--upgrade")
    if editable:
        args += ["--editable", editable]
    from mllzoo.plugin_source import not_on_index, not_on_index_message

    done = subprocess.run(args, stderr=subprocess.PIPE, text=True)
    missing = not_on_index(done.stderr) if done.returncode else None
    if missing is not None:
        raise MllzooError(not_on_index_message(missing))
    sys.stderr.write(done.stderr)
    sys.exit(done.returncode)


@click.command()
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall(packages: tuple[str, ...], yes: bool) -> None:
    """Uninstall plugins from mllzoo's own environment."""
    if not yes and not sys.stdin.isatty():
        raise MllzooError(
            "uninstall asks before removing anything and standard input is not a terminal: "
            "pass -y to uninstall without asking"
        )
    sys.exit(
        subprocess.call(
            [sys.executable, "-m", "pip", "uninstall", *packages, *(["-y"] if yes else [])]
        )
    )
