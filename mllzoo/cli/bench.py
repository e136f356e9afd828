"""``mllzoo bench``: MLL against the usual choices on ImageFolder tasks."""

from __future__ import annotations

from pathlib import Path

import click

from mllzoo.cli.common import emit_json, open_registry
from mllzoo.cli.recommend import max_models_option, reuse_options
from mllzoo.defaults import BENCH_ORDERS, K


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
@click.option(
    "-k", "k", type=int, default=K, show_default=True, help="The `mll` row's models per class."
)
@max_models_option(
    "The `mll` row's most models in all (0: no limit; `--reuse paper -k 1 --max-models 0`: "
    "the MLL paper's method)."
)
@reuse_options
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def bench(
    ctx: click.Context,
    tasks_dir: Path,
    plot_path: Path | None,
    orders: int,
    k: int,
    max_models: int | None,
    device: str,
    batch_size: int,
    reuse: str,
    as_json: bool,
) -> None:
    """Compare MLL with the usual choices on ImageFolder tasks in TASKS_DIR (accuracy and cost)."""
    from mllzoo.evaluation.bench import METHODS, plot, run_bench
    from mllzoo.extras import require

    if plot_path:  # before the models run, not after
        require("matplotlib", "bench", "mllzoo bench --plot")
    result = run_bench(
        open_registry(ctx),
        tasks_dir,
        device=device,
        batch_size=batch_size,
        orders=orders,
        reuse=reuse,
        k=k,
        max_models=max_models,
    )
    if plot_path:
        plot(result, plot_path)
    if as_json:
        emit_json(result)
        return
    width = 1 + max(len(m) for m in METHODS)  # a space between every two method names
    click.echo(
        f"{'task':<22}{'classes':>8}{'images':>7}" + "".join(f"{m:>{width}}" for m in METHODS)
    )
    for row in result["tasks"]:
        click.echo(
            f"{row['name']:<22}{row['classes']:>8}{row['images']:>7}"
            + "".join(f"{row['accuracy'][m]:>{width}.3f}" for m in METHODS)
        )
    click.echo(f"{'average':<37}" + "".join(f"{result['average'][m]:>{width}.3f}" for m in METHODS))
    click.echo(
        f"\n{'ablation (prompts/vote/scale/k/budget)':<42}{'accuracy':>9}{'vs paper_k1':>12}"
        f"{'worst task':>11}{'models':>8}{'reuse s/image':>15}"
    )
    paper = result["average"]["paper_k1"]
    for name, row in result["ablations"].items():
        click.echo(
            f"{name:<42}{row['accuracy']:>9.3f}{row['accuracy'] - paper:>+12.3f}"
            f"{row['worst_task_vs_paper_k1']:>+11.3f}{row['models_loaded']:>8.2f}"
            f"{row['reuse_seconds_per_image']:>15.6f}"
        )
    default, t = result["default"], result["targets"]
    budget = (
        "any number of" if default["max_models"] is None else f"at most {default['max_models']}"
    )
    click.echo(
        f"\nmll = reuse {default['reuse']} (prompts {default['prompts']}, score^{default['power']:g}, "
        f"logit scale {'by voters' if default['scale'] is None else format(default['scale'], 'g')}) "
        f"at k={default['k']} among {budget} models: {t['mll_minus_oracle_single']:+.3f} against oracle_single, "
        f"{t['mll_minus_fixed_single']:+.3f} against fixed_single ({result['fixed_single']}), "
        f"{t['mll_minus_inb']:+.3f} against inb, worst task {t['mll_minus_paper_k1_worst_task']:+.3f} "
        f"against paper_k1; loads {t['models_loaded_mll']:.2f} models per task (paper_k1 "
        f"{t['models_loaded_paper_k1']:.2f}) of {len(result['models'])}; reuse time "
        f"x{t['reuse_time_ratio_mll_to_paper_k1']:.2f} paper_k1's; mll_balanced (predict --balanced) "
        f"{t['mll_balanced_minus_oracle_single']:+.3f} against oracle_single"
        + (f"; plot written to {plot_path}" if plot_path else "")
    )
