"""``mllzoo register``: label installed models on the registry's graph, here or on Ray."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click

from mllzoo.cli.common import emit_json, open_registry
from mllzoo.defaults import (
    ALLOW_MISSING,
    BUDGET_BYTES,
    CHUNK,
    CPUS_PER_TASK,
    DECODE_WORKERS,
    DEVICE,
    PAPER_NODES,
    PAPER_PER_NODE,
    SHARD_IMAGES,
)


def _parse_depth(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    """``auto`` -> None (fit the budget); otherwise a positive number of nodes."""
    if value == "auto":
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise click.BadParameter(f"{value!r} is neither 'auto' nor a positive number")


@click.command()
@click.argument("model_ids", nargs=-1)
@click.option(
    "--samples",
    type=click.Path(path_type=Path),
    help="Where the graph's sample images are [default: the folder it was built from].",
)
@click.option("--device", default=DEVICE, show_default=True, help="cpu, cuda, mps or auto.")
@click.option(
    "--batch-size", type=int, help="Images per forward pass [default: 64 on CPU, 256 on GPU]."
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=CHUNK,
    show_default=True,
    help="Images per saved unit of work; an interrupted run resumes from the last one.",
)
@click.option(
    "--depth",
    default="auto",
    show_default=True,
    metavar="auto|M",
    callback=_parse_depth,
    help=f"Most nodes listed per image in each new label. 'auto' lists as deep as fits "
    f"{BUDGET_BYTES / 1e6:.0f} MB per model at {PAPER_NODES:,} nodes x {PAPER_PER_NODE} images; "
    "a number trades size for exactness "
    "(benchmarks/label_size.py measures both).",
)
@click.option(
    "--allow-missing",
    type=click.FloatRange(0, 1),
    default=ALLOW_MISSING,
    show_default=True,
    metavar="FRACTION",
    help="Share of the graph's sample images that may be missing or different; "
    "beyond it no model is labeled (check with `mllzoo graph check`).",
)
@click.option(
    "--download",
    is_flag=True,
    help="With no ids, also label models whose weights are not on this machine (downloads them, "
    "often gigabytes each).",
)
@click.option(
    "--decode-workers",
    type=click.IntRange(min=0),
    default=DECODE_WORKERS,
    show_default=True,
    metavar="N",
    help="Processes that decode and preprocess the next chunk's images while the model encodes "
    "this one (local executor; 0: in the labeling process). Labels are the same either way.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where models are run: this process, or a Ray cluster (pip install 'mllzoo[ray]'); "
    "this process alone writes the registry either way.",
)
@click.option(
    "--address", help="Ray cluster to join [default: $RAY_ADDRESS, else a local Ray instance]."
)
@click.option(
    "--gpus-per-model",
    type=click.FloatRange(min=0),
    help="GPUs each Ray task holds (fractions share a GPU) [default: 1 if the cluster has GPUs, else 0].",
)
@click.option(
    "--cpus-per-task",
    type=click.FloatRange(min=0),
    default=CPUS_PER_TASK,
    show_default=True,
    help="CPUs each Ray task holds.",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=SHARD_IMAGES,
    show_default=True,
    help="Most images per Ray task: each task loads its model once, so smaller shards spread "
    "one model over more workers at the cost of more loads.",
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def register(
    ctx: click.Context,
    model_ids: tuple[str, ...],
    samples: Path | None,
    device: str,
    batch_size: int | None,
    chunk_size: int,
    depth: int | None,
    allow_missing: float,
    download: bool,
    decode_workers: int,
    executor: str,
    address: str | None,
    gpus_per_model: float | None,
    cpus_per_task: float,
    shard_size: int,
    as_json: bool,
) -> None:
    """Label installed models on the registry's graph (the ones named, or all not yet labeled).

    A label a plugin ships for this graph is imported instead of running the model. With no ids, only
    models whose weights are already here (shipped or cached) are run; --download runs the others too.
    The sample images are checked against the graph's hashes before any model runs.
    """
    from dataclasses import asdict

    from mllzoo.labeling.compute import Executor, LocalExecutor
    from mllzoo.labeling.driver import register as register_models

    computer: Executor
    if executor == "ray":
        from mllzoo.labeling.ray_executor import RayExecutor

        if ctx.get_parameter_source("decode_workers") is not click.core.ParameterSource.DEFAULT:
            raise click.UsageError(
                "--decode-workers goes with the local executor (a Ray task decodes in its own "
                "process, on the CPUs --cpus-per-task gives it)"
            )
        computer = RayExecutor(address, gpus_per_model, cpus_per_task, shard_size)
    elif address or gpus_per_model is not None:
        raise click.UsageError("--address and --gpus-per-model go with --executor ray")
    else:
        computer = LocalExecutor(decode_workers=decode_workers)
    with terminated_as_interrupted():
        result = register_models(
            lambda: open_registry(ctx, write=True),
            model_ids,
            samples,
            download,
            device=device,
            batch_size=batch_size,
            chunk=chunk_size,
            depth=depth,
            allow_missing=allow_missing,
            executor=computer,
        )
    report, imported, not_here = result.report, result.imported, result.not_here
    if as_json:
        emit_json({**asdict(report), "imported": imported, "not_here": not_here})
    else:
        if imported:
            click.echo(
                f"imported {len(imported)} label(s) shipped by their plugin: {', '.join(imported)}"
            )
        if not_here:
            click.echo(
                f"skipped {len(not_here)} model(s) whose weights are not on this machine; to download "
                f"and label them: mllzoo register --download (or name ids: mllzoo register MODEL_ID ...)"
            )
        rate = report.images_encoded / report.seconds if report.seconds else 0.0
        click.echo(
            f"labeled {len(report.labeled)}, already labeled {len(report.skipped)}, "
            f"failed {len(report.failed)}, busy elsewhere {len(report.busy)}"
            + (
                f"; {report.images_encoded} images in {report.seconds:.1f}s ({rate:.0f} img/s)"
                if report.labeled
                else ""
            )
            + _skipped_images(report)
        )
    if report.failed:  # some of the work failed: exit 1, whatever else was labeled
        sys.exit(1)


NAMED_FILES = 3  # undecodable sample files the summary names (--json lists all)


def _skipped_images(report) -> str:
    counts = {
        "missing": report.missing_images,
        "different": report.different_images,
        "undecodable": report.undecodable_images,
    }
    files = report.undecodable_files
    named = {
        "undecodable": f" ({', '.join(files[:NAMED_FILES])}{', ...' if len(files) > NAMED_FILES else ''})"
        if files
        else ""
    }
    skipped = [f"{n} {kind}{named.get(kind, '')}" for kind, n in counts.items() if n]
    return f"; sample images skipped: {', '.join(skipped)}" if skipped else ""


@contextlib.contextmanager
def terminated_as_interrupted() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) while labeling, so a job a scheduler
    ends releases its claims, records its runs as interrupted and keeps its saved parts, as Ctrl-C
    does; the previous handler is back afterwards."""
    from mllzoo.errors import Terminated

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    if threading.current_thread() is not threading.main_thread():  # only there can it be handled
        yield
        return
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
