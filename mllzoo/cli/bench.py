"""``mllzoo bench``: MLL against the usual choices on ImageFolder tasks."""

from __future__ import annotations

from pathlib import Path

import click

from mllzoo.cli.common import emit_json, open_registry
from mllzoo.defaults import BATCH_SIZE, BENCH_ORDERS, DEVICE


@click.command()
@click.argument("tasks_dir", type=click.Path(path_type=Path))
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a PNG: accuracy per task by method, and accuracy against hub size.",
)
@click.option(
    "--orders",
    default=BENCH_ORDERS,
    show_default=True,
    help="Random hub orders for the growth curve (0: none).",
)
@click.option("--device", default=DEVICE, show_default=True, help="cpu, cuda, mps or auto.")
@click.option(
    "--batch-size", type=int, default=BATCH_SIZE, show_default=True, help="Images per forward pass."
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def bench(
    ctx: click.Context,
    tasks_dir: Path,
    plot_path: Path | None,
    orders: int,
    device: str,
    batch_size: int,
    as_json: bool,
) -> None:
    """Compare MLL with the usual choices on ImageFolder tasks in TASKS_DIR (accuracy and cost)."""
    from mllzoo.evaluation.bench import METHODS, plot, run_bench
    from mllzoo.extras import require

    if plot_path:  # before the models run, not after
        require("matplotlib", "bench", "mllzoo bench --plot")
    result = run_bench(
        open_registry(ctx), tasks_dir, device=device, batch_size=batch_size, orders=orders
    )
    if plot_path:
        plot(result, plot_path)
    if as_json:
        emit_json(result)
        return
    click.echo(f"{'task':<18}{'classes':>8}{'images':>8}" + "".join(f"{m:>14}" for m in METHODS))
    for row in result["tasks"]:
        click.echo(
            f"{row['name']:<18}{row['classes']:>8}{row['images']:>8}"
            + "".join(f"{row['accuracy'][m]:>14.3f}" for m in METHODS)
        )
    click.echo(f"{'average':<34}" + "".join(f"{result['average'][m]:>14.3f}" for m in METHODS))
    loaded = sum(row["cost"]["mll_k1"]["models_loaded"] for row in result["tasks"]) / len(
        result["tasks"]
    )
    click.echo(
        f"MLL k=1 loads {loaded:.1f} of {len(result['models'])} models per task on average"
        + (f"; plot written to {plot_path}" if plot_path else "")
    )
