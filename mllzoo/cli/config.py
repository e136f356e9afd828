"""``mllzoo config``: read and change the user settings kept by :mod:`mllzoo.store.config`."""

from __future__ import annotations

import click

from mllzoo.cli.common import emit_json
from mllzoo.store import config as settings


@click.group("config")
def config_group() -> None:
    """Show or change settings (captioner, embedder, claim-lease, embedding-cache-mb) kept in the user
    config folder.

    \b
    mllzoo config list                 every setting, its value and where it comes from
    mllzoo config set captioner openai use OpenAI descriptions without --captioner
    mllzoo config unset captioner      back to the default
    """


@config_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def config_list(as_json: bool) -> None:
    """Every setting with its value, and whether it is set or the default."""
    chosen = settings.read_config()
    rows = [
        {
            "key": key,
            "value": chosen.get(key, default),
            "set": key in chosen,
            "default": default,
            "allowed": list(allowed) if allowed else None,
            "help": about,
        }
        for key, (default, allowed, about) in sorted(settings.SETTINGS.items())
    ]
    if as_json:
        emit_json({"path": str(settings.config_path()), "settings": rows})
        return
    for row in rows:
        click.echo(
            f"{row['key']} = {row['value']}"
            + ("" if row["set"] else "  (default)")
            + f"   # {row['help']}"
        )
    click.echo(f"# stored in {settings.config_path()}")


@config_group.command("get")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def config_get(key: str, as_json: bool) -> None:
    """Print one setting's value (its default when unset)."""
    value = settings.setting(key)
    emit_json({"key": key, "value": value}) if as_json else click.echo(value)


@config_group.command("set")
@click.argument("key")
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Set KEY to VALUE for every later command."""
    settings.set_setting(key, value)


@config_group.command("unset")
@click.argument("key")
def config_unset(key: str) -> None:
    """Return KEY to its default."""
    settings.unset_setting(key)


@config_group.command("path")
def config_path() -> None:
    """Print where the settings are stored."""
    click.echo(str(settings.config_path()))
