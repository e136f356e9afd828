"""Where a class stops matching the graph: the best-node similarity of real names against made-up words.

`recommend` flags a class as weak when the cosine similarity of its best-matching node is below
``mllzoo.selection.recommend.WEAK_MATCH``. This script measures that similarity on the shipped registry (default
captioner and embedder, no domain) for four groups of names:

- graph lemmas: the first lemma of every graph node (the names the graph knows);
- MLL class names, in the graph (named like a node) or not: every class of the 17 MLL benchmark lists
  (benchmarks/data/mll-classnames);
- WordNet lemmas out of the graph: noun lemmas of synsets that are not graph nodes (seeded sample);
- made-up words: seeded pronounceable strings that are no WordNet lemma;

and prints per group the quantiles, the threshold that best separates names in the graph (graph lemmas
and MLL names in the graph) from made-up words (the middle of the thresholds with the largest
true-positive minus false-positive rate), the share of each group it flags, and the AUC.

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/weak_match.py [--sample 600]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path

import numpy as np

from mllzoo.classes import display_name, read_classes
from mllzoo.selection.recommend import WEAK_MATCH, Selector
from mllzoo.store.registry import Registry
from mllzoo.selection.scoring import match_nodes

ROOT = Path(__file__).resolve().parent.parent
ONSETS = [
    "b",
    "br",
    "d",
    "dr",
    "f",
    "fl",
    "g",
    "gr",
    "k",
    "kl",
    "m",
    "n",
    "p",
    "pl",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "z",
]
VOWELS = ["a", "e", "i", "o", "u", "oo", "ee", "ai"]
CODAS = ["", "", "n", "nk", "rt", "sh", "x", "m", "l", "b"]


def made_up_words(count: int, known: set[str], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words: list[str] = []
    while len(words) < count:
        word = "".join(
            rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(rng.randint(2, 3))
        ) + rng.choice(CODAS)
        if word not in known and word not in words:
            words.append(word)
    return words


def best_similarity(selector: Selector, names: list[str]) -> np.ndarray:
    vectors = selector.description_vectors(names, None, None)
    return match_nodes(vectors, selector.node_vectors, 1).similarity[:, 0]


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    both = np.concatenate([positive, negative])
    ranks = np.argsort(np.argsort(both, kind="stable"), kind="stable") + 1.0
    return float(
        (ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2)
        / (len(positive) * len(negative))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=600, help="names per sampled group")
    parser.add_argument("--registry", default=str(ROOT / "registry.db"))
    args = parser.parse_args()
    from nltk.corpus import wordnet as wn

    os.environ["MLLZOO_CACHE_DIR"] = tempfile.mkdtemp(prefix="mllzoo-weak-")
    registry = Registry(args.registry, create=False, write=False)
    selector = Selector(registry)
    rng = random.Random(0)
    in_graph = {node.synset for node in selector.graph.nodes}
    graph_lemmas = sorted({node.name for node in selector.graph.nodes})
    mll = sorted(
        {
            name
            for path in (ROOT / "benchmarks" / "data" / "mll-classnames").glob("*.txt")
            for name in read_classes(path)
        }
    )
    lemmas = {
        lemma.replace("_", " ") for synset in wn.all_synsets("n") for lemma in synset.lemma_names()
    }
    outside = sorted(
        {
            s.lemma_names()[0].replace("_", " ")
            for s in wn.all_synsets("n")
            if s.name() not in in_graph
        }
        - set(graph_lemmas)
    )
    graph_names = {name.lower() for name in graph_lemmas}
    groups = {
        "graph lemmas": rng.sample(graph_lemmas, min(args.sample, len(graph_lemmas))),
        "MLL class names in the graph": [n for n in mll if display_name(n).lower() in graph_names],
        "MLL class names not in the graph": [
            n for n in mll if display_name(n).lower() not in graph_names
        ],
        "WordNet lemmas out of the graph": rng.sample(outside, args.sample),
        "made-up words": made_up_words(args.sample, {lemma.lower() for lemma in lemmas}),
    }
    found = {name: best_similarity(selector, names) for name, names in groups.items()}
    positive = np.concatenate([found["graph lemmas"], found["MLL class names in the graph"]])
    negative = found["made-up words"]
    grid = np.round(np.arange(0.0, 1.0, 0.005), 3)
    j = np.array([(positive >= t).mean() - (negative >= t).mean() for t in grid])
    best = float(np.median(grid[j == j.max()]))  # the middle of the thresholds that separate best
    print(
        f"{'group':<34}{'names':>6}{'p05':>7}{'p25':>7}{'p50':>7}{'p75':>7}{'p95':>7}"
        f"{'flagged at ' + format(best, '.3f'):>18}{'flagged at ' + format(WEAK_MATCH, '.3f'):>18}"
    )
    for name, values in found.items():
        q = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
        print(
            f"{name:<34}{len(values):>6}"
            + "".join(f"{v:>7.3f}" for v in q)
            + f"{(values < best).mean():>18.1%}{(values < WEAK_MATCH).mean():>18.1%}"
        )
    print(
        f"made-up words: highest {negative.max():.3f}; names in the graph: lowest {positive.min():.3f}"
    )
    print(
        f"best separating threshold (names in the graph vs made-up words): {best:.3f}, J = {j.max():.3f} "
        f"(held from {grid[j == j.max()].min():.3f} to {grid[j == j.max()].max():.3f}); "
        f"AUC {auc(positive, negative):.3f}"
    )
    print("examples of made-up words:", ", ".join(groups["made-up words"][:8]))


if __name__ == "__main__":
    main()
