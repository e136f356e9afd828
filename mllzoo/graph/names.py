"""Finding a graph concept by what a person types: an exact id, a near spelling, or a search.

Only what the registry stores is used (names, synset ids, wnids, glosses): no WordNet, so the light
install answers too. A synset id's head word (``ice_bear`` in ``ice_bear.n.01``) stands in for the
concept's lemma.
"""

from __future__ import annotations

import difflib
import heapq
import re

import numpy as np

from mllzoo.graph.concept_graph import Graph

SYNSET_ID = re.compile(r"^[^\s.]+(\.[^\s.]+)*\.[nvasr]\.\d{2}$")
WNID = re.compile(r"^n\d{8}$")
SUGGESTIONS = 3  # spelling suggestions shown per weak class
SPELLING_CUTOFF = 0.75  # difflib ratio below which a concept name is no longer a likely spelling


def lemma(synset: str) -> str:
    """The head word of a synset id, as a person writes it: ``ice_bear.n.01`` -> ``ice bear``."""
    return synset.rsplit(".", 2)[0].replace("_", " ")


def exact_node(graph: Graph, text: str) -> int | None:
    """The node a class line names by its synset id (``dog.n.01``) or wnid (``n02084071``), if any."""
    text = text.strip()
    if not (SYNSET_ID.match(text) or WNID.match(text)):
        return None
    for node in graph.nodes:
        if text in (node.synset, node.wnid):
            return node.idx
    return None


def exact_nodes(graph: Graph, classes: list[str]) -> dict[int, int]:
    """Class index -> node, for the class lines that name a concept by its id."""
    found = {y: exact_node(graph, name) for y, name in enumerate(classes)}
    return {y: n for y, n in found.items() if n is not None}


def folder_aliases(graph: Graph, classes: list[str]) -> dict[str, str]:
    """Folder names (lowercase) that stand for a class besides its own: the wnid and synset id of
    the concept it names by id, or of each concept named like it (``n02084071`` for ``dog``)."""
    by_name: dict[str, list[int]] = {}
    for node in graph.nodes:
        by_name.setdefault(node.name.lower(), []).append(node.idx)
    aliases: dict[str, str] = {}
    for name in classes:
        exact = exact_node(graph, name)
        nodes = [exact] if exact is not None else by_name.get(" ".join(name.lower().split()), [])
        for n in nodes:
            for key in (graph.nodes[n].wnid, graph.nodes[n].synset):
                aliases.setdefault(key.lower(), name)
    return aliases


def concept_names(nodes: list[dict]) -> list[str]:
    """Readable concept names, with the synset id where a name would repeat (``mouse.n.01``, ``mouse.n.04``)."""
    names = [node["name"] for node in nodes]
    return [node["synset"] if names.count(node["name"]) > 1 else node["name"] for node in nodes]


class SpellingIndex:
    """Concept names and lemmas spelled like a text (``elefant`` -> ``elephant``), for many texts.

    Exactly :func:`difflib.get_close_matches` over the graph's names, made fast for thousands of
    classes (a 5,000-class list spent minutes here): the letter-count bound difflib checks one name
    at a time (``quick_ratio``) is computed for every name at once, and only the names within it are
    compared in full.
    """

    def __init__(self, graph: Graph):
        self.names: dict[str, str] = {}  # a spelling, lowercase -> the concept name it stands for
        for node in graph.nodes:
            for word in (node.name, lemma(node.synset)):
                self.names.setdefault(word.lower(), node.name)
        self.words = list(self.names)
        self.column = {c: i for i, c in enumerate(sorted({c for w in self.words for c in w}))}
        self.counts = np.zeros((len(self.words), len(self.column)), np.int32)
        for row, word in enumerate(self.words):
            for c in word:
                self.counts[row, self.column[c]] += 1
        self.lengths = np.array([len(w) for w in self.words], np.float64)

    def suggest(self, text: str, n: int = SUGGESTIONS) -> list[str]:
        """Concept names spelled like ``text``, closest first; a name that is ``text`` itself is no
        suggestion."""
        wanted = text.strip().lower()
        letters = np.zeros(len(self.column), np.int32)
        for c in wanted:
            if c in self.column:
                letters[self.column[c]] += 1
        shared = np.minimum(self.counts, letters).sum(axis=1)
        bound = 2.0 * shared / (self.lengths + len(wanted))  # difflib's quick_ratio, every name
        matcher = difflib.SequenceMatcher()
        matcher.set_seq2(wanted)
        scored = []
        for row in np.flatnonzero(bound >= SPELLING_CUTOFF):
            matcher.set_seq1(self.words[row])
            if matcher.ratio() >= SPELLING_CUTOFF:
                scored.append((matcher.ratio(), self.words[row]))
        close = [word for _, word in heapq.nlargest(n + 1, scored)]
        return list(dict.fromkeys(self.names[w] for w in close if w != wanted))[:n]


def search(graph: Graph, query: str, limit: int) -> list[tuple[int, str]]:
    """Nodes whose name, lemma, synset id or wnid is ``query`` (``"name"``), then those whose name or
    lemma contains it (``"name"``), whose gloss does (``"gloss"``), else near spellings
    (``"spelling"``); best first, at most ``limit``, each with how it matched."""
    wanted = query.strip().lower()
    if not wanted:
        return []
    tiers: list[list[int]] = [[], [], []]
    for node in graph.nodes:
        keys = (node.name.lower(), lemma(node.synset).lower(), node.synset.lower(), node.wnid)
        if wanted in keys:
            tiers[0].append(node.idx)
        elif any(wanted in key for key in keys[:2]):
            tiers[1].append(node.idx)
        elif wanted in node.definition.lower():
            tiers[2].append(node.idx)
    tiers[1].sort(key=lambda n: (len(graph.nodes[n].name), graph.nodes[n].name))
    found = [(n, how) for tier, how in zip(tiers, ("name", "name", "gloss")) for n in tier]
    if not found:
        by_name = {node.name: node.idx for node in graph.nodes}
        found = [
            (by_name[name], "spelling") for name in SpellingIndex(graph).suggest(wanted, limit)
        ]
    return found[:limit]
