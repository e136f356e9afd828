"""``mllzoo concepts QUERY``: the graph's concepts by name, id, gloss and spelling, then by meaning.

Here rather than in :mod:`mllzoo.graph.names` because the search by meaning needs the text embedder.
"""

from __future__ import annotations

from mllzoo.defaults import CONCEPTS_SHOWN
from mllzoo.errors import MllzooError
from mllzoo.graph.concept_graph import Graph, load_graph
from mllzoo.graph.names import SYNSET_ID, WNID, search
from mllzoo.text.embedders import embed, get_embedder, node_vectors


def find_concepts(
    registry, query: str, limit: int = CONCEPTS_SHOWN, graph: Graph | None = None
) -> list[dict]:
    """``mllzoo concepts QUERY``: :func:`search`'s matches by name, lemma, id, gloss or spelling, then
    concepts close in meaning (the embedder's similarity of the query to each node's caption) up to
    ``limit`` (not for an id); each with its synset, wnid, name, gloss, sample count and how it
    matched. ``graph``: the registry's, already loaded with its samples."""
    import numpy as np

    if not query.strip():
        raise MllzooError("give a word to search for, e.g. mllzoo concepts elephant")
    graph = graph or load_graph(registry, images=False)
    samples = np.bincount(graph.samples[:, 0], minlength=len(graph.nodes))
    found = dict(search(graph, query, limit))
    if len(found) < limit and not (SYNSET_ID.match(query.strip()) or WNID.match(query.strip())):
        embedder = get_embedder()
        vectors = node_vectors(registry, embedder, graph)
        wanted = embed(registry, embedder, [query.strip()])[0]
        for n in np.argsort(-(vectors @ wanted), kind="stable").tolist():
            if len(found) >= limit:
                break
            found.setdefault(n, "meaning")
    return [
        {
            "synset": graph.nodes[n].synset,
            "wnid": graph.nodes[n].wnid,
            "name": graph.nodes[n].name,
            "gloss": graph.nodes[n].definition,
            "samples": int(samples[n]),
            "matched_by": how,
        }
        for n, how in found.items()
    ]
