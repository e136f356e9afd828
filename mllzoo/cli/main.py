"""The ``mllzoo`` command line: a thin click layer over the library.

Heavy modules (torch, the selection and labeling code) are imported inside the commands, so
``mllzoo --help`` and plugin discovery stay fast and never import torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from mllzoo.cli.common import emit_json, open_registry, registry_exists
from mllzoo.cli.config import config_group
from mllzoo.cli.labels import labels as labels_group
from mllzoo.defaults import CHUNK
from mllzoo.errors import MllzooError, set_warning_handler, warn
from mllzoo.graph.samples import DEFAULT_ALLOW_MISSING, MAX_SAMPLE_BYTES
from mllzoo.plugins import call_each

GLOBAL_OPTIONS = ("--registry",)  # accepted after the subcommand too: moved before it
GLOBAL_FLAGS = ("-v", "--verbose")


def hoist_global_options(args: list[str]) -> list[str]:
    """``mllzoo recommend c.txt --registry r.db`` as ``mllzoo --registry r.db recommend c.txt`` (up to a ``--``)."""
    moved, rest, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in GLOBAL_OPTIONS and i + 1 < len(args):
            moved += args[i : i + 2]
            i += 2
            continue
        if arg in GLOBAL_FLAGS or (arg.split("=", 1)[0] in GLOBAL_OPTIONS and "=" in arg):
            moved.append(arg)
        else:
            rest.append(arg)
        i += 1
    return moved + rest


class MllzooGroup(click.Group):
    """Turns user errors into one line on stderr and exit status 2, never a traceback.

    Exit codes follow one rule: 0 done; 1 the command ran but some of its work failed (a model that
    could not be labeled, sample images missing in ``graph check``); 2 the command could not run as asked
    (a mistake in it or its input, a missing, damaged or read-only file): nothing was changed; 130
    interrupted.
    """

    def main(self, args: Any = None, *rest: Any, **options: Any) -> Any:
        arguments = list(sys.argv[1:] if args is None else args)
        return super().main(hoist_global_options(arguments), *rest, **options)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MllzooError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=MllzooGroup)
@click.version_option(package_name="mllzoo")
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(path_type=Path),
    envvar="MLLZOO_REGISTRY",
    help="Registry file [default: ./registry.db if present, else the "
    "user data dir's copy of the shipped registry].",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Say which registry file is in use (on stderr)."
)
@click.pass_context
def cli(ctx: click.Context, registry_path: Path | None, verbose: bool) -> None:
    """mllzoo: pick and combine pre-trained vision-language models for your classes.

    \b
    mllzoo recommend classes.txt      which models to use for these classes
    mllzoo predict images/ --classes classes.txt
    mllzoo register                   label newly installed models
    mllzoo labels export ID -o FILE   move labels between registries
    """
    ctx.obj = {"registry_path": registry_path, "verbose": verbose}


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="Include the built-in default plugins.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def plugins(show_all: bool, as_json: bool) -> None:
    """List installed plugins, their hooks, and whether they failed (with the reason)."""
    from dataclasses import asdict

    from mllzoo.models.catalog import discover_models
    from mllzoo.plugins import list_plugins
    from mllzoo.text.embedders import embedders

    discover_models()  # the cheap hooks run, so that a plugin failing in them shows as failed
    embedders()
    infos = list_plugins(include_default=show_all)
    if as_json:
        emit_json([{**asdict(info), "status": info.status} for info in infos])
        return
    if not infos:
        click.echo("No plugins installed. Try: mllzoo install mllzoo-plugin-openclip")
    for info in infos:
        status = f"  failed: {info.error}" if info.error else ""
        click.echo(
            f"{info.name} {info.version or ''}".rstrip() + f"  [{', '.join(info.hooks)}]{status}"
        )


@cli.group(invoke_without_command=True)
@click.option("--hub", help="Only models of this hub (e.g. mll49, the MLL benchmark's 49 models).")
@click.option("--family", help="Only models of this family (e.g. open_clip).")
@click.option("--labeled", is_flag=True, help="Only models labeled in the registry.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def models(
    ctx: click.Context, hub: str | None, family: str | None, labeled: bool, as_json: bool
) -> None:
    """List known models, labeled or not, with their metadata (`mllzoo models show ID`: one model's card)."""
    if ctx.invoked_subcommand is not None:
        return
    from mllzoo.models.catalog import discover_models

    catalog = discover_models()
    registry = open_registry(ctx, create=False) if registry_exists(ctx) else None
    graph_id = registry.current_graph_id() if registry else None
    labeled_ids = registry.labeled_model_ids(graph_id) if registry and graph_id else set()
    rows = {
        model_id: {"id": model_id, "family": e.spec.family, "plugin": e.plugin, **e.spec.metadata()}
        for model_id, e in catalog.items()
    }
    for row in (
        registry.models() if registry else []
    ):  # labeled models whose plugin is not installed
        rows.setdefault(
            row["id"],
            {"id": row["id"], "family": row["family"], "plugin": row["plugin"], **row["metadata"]},
        )
    for row in rows.values():
        row["labeled"] = row["id"] in labeled_ids
        row["installed"] = row["id"] in catalog
    listed = [
        row
        for _, row in sorted(rows.items())
        if (hub is None or hub in row.get("hubs", []))
        and (family is None or row["family"] == family)
        and (not labeled or row["labeled"])
    ]
    if as_json:
        emit_json(listed)
        return
    for row in listed:
        facts = [
            f"{row['params_m']:.1f}M params" if row.get("params_m") else None,
            f"{row['gflops']:.2f} GFLOPs" if row.get("gflops") else None,
            f"ImageNet {row['imagenet_top1']:.3f}" if row.get("imagenet_top1") else None,
            "labeled" if row["labeled"] else "not labeled",
            None if row["installed"] else "plugin not installed",
        ]
        click.echo(f"{row['id']}  ({', '.join(f for f in facts if f)})")


@models.command("show")
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def models_show(ctx: click.Context, model_id: str, as_json: bool) -> None:
    """A model's card: metadata, licence, plugin, installed or not, label coverage, strongest and weakest concepts."""
    from mllzoo.evaluation.model_card import MIN_SAMPLES, model_card

    card = model_card(open_registry(ctx, create=False, write=False), model_id)
    if as_json:
        emit_json(card)
        return
    meta = card["metadata"]
    click.echo(
        f"{card['id']}  (family {card['family']}, plugin {card['plugin']} {card['plugin_version'] or ''}, "
        f"{'installed' if card['installed'] else 'plugin not installed'})".replace(" ,", ",")
    )
    facts = [
        ("licence", meta.get("license")),
        ("parameters", f"{meta['params_m']:.1f}M" if meta.get("params_m") else None),
        ("GFLOPs", f"{meta['gflops']:.2f}" if meta.get("gflops") else None),
        ("ImageNet top-1", f"{meta['imagenet_top1']:.3f}" if meta.get("imagenet_top1") else None),
        ("weights", meta.get("source")),
        ("hubs", ", ".join(meta.get("hubs", [])) or None),
    ]
    for name, value in facts:
        if value:
            click.echo(f"  {name + ':':<16}{value}")
    if not card["labeled"]:
        click.echo(f"  not labeled on this registry's graph: `mllzoo register {card['id']}`")
        return
    label = card["label"]
    click.echo(
        f"  {'label:':<16}graph {label['graph']}, {label['readable_samples']:,} of {label['samples']:,} samples "
        f"readable, {label['ranked_first']:.1%} ranked first, depth {label['depth']}, made {label['created']}"
    )
    for title, concepts in (("strongest", card["strongest"]), ("weakest", card["weakest"])):
        click.echo(
            f"  {title} concepts (share of a concept's samples ranked first among all nodes; "
            f"at least {MIN_SAMPLES} samples):"
        )
        for c in concepts:
            click.echo(
                f"    {c['accuracy']:6.1%}  {c['synset']:<28} {c['name']} ({c['samples']} samples)"
            )


@cli.command()
@click.argument("packages", nargs=-1)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade packages to the latest version.")
@click.option(
    "-e",
    "--editable",
    type=click.Path(file_okay=False, exists=True),
    help="Install a plugin from a local folder in editable mode.",
)
def install(packages: tuple[str, ...], upgrade: bool, editable: str | None) -> None:
    """Install plugins with pip into mllzoo's own environment."""
    if not packages and not editable:
        raise MllzooError(
            "name a plugin to install, e.g. mllzoo install -e plugins/mllzoo-plugin-eva"
        )
    args = [sys.executable, "-m", "pip", "install", *packages]
    if upgrade:
        args.append("--upgrade")
    if editable:
        args += ["--editable", editable]
    sys.exit(subprocess.call(args))


@cli.command()
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall(packages: tuple[str, ...], yes: bool) -> None:
    """Uninstall plugins from mllzoo's own environment."""
    if not yes and not sys.stdin.isatty():
        raise MllzooError(
            "uninstall asks before removing anything and standard input is not a terminal: "
            "pass -y to uninstall without asking"
        )
    sys.exit(
        subprocess.call(
            [sys.executable, "-m", "pip", "uninstall", *packages, *(["-y"] if yes else [])]
        )
    )


@cli.group()
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
@click.option("--max-per-node", default=75, show_default=True, help="Sample images kept per node.")
@click.option("--seed", default=0, show_default=True, help="Seed of the per-node sample choice.")
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
        click.echo(
            f"Warning: {len(built.unknown_folders)} folder(s) are not WordNet noun synsets and were "
            f"skipped: {', '.join(built.unknown_folders[:10])}",
            err=True,
        )
    if built.skipped_files:
        click.echo(
            f"Warning: {len(built.skipped_files)} file(s) are not regular files of at most "
            f"{MAX_SAMPLE_BYTES // 1024**2} MB and were skipped: {', '.join(built.skipped_files[:10])}",
            err=True,
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


def _parse_depth(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    """``auto`` -> None (fit the budget); otherwise a positive number of nodes."""
    if value == "auto":
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise click.BadParameter(f"{value!r} is neither 'auto' nor a positive number")


@cli.command()
@click.argument("model_ids", nargs=-1)
@click.option(
    "--samples",
    type=click.Path(path_type=Path),
    help="Where the graph's sample images are [default: the folder it was built from].",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, mps or auto.")
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
    help="Most nodes listed per image in each new label. 'auto' lists as deep as fits 64 MB "
    "per model at 9,000 nodes x 75 images; a number trades size for exactness "
    "(benchmarks/label_size.py measures both).",
)
@click.option(
    "--allow-missing",
    type=click.FloatRange(0, 1),
    default=DEFAULT_ALLOW_MISSING,
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
    default=1,
    show_default=True,
    help="CPUs each Ray task holds.",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=16384,
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

    from mllzoo.labeling.driver import register as register_models

    computer = None
    if executor == "ray":
        from mllzoo.labeling.ray_executor import RayExecutor

        computer = RayExecutor(address, gpus_per_model, cpus_per_task, shard_size)
    elif address or gpus_per_model is not None:
        raise click.UsageError("--address and --gpus-per-model go with --executor ray")
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
    if report.failed and not report.labeled and not report.skipped and not imported:
        sys.exit(1)


def _skipped_images(report) -> str:
    counts = {
        "missing": report.missing_images,
        "different": report.different_images,
        "undecodable": report.undecodable_images,
    }
    skipped = [f"{n} {kind}" for kind, n in counts.items() if n]
    return f"; sample images skipped: {', '.join(skipped)}" if skipped else ""


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
            "-k", "k", type=int, default=1, show_default=True, help="Models kept per class."
        ),
        click.option(
            "--alpha",
            type=float,
            default=0.7,
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


def _recommend(ctx: click.Context, classes: Path | list[str], options: dict):
    from mllzoo.selection.recommend import recommend

    return recommend(classes, registry=open_registry(ctx), **options)


@cli.command("recommend")
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
    from mllzoo.selection.recommend import WEAK_MATCH

    result = _recommend(ctx, classes_file, options)
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
        click.echo(
            f"{plugin} runs {', '.join(m for m, p in data['plugins'].items() if p == plugin)}"
        )


def concept_names(nodes: list[dict]) -> list[str]:
    """Readable concept names, with the synset id where a name would repeat (``mouse.n.01``, ``mouse.n.04``)."""
    names = [node["name"] for node in nodes]
    return [node["synset"] if names.count(node["name"]) > 1 else node["name"] for node in nodes]


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--classes",
    "classes_file",
    required=True,
    type=click.Path(path_type=Path),
    help="Class file: one class per line.",
)
@selection_options
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, mps or auto.")
@click.option(
    "--batch-size", type=int, default=64, show_default=True, help="Images per forward pass."
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def predict(
    ctx: click.Context,
    paths: tuple[Path, ...],
    classes_file: Path,
    device: str,
    batch_size: int,
    as_json: bool,
    **options,
) -> None:
    """Classify images (files or folders) with the ensemble of recommended models.

    A folder whose sub-folders are class names is scored and its accuracy printed.
    """
    from mllzoo.classes import read_classes
    from mllzoo.reuse.predict import gather_images, per_class_report

    names = read_classes(classes_file)  # every input checked before selection and model loads
    images, truth, unmatched = gather_images(paths, names)
    if unmatched:
        folders = ", ".join(
            f"{folder} ({count})" for folder, count in sorted(unmatched.items())[:5]
        )
        click.echo(
            f"Warning: {sum(unmatched.values())} image(s) in {len(unmatched)} sub-folder(s) named like no "
            f"class are predicted but left out of the accuracy: {folders}"
            f"{' ...' if len(unmatched) > 5 else ''}",
            err=True,
        )
    result = _recommend(ctx, names, {**options, "runnable": True})
    ensemble = result.ensemble(device=device, batch_size=batch_size)
    labels = ensemble.predict(images)
    scored = [(p, t) for p, t in zip(labels, truth) if t is not None and p is not None]
    accuracy = sum(p == t for p, t in scored) / len(scored) if scored else None
    report = per_class_report(names, truth, labels)
    rows = [{"path": str(path), "label": label} for path, label in zip(images, labels)]
    if as_json:
        emit_json(
            {
                "predictions": rows,
                "accuracy": accuracy,
                "per_class": report,
                "models": result.models,
                "unreadable": len(ensemble.unreadable),
                "unmatched_folders": unmatched,
            }
        )
        return
    for row in rows:
        click.echo(f"{row['path']}\t{row['label'] if row['label'] is not None else '(unreadable)'}")
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


@cli.command()
@click.argument("tasks_dir", type=click.Path(path_type=Path))
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a PNG: accuracy per task by method, and accuracy against hub size.",
)
@click.option(
    "--orders",
    default=10,
    show_default=True,
    help="Random hub orders for the growth curve (0: none).",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, mps or auto.")
@click.option(
    "--batch-size", type=int, default=64, show_default=True, help="Images per forward pass."
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


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 serves every network this machine is on).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="Port to listen on.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Web pages over the registry (Datasette, read-only): recommend, models, concepts, compare, with JSON."""
    from mllzoo.extras import require
    from mllzoo.store.registry import default_registry_path

    require("datasette", "web", "mllzoo serve")
    from mllzoo.web.serve import serve_registry

    serve_registry(Path(ctx.obj["registry_path"] or default_registry_path()), host, port)


cli.add_command(labels_group)
cli.add_command(config_group)


def _add_plugin_commands() -> None:
    """Plugins' commands, each plugin on its own; one may add commands but never replace the core's,
    so ``--help`` and ``uninstall`` always work."""
    core = dict(cli.commands)
    call_each("mllzoo_register_commands", "register commands", lambda plugin: {"cli": cli})
    for name, command in core.items():
        if cli.commands.get(name) is not command:
            warn(f"a plugin replaced the core command {name!r}; the core's is kept")
            cli.add_command(command, name)


_add_plugin_commands()


def main() -> None:
    set_warning_handler(lambda message: click.echo(f"Warning: {message}", err=True))
    cli()
