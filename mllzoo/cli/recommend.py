"""``mllzoo recommend``, and the selection options it shares with ``predict``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mllzoo.cli.common import emit_json, open_registry
from mllzoo.defaults import (
    ALPHA,
    BATCH_SIZE,
    DEVICE,
    MAX_MODELS,
    REUSE,
    REUSE_METHODS,
    K,
    model_budget,
)


def _id_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise click.BadParameter("name at least one model id")
    return ids


# a click command, or the function it will wrap, as click's decorators take and give it back
Command = TypeVar("Command", bound=Callable[..., Any])


def no_limit(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    return model_budget(value)


def max_models_option(help: str) -> Callable[[Command], Command]:
    """``--max-models``, the model budget (0: no limit), as ``recommend``, ``predict`` and ``bench`` take it."""
    return click.option(
        "--max-models",
        type=click.IntRange(min=0),
        default=MAX_MODELS,
        show_default=True,
        callback=no_limit,
        help=help,
    )


def reuse_options(command: Command) -> Command:
    """Options shared by ``predict`` and ``bench``: where the models run and how their votes combine."""
    options = [
        click.option("--device", default=DEVICE, show_default=True, help="cpu, cuda, mps or auto."),
        click.option(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            show_default=True,
            help="Images per forward pass.",
        ),
        click.option(
            "--reuse",
            type=click.Choice(REUSE_METHODS),
            default=REUSE,
            show_default=True,
            help="described: class descriptions in the prompts; evidence: also votes weighted by the "
            "selection score; paper: the MLL paper's photo prompts and 1/entropy votes (bench: the "
            "`mll` row's reuse; the reference rows use its prompts).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def selection_options(command: Command) -> Command:
    """Options shared by ``recommend``, ``predict`` and ``bench``: how models are selected."""
    options = [
        click.option("--domain", help='What the images are, e.g. "satellite picture".'),
        click.option("--task", help='What the task is, e.g. "land cover classification".'),
        click.option(
            "-k",
            "k",
            type=int,
            default=K,
            show_default=True,
            help="Models kept per class (at most: within --max-models).",
        ),
        click.option(
            "--alpha",
            type=float,
            default=ALPHA,
            show_default=True,
            help="Weight of a class's own score against the model's mean over the other classes.",
        ),
        max_models_option(
            "Use at most this many models in all (0: no limit; `-k 1 --max-models 0` is the "
            "MLL paper's selection)."
        ),
        click.option(
            "--max-gflops", type=float, help="Use models whose GFLOPs add up to at most this."
        ),
        click.option(
            "--max-params",
            type=float,
            help="Use models whose parameters add up to at most this many millions.",
        ),
        click.option(
            "--captioner",
            type=click.Choice(["templates", "openai"]),
            help="Who describes the classes [default: the captioner setting, else templates; "
            "see mllzoo config].",
        ),
        click.option(
            "--embedder", help="Text embedder id [default: the embedder setting, else minilm]."
        ),
        click.option(
            "--skip-damaged",
            is_flag=True,
            help="Go on without labels that fail their checksum (one warning each) instead of stopping.",
        ),
        click.option(
            "--models",
            callback=_id_list,
            metavar="ID,...",
            help="Consider only these labeled models (comma-separated ids).",
        ),
        click.option(
            "--family", help="Consider only labeled models of this family (e.g. open_clip)."
        ),
        click.option(
            "--include-uninstalled",
            is_flag=True,
            help="Also consider labeled models that cannot run here: their plugin is not installed, "
            "or does not offer them here (predict cannot load them; `mllzoo labels list` says why).",
        ),
        click.option(
            "--no-cache",
            "cache",
            flag_value=False,
            default=True,
            help="Neither read nor fill the user's cache of class-description embeddings.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def recommend_for(ctx: click.Context, classes: Path | list[str], options: dict):
    from mllzoo.selection.recommend import recommend

    return recommend(classes, registry=open_registry(ctx), **options)


@click.command("recommend")
@click.argument("classes_file", type=click.Path(path_type=Path))
@selection_options
@click.option(
    "--explain",
    is_flag=True,
    help="Per class, the matched concepts with their similarity and weight, "
    "and the runner-up model.",
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def recommend_command(
    ctx: click.Context, classes_file: Path, as_json: bool, explain: bool, **options
) -> None:
    """Recommend models for the classes in CLASSES_FILE (one class per line)."""
    result = recommend_for(ctx, classes_file, options)
    data = result.to_dict(explain=explain)
    if as_json:
        emit_json(data)
        return
    for line in recommendation_text(data, explain, shutil.get_terminal_size().columns):
        click.echo(line)


NAME_WIDTH = 24  # the widest class-name column of the text table (longer names push their row)


def recommendation_text(data: dict, explain: bool, width: int) -> list[str]:
    """What ``recommend`` prints: the notice, the legend, the well-matched classes, the weak ones
    apart at the end, and which models to load for what; every line within ``width`` (a model id or
    concept longer than that alone excepted)."""
    from statistics import median

    from mllzoo.selection.recommend import WEAK_MATCH

    strong = [row for row in data["classes"] if not row["weak"]]
    weak = [row for row in data["classes"] if row["weak"]]
    lines = wrapped(data["notice"], width) if data.get("notice") else []
    lines += wrapped(
        "score: the model's expected F1 (0-1) on the graph concepts this class matched, compared "
        "among the concepts of the whole class list, so the same class scores differently in "
        "another list. <- the closest graph concepts.",
        width,
    )
    best = [row["models"][0]["score"] for row in strong if row["models"]]
    if best:
        lines += wrapped(
            f"good here: on this registry the best score of this list's well-matched classes runs "
            f"{min(best):.3f}-{max(best):.3f}, median {median(best):.3f}; compare a class with "
            f"these, not with 1.",
            width,
        )
    column = min(NAME_WIDTH, max(len(shown_name(row)) for row in data["classes"]) + 1)
    for row in strong:
        lines += class_lines(row, explain, width, column, with_scores=True)
    if weak:
        lines += [""] + wrapped(
            f"Weak matches: no graph concept matches these classes well (similarity < "
            f"{WEAK_MATCH}), so their scores say little; a clearer or corrected name helps "
            f"(mllzoo concepts QUERY searches the graph).",
            width,
        )
        for row in weak:
            lines += class_lines(row, explain, width, column, with_scores=False)
    lines += [""] + load_summary(data, width)
    return lines


def shown_name(row: dict) -> str:
    """A class as the table names it: a concept id with the concept's name (``n02084071 (= dog)``)."""
    return f"{row['name']} (= {row['nodes'][0]['name']})" if row.get("exact") else row["name"]


