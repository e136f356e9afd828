"""``mllzoo concepts QUERY``: find the graph's concepts by name, lemma, id, gloss and meaning."""

from __future__ import annotations

import click

from mllzoo.cli.common import emit_json, open_registry
from mllzoo.defaults import CONCEPTS_SHOWN

HOW = {"meaning": ", close in meaning", "spelling": ", spelled alike", "gloss": ", in its gloss"}


@click.command()
@click.argument("query")
@click.option(
    "-n",
    "limit",
    type=click.IntRange(1, 1000),
    default=CONCEPTS_SHOWN,
    show_default=True,
    help="Concepts to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def concepts(ctx: click.Context, query: str, limit: int, as_json: bool) -> None:
    """Search the graph's concepts for a class name: synset, name, gloss and sample count.

    A class line may then name the concept by its synset id (dog.n.01) or wnid to match exactly it.
    """
    from mllzoo.text.concept_search import find_concepts

    rows = find_concepts(open_registry(ctx), query, limit)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['synset']:<28} {row['wnid']}  {row['name']}  ({row['samples']} samples"
            f"{HOW.get(row['matched_by'], '')}): {row['gloss']}"
        )
