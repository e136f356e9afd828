"""``mllzoo models``: the known models, one model's card (``models show``), and the user's own
checkpoints (``models add`` / ``models remove``)."""

from __future__ import annotations

import click

from mllzoo.cli.common import emit_json, open_registry, registry_exists


def refuse_unknown(option: str, value: str | None, known: set[str]) -> None:
    """An unknown --hub or --family would list nothing and exit 0: one line naming the known ones."""
    if value is not None and value not in known:
        from mllzoo.errors import MllzooError, did_you_mean

        raise MllzooError(
            f"no known model has {option} {value!r}{did_you_mean(value, sorted(known))} "
            f"(known: {', '.join(sorted(known)) or 'none'})"
        )


@click.group(invoke_without_command=True)
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
    rows = _model_rows(ctx)
    refuse_unknown("hub", hub, {h for row in rows.values() for h in row.get("hubs", [])})
    refuse_unknown("family", family, {row["family"] for row in rows.values()})
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
        click.echo(_listing_line(row))


def _model_rows(ctx: click.Context) -> dict[str, dict]:
    """Every model the plugins offer or the user added, and the labeled ones whose plugin is not
    installed, by id; each row says whether it is labeled on the registry's graph and installed."""
    from mllzoo.models.catalog import discover_models
    from mllzoo.models.status import model_status
    from mllzoo.store.user_models import added_models

    mine = added_models()  # read once: a damaged entry is one warning
    catalog = discover_models(mine)
    added = {entry.spec.id for entry in mine}
    registry = open_registry(ctx, create=False) if registry_exists(ctx) else None
    graph_id = registry.current_graph_id() if registry else None
    labeled_ids = registry.labeled_model_ids(graph_id) if registry and graph_id else set()
    rows = {
        model_id: {"id": model_id, "family": e.spec.family, "plugin": e.plugin, **e.spec.metadata()}
        # an added model whose plugin is not loaded here is listed as not installed, not dropped
        for model_id, e in {**{entry.spec.id: entry for entry in mine}, **catalog}.items()
    }
    for row in registry.models() if registry else []:
        rows.setdefault(
            row["id"],
            {"id": row["id"], "family": row["family"], "plugin": row["plugin"], **row["metadata"]},
        )
    for row in rows.values():
        status = model_status(row["id"], row["plugin"], catalog)
        row["labeled"] = row["id"] in labeled_ids
        row["installed"] = status.runs
        row["availability"] = status.text()
        row["added"] = row["id"] in added
    return rows


def _listing_line(row: dict) -> str:
    """``ID  (facts)``: its costs and accuracy where known, labeled or not, installed or not."""
    facts = [
        f"{row['params_m']:.1f}M params" if row.get("params_m") else None,
        f"{row['gflops']:.2f} GFLOPs" if row.get("gflops") else None,
        f"ImageNet {row['imagenet_top1']:.3f}" if row.get("imagenet_top1") else None,
        "labeled" if row["labeled"] else "not labeled",
        "added with `models add`" if row.get("added") else None,
        None if row["installed"] else row["availability"],
    ]
    return f"{row['id']}  ({', '.join(f for f in facts if f)})"


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
        f"{card['availability']})".replace(" ,", ",")
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
    if label.get("origin"):
        click.echo(f"  {'pulled from:':<16}{label['origin']}")
    for title, concepts in (("strongest", card["strongest"]), ("weakest", card["weakest"])):
        click.echo(
            f"  {title} concepts (share of a concept's samples ranked first among all nodes; "
            f"at least {MIN_SAMPLES} samples):"
        )
        for c in concepts:
            click.echo(
                f"    {c['accuracy']:6.1%}  {c['synset']:<28} {c['name']} ({c['samples']} samples)"
            )


@models.command("add")
@click.argument("model_id")
@click.option(
    "--checkpoint",
    required=True,
    metavar="PATH",
    help="The weights: a file (.safetensors, .pt, .bin) or local-dir:FOLDER (a folder in the family's "
    "own layout, e.g. open_clip_config.json and weights).",
)
@click.option(
    "--config",
    metavar="FILE",
    help="The architecture, when the family does not ship it (for open_clip: a model config JSON).",
)
def models_add(model_id: str, checkpoint: str, config: str | None) -> None:
    """Add your own checkpoint as model ID (family/arch.tag: the family picks the plugin), checked
    and measured by that plugin, and kept in your settings for register, predict and recommend.

    \b
    mllzoo models add open_clip/labvit.epoch3 --checkpoint ck.pt --config labvit.json
    mllzoo models add open_clip/ViT-B-32.mine --checkpoint epoch_10.safetensors
    """
    from mllzoo.models.describe import describe_model
    from mllzoo.store.user_models import add_model, known_models

    entry = describe_model(model_id, checkpoint, config, known_models())
    add_model(entry)
    spec = entry.spec
    costs = ", ".join(
        fact
        for fact in (
            f"{spec.params_m:.2f}M params" if spec.params_m is not None else "params unknown",
            f"{spec.gflops:.3f} GFLOPs" if spec.gflops is not None else "GFLOPs unknown",
        )
    )
    click.echo(
        f"added {spec.id} ({costs}; plugin {entry.plugin}): `mllzoo register {spec.id}` labels it"
    )


@models.command("remove")
@click.argument("model_id")
def models_remove(model_id: str) -> None:
    """Forget a model added with `mllzoo models add` (its labels stay in the registry)."""
    from mllzoo.store.user_models import remove_model

    remove_model(model_id)
    click.echo(f"removed {model_id}; labels made with it stay in the registry")
