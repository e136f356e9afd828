"""The semantic graph: WordNet noun synsets with sample images, built once and kept in the registry.

Nodes are the synsets named by a sample folder plus all their hypernyms; a hypernym draws its
samples from its descendants' images (at most ``max_per_node``, chosen with a fixed seed).
Only :func:`build_graph` needs WordNet; everything after reads the graph back from the registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mllzoo.defaults import MAX_PER_NODE, SEED
from mllzoo.errors import MllzooError
from mllzoo.graph.samples import IMAGE_SUFFIXES, UnavailableSample, read_regular, sample_hash
from mllzoo.store.registry import Registry

WNID = re.compile(r"^n(\d{8})$")


@dataclass
class Node:
    idx: int
    synset: str
    wnid: str
    name: str
    definition: str
    caption: str
    depth: int
    parents: list[int]


@dataclass
class Graph:
    """Nodes, the unique images, and the (node, image) sample pairs sorted by node."""

    id: str
    nodes: list[Node]
    image_hashes: list[str]
    image_paths: list[str]
    sample_pairs: np.ndarray | None  # int32 [n_samples, 2]: node_idx, image_idx (None: not loaded)
    unknown_folders: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)  # not regular files, or too large

    @property
    def captions(self) -> list[str]:
        return [node.caption for node in self.nodes]

    @property
    def samples(self) -> np.ndarray:
        """The (node, image) pairs, sorted by node; a graph loaded without them (selection) has none to give."""
        if self.sample_pairs is None:
            raise AttributeError(
                "this graph was loaded without its samples (load_graph(samples=True))"
            )
        return self.sample_pairs

    def info(self) -> dict:
        edges = sum(len(node.parents) for node in self.nodes)
        return {
            "id": self.id,
            "nodes": len(self.nodes),
            "edges": edges,
            "images": len(self.image_hashes),
            "samples": int(len(self.samples)),
            "depth": max((n.depth for n in self.nodes), default=0),
            "leaves": len(self.nodes) - len({p for n in self.nodes for p in n.parents}),
        }


def caption(lemma: str, definition: str) -> str:
    return f"{lemma} which is {definition}"


def wordnet():
    """NLTK's WordNet reader, or one line saying how to get the corpus offline."""
    try:
        from nltk.corpus import wordnet as wn

        wn.ensure_loaded()
    except (ImportError, LookupError):
        raise MllzooError(
            "WordNet is not available to NLTK: `make wordnet` (needs apt packages wordnet-base "
            "wordnet-sense-index) or `python -c \"import nltk; nltk.download('wordnet')\"`, "
            "then set NLTK_DATA to that folder"
        ) from None
    return wn


def parse_folder_name(wn, name: str):
    """A synset from ``dog.n.01``, the MLL spelling with ``*`` for ``/``, or a wnid ``n02084071``."""
    from nltk.corpus.reader.wordnet import WordNetError

    try:
        match = WNID.match(name)
        if match:
            return wn.synset_from_pos_and_offset("n", int(match[1]))
        synset = wn.synset(name.replace("*", "/"))
    except (WordNetError, ValueError):
        return None
    return synset if synset.pos() == "n" else None


