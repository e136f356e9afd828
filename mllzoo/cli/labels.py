"""``mllzoo labels``: list, export, import and remove labels (a click group added to the CLI).

Only standard-library and numpy code runs here (:mod:`mllzoo.labeling.transfer`): no torch, no model.
"""

from __future__ import annotations

from pathlib import Path

import click

from mllzoo.cli.common import emit_json, open_registry
from mllzoo.defaults import DOWNLOAD_TIMEOUT


@click.group()
def labels() -> None:
    """Move labels between registries: list, export, import, remove, publish, pull.

    \b
    mllzoo labels export open_clip/ViT-B-32.openai -o vitb32.mllzoo-labels
    mllzoo labels import vitb32.mllzoo-labels     # on another machine, same graph
    mllzoo labels publish -o site/                # a label index to host anywhere
    mllzoo labels pull https://example.org/site/  # labels of that index, on this graph
    """


@labels.command("list")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def list_labels(ctx: click.Context, as_json: bool) -> None:
    """Labeled models on the registry's graph, with their plugin and whether the model runs here
    (if not, why: its plugin is not installed, or is installed but does not offer it here)."""
    from mllzoo.labeling.transfer import label_listing
    from mllzoo.models.status import model_status
    from mllzoo.plugins import is_distribution_name
    from mllzoo.store.user_models import known_models

    catalog = known_models()
    rows = label_listing(open_registry(ctx, create=False), catalog)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        status = model_status(row["id"], row["plugin"], catalog)
        plugin = row["plugin"]
        shown = plugin if plugin is None or is_distribution_name(plugin) else repr(plugin)
        shown = shown or "?"
        click.echo(f"{row['id']}  plugin {shown} ({status.explained()})")
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


@labels.command("publish")
@click.argument("model_ids", nargs=-1)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to publish into (its index.json keeps the entries it already has).",
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def publish_command(
    ctx: click.Context, model_ids: tuple[str, ...], output: Path, as_json: bool
) -> None:
    """Write a label index: the graph, the labels of MODEL_IDS [default: all] and index.json, as plain
    files any web server can host (docs/label-index.md)."""
    from mllzoo.labeling.index import publish

    result = publish(open_registry(ctx, create=False), output, list(model_ids))
    if as_json:
        emit_json(result)
        return
    click.echo(
        f"published {len(result['published'])} label(s) of graph {result['graph']} "
        f"to {result['index']}"
    )


@labels.command("pull")
@click.argument("source")
@click.argument("model_ids", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Say what would change; download nothing.")
@click.option(
    "--replace", is_flag=True, help="Replace labels the registry already has from elsewhere."
)
@click.option(
    "--index-sha256",
    metavar="HEX",
    help="Pull only if index.json has this SHA-256 (a pinned index).",
)
@click.option(
    "--graph",
    "graph_id",
    metavar="ID",
    help="Graph to create a new registry from [default: the index's only graph].",
)
@click.option(
    "--timeout",
    default=DOWNLOAD_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a server may stay silent before the pull stops.",
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def pull_command(
    ctx: click.Context,
    source: str,
    model_ids: tuple[str, ...],
    dry_run: bool,
    replace: bool,
    index_sha256: str | None,
    graph_id: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Pull labels from a label index: SOURCE is an https://, http:// or file:// URL or a local folder.

    \b
    mllzoo labels pull https://huggingface.co/datasets/ORG/NAME/resolve/main/

    Only labels made on the registry's graph are taken; a registry path that does not exist is
    created from the index's graph. Downloads resume; nothing is imported unless every file matches
    the index's size and SHA-256.
    """
    from mllzoo.labeling.index import pull
    from mllzoo.store.registry import default_registry_path

    path = Path(ctx.obj["registry_path"] or default_registry_path())
    result = pull(
        path,
        source,
        list(model_ids),
        replace=replace,
        dry_run=dry_run,
        index_sha256=index_sha256,
        graph=graph_id,
        timeout=timeout,
    )
    if as_json:
        emit_json(result)
        return
    verb = "would pull" if dry_run else "pulled"
    created = " into a new registry" if result["created"] or (dry_run and not path.exists()) else ""
    click.echo(f"{verb} {len(result['pulled'])} label(s){created} from {result['index']}")
    for skipped in result["skipped"]:
        click.echo(f"  skipped {skipped['model']}: {skipped['reason']}")
    for refused in result["refused"]:
        click.echo(f"  refused {refused['model']}: {refused['reason']}")


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