def class_lines(row: dict, explain: bool, width: int, column: int, with_scores: bool) -> list[str]:
    """One class: its models, its closest concepts, spelling suggestions when weak; ``explain`` adds
    each matched concept's similarity and weight, and the runner-up."""
    from mllzoo.graph.names import concept_names

    models = [f"{m['id']} ({m['score']:.3f})" if with_scores else m["id"] for m in row["models"]]
    parts = [*models, "<- " + ", ".join(concept_names(row["nodes"][:3]))]
    if row.get("suggestions"):
        parts.append(f"did you mean {' or '.join(row['suggestions'])}?")
    lines = packed(f"{shown_name(row):<{column}} ", parts, width, column + 1)
    if explain:
        for node, name in zip(row["nodes"], concept_names(row["nodes"])):
            lines.append(
                f"    {name:<30} similarity {node['similarity']:.3f}  weight {node['weight']:.3f}"
            )
        runner = row["runner_up"]
        lines.append(
            f"    runner-up: {runner['id']} ({runner['score']:.3f}"
            + ("; left out by --max-models)" if runner["outside_budget"] else ")")
            if runner
            else "    runner-up: none"
        )
    return lines


def load_summary(data: dict, width: int) -> list[str]:
    """The models to load, each with the classes it covers, the plugin that runs it and, when it
    cannot run here, why."""
    lines = [f"{len(data['models'])} model(s) to load:"]
    for model in data["models"]:
        covers = [
            row["name"] for row in data["classes"] if model in [m["id"] for m in row["models"]]
        ]
        names = [f"{name}," for name in covers[:-1]] + covers[-1:]
        if len(covers) == len(data["classes"]) > 1:
            names, covered = [], f"for all {len(covers)} classes"
        else:
            covered = f"for {len(covers)} class(es):"
        lines += packed(
            f"  {model} ", [f"({where(data, model)})", covered, *names], width, 4, sep=" "
        )
    return lines


def where(data: dict, model: str) -> str:
    """A chosen model's plugin, and why the model cannot run here when it cannot."""
    from mllzoo.models.status import RUNS

    availability = data["availability"][model]
    plugin = shown_plugin(data["plugins"][model])
    return plugin if availability == RUNS else f"{plugin}, {availability}"


def shown_plugin(plugin: str) -> str:
    """A recorded plugin name as the summary shows it: quoted when it is not a distribution name (free
    text from a label file is never printed as something to run)."""
    from mllzoo.plugins import is_distribution_name

    if is_distribution_name(plugin) or plugin == "(unknown plugin)":
        return plugin
    return f"a plugin recorded as {plugin!r}"


def packed(head: str, parts: list[str], width: int, indent: int, sep: str = "  ") -> list[str]:
    """``head`` then ``parts`` ``sep`` apart, wrapped at ``width`` onto lines indented by ``indent``;
    a part is never split."""
    lines, line = [], head
    for part in parts:
        if line == head:
            line += part
        elif len(line) + len(sep) + len(part) > width:
            lines.append(line)
            line = " " * indent + part
        else:
            line += sep + part
    lines.append(line)
    return lines


def wrapped(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