def build_graph(samples_dir: Path, max_per_node: int = MAX_PER_NODE, seed: int = SEED) -> Graph:
    """Scan a synset-named ImageFolder and propagate samples up the hypernym hierarchy."""
    samples_dir = Path(samples_dir)
    if not samples_dir.is_dir():
        raise MllzooError(f"sample folder not found: {samples_dir}")
    wn = wordnet()
    leaf_images: dict[str, list[tuple[str, str]]] = {}
    unknown, skipped = [], []
    for folder in sorted(p for p in samples_dir.iterdir() if p.is_dir()):
        synset = parse_folder_name(wn, folder.name)
        if synset is None:
            unknown.append(folder.name)
            continue
        images = leaf_images.setdefault(synset.name(), [])
        for file in sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES):
            relative = file.relative_to(samples_dir).as_posix()
            try:
                images.append((sample_hash(read_regular(file)), relative))
            except UnavailableSample:
                skipped.append(relative)
    leaf_images = {name: imgs for name, imgs in leaf_images.items() if imgs}
    if not leaf_images:
        raise MllzooError(
            f"no synset-named folder with images in {samples_dir}"
            + (f" (unknown names: {', '.join(unknown[:5])})" if unknown else "")
        )

    # every node with the set of its own and descendants' images
    pools: dict[str, dict[str, str]] = {}
    for name, imgs in leaf_images.items():
        synset = wn.synset(name)
        for node in {synset, *synset.closure(_hypernyms)}:
            pools.setdefault(node.name(), {}).update(imgs)

    names = sorted(pools, key=lambda n: (wn.synset(n).min_depth(), n))
    index = {name: i for i, name in enumerate(names)}
    image_hashes = sorted({h for pool in pools.values() for h in pool})
    image_index = {h: i for i, h in enumerate(image_hashes)}
    image_paths = [""] * len(image_hashes)
    nodes, pairs = [], []
    for name in names:
        synset = wn.synset(name)
        lemma = synset.lemma_names()[0].replace("_", " ")
        nodes.append(
            Node(
                idx=index[name],
                synset=name,
                wnid=f"n{synset.offset():08d}",
                name=lemma,
                definition=synset.definition(),
                caption=caption(lemma, synset.definition()),
                depth=synset.min_depth(),
                parents=sorted(index[p.name()] for p in _hypernyms(synset) if p.name() in index),
            )
        )
        pool = sorted(pools[name].items())
        chosen = (
            pool
            if len(pool) <= max_per_node
            else random.Random(f"{seed}:{name}").sample(pool, max_per_node)
        )
        for digest, path in chosen:
            image_paths[image_index[digest]] = path
            pairs.append((index[name], image_index[digest]))
    samples = np.array(sorted(pairs), dtype=np.int32).reshape(-1, 2)
    # keep only images some node samples
    used = np.unique(samples[:, 1])
    remap = np.full(len(image_hashes), -1, np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    samples[:, 1] = remap[samples[:, 1]]
    image_hashes = [image_hashes[i] for i in used]
    image_paths = [image_paths[i] for i in used]
    graph_id = content_id(names, image_hashes, samples)
    return Graph(graph_id, nodes, image_hashes, image_paths, samples, unknown, skipped)


def content_id(synsets: list[str], image_hashes: list[str], samples: np.ndarray) -> str:
    """A graph's id: a hash of its nodes' synsets, its images' hashes and its (node, image) samples, so
    a graph read from anywhere can be checked against the id it claims."""
    return hashlib.sha1(json.dumps([synsets, image_hashes, samples.tolist()]).encode()).hexdigest()[
        :12
    ]


def _hypernyms(synset):
    return synset.hypernyms() + synset.instance_hypernyms()


def save_graph(registry: Registry, graph: Graph, source: str) -> None:
    """Store the graph in one transaction and make it the registry's current graph.

    The sample folder is recorded relative to the registry's folder, so a registry copied with its
    samples (a clone, a shipped registry) finds its own copy and names no path of the machine that built it.
    """
    relative = os.path.relpath(Path(source).resolve(), registry.path.resolve().parent)
    registry.save_graph(
        graph.id,
        Path(source).name,
        {"source": Path(relative).as_posix(), **graph.info()},
        ({**node.__dict__, "parents": json.dumps(node.parents)} for node in graph.nodes),
        zip(graph.image_hashes, graph.image_paths),
        graph.samples,
    )


def load_graph(
    registry: Registry, graph_id: str | None = None, images: bool = True, samples: bool = True
) -> Graph:
    """Read a graph back (the current one by default); no WordNet needed.

    Selection needs only the nodes: ``images=False`` leaves the image lists empty and
    ``samples=False`` leaves :attr:`Graph.samples` ``None`` (a paper-scale graph has 675,000 of each).
    """
    graph_id = graph_id or registry.require_graph_id()
    rows = registry.graph_nodes(graph_id)
    parents = json.loads(
        "[" + ",".join(row[-1] for row in rows) + "]"
    )  # one parse, not one per node
    # each row is Node's fields in order, parents last (registry.graph_nodes); mypy cannot see a row's length
    nodes = [Node(*row[:-1], node_parents) for row, node_parents in zip(rows, parents)]  # type: ignore[call-arg]
    image_rows = registry.graph_images(graph_id) if images else []
    return Graph(
        graph_id,
        nodes,
        [h for h, _ in image_rows],
        [p for _, p in image_rows],
        registry.graph_samples(graph_id) if samples else None,
    )


def graph_source(registry: Registry, graph_id: str) -> str | None:
    """The folder the graph was built from, resolved against the registry's folder (older registries
    recorded it absolute)."""
    meta = registry.graph_meta(graph_id)
    source = meta.get("source") if meta else None
    return None if source is None else str(registry.path.parent / source)


def samples_root_for(registry: Registry, graph_id: str, samples: Path | None) -> Path:
    """``--samples`` when given, else the folder the graph was built from."""
    if samples is not None:
        return Path(samples)
    source = graph_source(registry, graph_id)
    if source is None:
        raise MllzooError(
            "the registry does not say where the graph's images are: pass --samples DIR"
        )
    return Path(source)
