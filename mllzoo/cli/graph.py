"""``mllzoo graph``: build, check and describe the registry's semantic graph."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mllzoo.cli.common import emit_json, open_registry, registry_exists
from mllzoo.defaults import MAX_PER_NODE, SEED
from mllzoo.errors import note, warn
from mllzoo.graph.samples import MAX_SAMPLE_BYTES


@click.group()
def graph() -> None:
    """Build or inspect the registry's semantic graph of WordNet concepts."""


@graph.command("build")
@click.option(
    "--samples",
    "samples_dirs",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="Folder of class folders: WordNet synsets (dog.n.01, n02084071) or ImageNet-1k class "
    "indices (0..999, ImageNet-V2). Repeat it for several datasets: each contributes to a node in "
    "turn, up to --max-per-node.",
)
@click.option(
    "--max-per-node", default=MAX_PER_NODE, show_default=True, help="Sample images kept per node."
)
@click.option("--seed", default=SEED, show_default=True, help="Seed of the per-node sample choice.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def graph_build(
    ctx: click.Context,
    samples_dirs: tuple[Path, ...],
    max_per_node: int,
    seed: int,
    as_json: bool,
) -> None:
    """Build the graph from sample folders and make it the registry's graph.

    A build that fails leaves the registry as it was, and makes no file.
    """
    from mllzoo.graph.concept_graph import build_graph, save_graph

    existed = registry_exists(ctx)
    registry = open_registry(ctx, create=True, write=True)  # a read-only one fails before the build
    try:
        built = build_graph(list(samples_dirs), max_per_node=max_per_node, seed=seed)
        previous = registry.current_graph_id()
        save_graph(registry, built, built.source or str(samples_dirs[0]))
    except BaseException:
        if not existed:  # the registry this build made holds nothing: no file is left behind
            _discard(registry)
        raise
    orphaned = (
        sorted(registry.labeled_model_ids(previous)) if previous not in (None, built.id) else []
    )
    info = {
        **built.info(),
        "sources": [_source(scan) for scan in built.scans],
        "unknown_folders": built.unknown_folders,
        "skipped_files": built.skipped_files,
        "ignored": [path for scan in built.scans for path in scan.ignored],
        "empty_folders": [path for scan in built.scans for path in scan.empty],
        "previous_graph": previous,
        "labels_not_applying": orphaned,
    }
    if as_json:
        emit_json(info)
        return
    _report_build(built, previous, orphaned)
    click.echo(_graph_summary(info))


SHOWN = 5  # paths a warning names before "..."


def _named(paths: list[str]) -> str:
    return ", ".join(paths[:SHOWN]) + (", ..." if len(paths) > SHOWN else "")


def _source(scan) -> dict:
    return {
        "folder": str(scan.root),
        "layout": scan.layout,
        "folders": scan.folders,
        "images": len({d for images in scan.images.values() for d in images}),
    }


def _report_build(built, previous: str | None, orphaned: list[str]) -> None:
    """One line per root on the layout it was read as; counted and named what was left out; the
    labels the change of graph leaves behind."""
    from mllzoo.graph.layouts import describe

    for scan in built.scans:
        note(f"{scan.root}: {describe(scan.layout, scan.folders)}")
    skipped = {
        "folder(s) are not WordNet noun synsets": built.unknown_folders,
        "folder(s) hold no image": [p for scan in built.scans for p in scan.empty],
        "file(s) are not images by their name (or are folders inside a class folder)": [
            p for scan in built.scans for p in scan.ignored
        ],
        f"file(s) are not regular files of at most {MAX_SAMPLE_BYTES // 1024**2} MB": (
            built.skipped_files
        ),
    }
    for what, paths in skipped.items():
        if paths:
            warn(f"{len(paths)} {what} and were skipped: {_named(paths)}")
    if orphaned:
        note(
            f"the registry's graph changed from {previous} to {built.id}: {len(orphaned)} "
            f"label(s) made on {previous} stop applying (they stay stored under that graph): "
            f"{_named(orphaned)}"
        )


def _discard(registry) -> None:
    """Close and delete a registry file this command created (with SQLite's side files)."""
    path = registry.path
    registry.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


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
