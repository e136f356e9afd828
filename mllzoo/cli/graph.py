"""``mllzoo graph``: build, check and describe the registry's semantic graph."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mllzoo.cli.common import emit_json, open_registry
from mllzoo.defaults import MAX_PER_NODE, SEED
from mllzoo.errors import warn
from mllzoo.graph.samples import MAX_SAMPLE_BYTES


@click.group()
def graph() -> None:
    """Build or inspect the registry's semantic graph of WordNet concepts."""


@graph.command("build")
@click.option(
    "--samples",
    "samples_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="ImageFolder whose sub-folders are WordNet synsets (dog.n.01, n02084071).",
)
@click.option(
    "--max-per-node", default=MAX_PER_NODE, show_default=True, help="Sample images kept per node."
)
@click.option("--seed", default=SEED, show_default=True, help="Seed of the per-node sample choice.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def graph_build(
    ctx: click.Context, samples_dir: Path, max_per_node: int, seed: int, as_json: bool
) -> None:
    """Build the graph from a synset-named sample folder and make it the registry's graph."""
    from mllzoo.graph.concept_graph import build_graph, save_graph

    registry = open_registry(
        ctx, create=True, write=True
    )  # a read-only registry fails before the build
    built = build_graph(samples_dir, max_per_node=max_per_node, seed=seed)
    save_graph(registry, built, str(samples_dir.resolve()))
    info = {
        **built.info(),
        "unknown_folders": built.unknown_folders,
        "skipped_files": built.skipped_files,
    }
    if as_json:
        emit_json(info)
        return
    if built.unknown_folders:
        warn(
            f"{len(built.unknown_folders)} folder(s) are not WordNet noun synsets and were "
            f"skipped: {', '.join(built.unknown_folders[:10])}"
        )
    if built.skipped_files:
        warn(
            f"{len(built.skipped_files)} file(s) are not regular files of at most "
            f"{MAX_SAMPLE_BYTES // 1024**2} MB and were skipped: {', '.join(built.skipped_files[:10])}"
        )
    click.echo(_graph_summary(info))


@graph.command("check")
@click.option(
    "--samples",
    type=click.Path(path_type=Path),
    help="Folder to check [default: the folder the graph was built from].",
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def graph_check(ctx: click.Context, samples: Path | None, as_json: bool) -> None:
    """Check that a folder holds the graph's sample images, byte for byte (by their stored hashes).

    Exits 0 when every image is present and identical, 1 when some are missing or different.
    """
    from mllzoo.graph.concept_graph import load_graph, samples_root_for
    from mllzoo.graph.samples import check_samples

    registry = open_registry(ctx)
    built = load_graph(registry)
    check = check_samples(
        built.id,
        built.image_hashes,
        built.image_paths,
        samples_root_for(registry, built.id, samples),
    )
    if as_json:
        emit_json(check.to_dict(built.image_paths))
    else:
        report = check.to_dict(built.image_paths)
        for kind in ("missing", "different"):
            if report[kind]:
                more = report[kind] - len(report[f"{kind}_paths"])
                click.echo(
                    f"{kind}: {', '.join(report[f'{kind}_paths'])}"
                    + (f" and {more} more" if more else "")
                )
        click.echo(check.summary() if check.ok else f"Error: {check.summary()}", err=not check.ok)
    sys.exit(0 if check.ok else 1)


@graph.command("info")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def graph_info(ctx: click.Context, as_json: bool) -> None:
    """Nodes, edges, samples and depth of the registry's graph."""
    from mllzoo.graph.concept_graph import load_graph

    info = load_graph(open_registry(ctx)).info()
    emit_json(info) if as_json else click.echo(_graph_summary(info))


def _graph_summary(info: dict) -> str:
    return (
        f"graph {info['id']}: {info['nodes']} nodes ({info['leaves']} leaves), {info['edges']} edges, "
        f"{info['images']} images, {info['samples']} samples, depth {info['depth']}"
    )
