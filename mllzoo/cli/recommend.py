"""``mllzoo recommend``, and the selection options it shares with ``predict``."""

from __future__ import annotations

from pathlib import Path

import click

from mllzoo.cli.common import emit_json, open_registry
from mllzoo.defaults import ALPHA, K


def _id_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise click.BadParameter("name at least one model id")
    return ids


def selection_options(command):
    """Options shared by ``recommend``, ``predict`` and ``bench``: how models are selected."""
    options = [
        click.option("--domain", help='What the images are, e.g. "satellite picture".'),
        click.option("--task", help='What the task is, e.g. "land cover classification".'),
        click.option(
            "-k", "k", type=int, default=K, show_default=True, help="Models kept per class."
        ),
        click.option(
            "--alpha",
            type=float,
            default=ALPHA,
            show_default=True,
            help="Weight of a class's own score against the model's mean over the other classes.",
        ),
        click.option(
            "--max-models", type=click.IntRange(min=1), help="Use at most this many models in all."
        ),
        click.option(
            "--max-gflops", type=float, help="Use models whose GFLOPs add up to at most this."
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
            help="Also consider labeled models whose plugin is not installed here (predict cannot "
            "load them; `mllzoo labels list` names the plugin to install).",
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
    from mllzoo.plugins import is_distribution_name
    from mllzoo.selection.recommend import WEAK_MATCH

    result = recommend_for(ctx, classes_file, options)
    data = result.to_dict(explain=explain)
    if as_json:
        emit_json(data)
        return
    click.echo(
        f"score: the model's expected F1 on the class's concepts (0-1) | <- the closest graph concepts "
        f"| [weak]: none matches well (similarity < {WEAK_MATCH})"
    )
    for row in data["classes"]:
        models = ", ".join(f"{m['id']} ({m['score']:.3f})" for m in row["models"])
        concepts = ", ".join(concept_names(row["nodes"][:3]))
        click.echo(
            f"{row['name']:<28} {models}   <- {concepts}{'   [weak]' if row['weak'] else ''}"
        )
        if explain:
            for node, name in zip(row["nodes"], concept_names(row["nodes"])):
                click.echo(
                    f"    {name:<30} similarity {node['similarity']:.3f}  weight {node['weight']:.3f}"
                )
            runner = row["runner_up"]
            click.echo(
                f"    runner-up: {runner['id']} ({runner['score']:.3f})"
                if runner
                else "    runner-up: none"
            )
    click.echo(f"\n{len(data['models'])} model(s) to load: {', '.join(data['models'])}")
    for plugin in dict.fromkeys(data["plugins"].values()):
        shown = (
            plugin
            if is_distribution_name(plugin) or plugin == "(unknown plugin)"
            else f"a plugin recorded as {plugin!r}"
        )
        click.echo(
            f"{shown} runs {', '.join(m for m, p in data['plugins'].items() if p == plugin)}"
        )


def concept_names(nodes: list[dict]) -> list[str]:
    """Readable concept names, with the synset id where a name would repeat (``mouse.n.01``, ``mouse.n.04``)."""
    names = [node["name"] for node in nodes]
    return [node["synset"] if names.count(node["name"]) > 1 else node["name"] for node in nodes]
