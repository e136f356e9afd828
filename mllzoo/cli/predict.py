"""``mllzoo predict``: classify images with the ensemble of the recommended models."""

from __future__ import annotations

from pathlib import Path

import click

from mllzoo.cli.common import emit_json, open_registry
from mllzoo.cli.recommend import reuse_options, selection_options
from mllzoo.errors import MllzooError, warn


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--classes",
    "classes_file",
    required=True,
    type=click.Path(path_type=Path),
    help="Class file: one class per line.",
)
@selection_options
@reuse_options
@click.option(
    "--balanced",
    is_flag=True,
    help="The images hold every class in about equal numbers (a test set, not a folder of one "
    "class): each model's probabilities are balanced over them before the vote. Wrong when "
    "classes are missing or uneven; docs/design.md has the figures.",
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def predict(
    ctx: click.Context,
    paths: tuple[Path, ...],
    classes_file: Path,
    device: str,
    batch_size: int,
    reuse: str,
    balanced: bool,
    as_json: bool,
    **options,
) -> None:
    """Classify images (files or folders) with the ensemble of recommended models.

    A folder whose sub-folders are class names (or their concepts' wnids, n02084071 for dog) is
    scored and its accuracy printed.
    """
    from mllzoo.classes import read_classes
    from mllzoo.graph.concept_graph import load_graph
    from mllzoo.graph.names import folder_aliases
    from mllzoo.reuse.predict import (
        gather_images,
        nothing_readable,
        per_class_report,
        problem_of,
        require_readable,
    )
    from mllzoo.selection.recommend import recommend

    names = read_classes(classes_file)  # every input checked before selection and model loads
    registry = open_registry(ctx)
    aliases = folder_aliases(load_graph(registry, images=False, samples=False), names)
    images, truth, unmatched = gather_images(paths, names, aliases)
    require_readable(images)
    if balanced and len(images) < len(names):  # before any model loads
        raise MllzooError(
            f"--balanced needs at least as many images as classes: {len(images)} image(s) for "
            f"{len(names)} classes"
        )
    if unmatched:
        folders = ", ".join(
            f"{folder} ({count})" for folder, count in sorted(unmatched.items())[:5]
        )
        warn(
            f"{sum(unmatched.values())} image(s) in {len(unmatched)} sub-folder(s) named like no "
            f"class are predicted but left out of the accuracy: {folders}"
            f"{' ...' if len(unmatched) > 5 else ''}"
        )
    result = recommend(names, registry=registry, **options, runnable=True)
    ensemble = result.ensemble(device=device, batch_size=batch_size, reuse=reuse, balanced=balanced)
    labels = ensemble.predict(images)
    if all(label is None for label in labels):  # each became unreadable since it was checked
        raise nothing_readable(len(images))
    scored = [(p, t) for p, t in zip(labels, truth) if t is not None and p is not None]
    accuracy = sum(p == t for p, t in scored) / len(scored) if scored else None
    report = per_class_report(names, truth, labels)
    rows = [
        {"path": str(path), "label": label, **({} if label else {"problem": problem_of(path)})}
        for path, label in zip(images, labels)
    ]
    if as_json:
        emit_json(
            {
                "predictions": rows,
                "accuracy": accuracy,
                "per_class": report,
                "models": result.models,
                "balanced": balanced,
                "unreadable": len(ensemble.unreadable),
                "unmatched_folders": unmatched,
            }
        )
        return
    for row in rows:
        click.echo(f"{row['path']}\t{row['label'] or '({})'.format(row['problem'])}")
    if accuracy is not None:
        click.echo(
            f"accuracy {accuracy:.4f} on {len(scored)} images with models {', '.join(result.models)}"
        )
        for entry in report:
            confusions = (
                ", ".join(f"{c['class']} ({c['images']})" for c in entry["confused_with"]) or "none"
            )
            click.echo(
                f"  {entry['class']:<28} {entry['accuracy']:.3f} of {entry['images']}   confused with: "
                f"{confusions}"
            )
