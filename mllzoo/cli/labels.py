"""``mllzoo labels``: list, export, import and remove labels (a click group added to the CLI).

Only standard-library and numpy code runs here (:mod:`mllzoo.labeling.transfer`): no torch, no model.
"""

from __future__ import annotations

from pathlib import Path

import click

from mllzoo.cli.common import emit_json, open_registry


@click.group()
def labels() -> None:
    """Move labels between registries: list, export, import, remove.

    \b
    mllzoo labels export open_clip/ViT-B-32.openai -o vitb32.mllzoo-labels
    mllzoo labels import vitb32.mllzoo-labels     # on another machine, same graph
    """


@labels.command("list")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def list_labels(ctx: click.Context, as_json: bool) -> None:
    """Labeled models on the registry's graph, with their plugin and whether it is installed."""
    from mllzoo.labeling.transfer import label_listing
    from mllzoo.models.catalog import discover_models

    rows = label_listing(open_registry(ctx, create=False), discover_models())
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        where = (
            "installed"
            if row["installed"]
            else f"not installed: mllzoo install {row['plugin'] or '(unknown plugin)'}"
        )
        click.echo(f"{row['id']}  plugin {row['plugin'] or '?'} ({where})")
    if not rows:
        click.echo("No labels on this registry's graph.")


@labels.command("export")
@click.argument("model_ids", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The label file to write.",
)
@click.option(
    "--force", is_flag=True, help="Overwrite OUTPUT if it exists (never the registry itself)."
)
@click.pass_context
def export_command(
    ctx: click.Context, model_ids: tuple[str, ...], output: Path, force: bool
) -> None:
    """Write the labels of MODEL_IDS (on the registry's graph) to one label file."""
    from mllzoo.labeling.transfer import export_labels

    export_labels(open_registry(ctx, create=False), list(model_ids), output, force=force)
    click.echo(f"exported {len(set(model_ids))} label(s) to {output}")


@labels.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--replace", is_flag=True, help="Replace labels the registry already has for these models."
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def import_command(
    ctx: click.Context, files: tuple[Path, ...], replace: bool, as_json: bool
) -> None:
    """Import label files; every file is checked before anything is stored (all or nothing)."""
    from mllzoo.labeling.transfer import import_labels

    result = import_labels(open_registry(ctx, create=False), list(files), replace=replace)
    if as_json:
        emit_json(result)
        return
    click.echo(
        f"imported {len(result['imported'])} label(s)"
        + (
            f"; kept {len(result['kept'])} already labeled (--replace to overwrite): "
            f"{', '.join(result['kept'])}"
            if result["kept"]
            else ""
        )
    )


@labels.command("remove")
@click.argument("model_ids", nargs=-1, required=True)
@click.pass_context
def remove_command(ctx: click.Context, model_ids: tuple[str, ...]) -> None:
    """Remove the labels of MODEL_IDS from the registry's graph (all must be labeled, or none is removed)."""
    from mllzoo.labeling.transfer import remove_labels

    remove_labels(open_registry(ctx, create=False), list(model_ids))
    click.echo(f"removed {len(set(model_ids))} label(s)")


@labels.command("unclaim")
@click.argument("model_ids", nargs=-1, required=True)
@click.pass_context
def unclaim_command(ctx: click.Context, model_ids: tuple[str, ...]) -> None:
    """Clear the labeling claims of MODEL_IDS, left by jobs known to be dead (on another node, say).

    A claim also lapses by itself once it has not been renewed for `claim-lease` seconds. A claim
    whose process still runs on this host is refused: stop that process, and it releases its claim.
    """
    registry = open_registry(ctx, create=False)
    cleared = registry.unclaim(list(model_ids), registry.require_graph_id())
    for model_id, holder in cleared.items():
        click.echo(f"cleared the claim on {model_id} held by {holder}")
