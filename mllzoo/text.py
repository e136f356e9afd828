"""Text embedders for selection, and the registry cache that makes each text cost one embedding.

An embedder is any object with an ``id`` and ``embed(texts) -> float32 [n, dim]`` (L2-normalised);
plugins add them through the ``mllzoo_register_embedders`` hook.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np

from .blobs import DamagedBlob
from .errors import MllzooError, warn
from .plugins import call_each
from .usercache import EmbeddingCache


class Embedder(Protocol):
    """``remote = True`` (optional attribute) marks a paid API: all its answers are cached.

    ``check_ready()`` (optional method) raises one :class:`MllzooError` line when the embedder is chosen
    but cannot run here (no key, a missing package).
    """

    id: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def embedders() -> dict[str, Embedder]:
    """Every embedder the plugins offer, by id; a plugin that fails to offer its own is one warning."""
    found: dict[str, Embedder] = {}
    call_each("mllzoo_register_embedders", "register embedders",
              lambda plugin: {"register": lambda embedder: found.setdefault(embedder.id, embedder)})
    return found


def get_embedder(embedder_id: str | None = None) -> Embedder:
    """The embedder named, else the ``embedder`` setting (``mllzoo config``, default ``minilm``)."""
    from .config import setting

    available = embedders()
    embedder_id = embedder_id or setting("embedder")
    if embedder_id not in available:
        raise MllzooError(f"unknown embedder {embedder_id!r}; available: {', '.join(sorted(available))}")
    embedder = available[embedder_id]
    if hasattr(embedder, "check_ready"):
        embedder.check_ready()
    return embedder


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embed_cached(registry, embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Embed ``texts``, reading and filling the registry's cache for this embedder."""
    hashes = [text_hash(t) for t in texts]
    cached = registry.cached_embeddings(embedder.id, sorted(set(hashes)))
    missing = {h: t for h, t in zip(hashes, texts) if h not in cached}
    if missing:
        vectors = embedder.embed(list(missing.values()))
        new = list(zip(missing.keys(), missing.values(), vectors))
        registry.cache_embeddings(embedder.id, new)
        cached.update({h: v for h, _, v in new})
    if not texts:
        return np.zeros((0, 0), np.float32)
    return np.stack([cached[h] for h in hashes]).astype(np.float32)


def embed(registry, embedder: Embedder, texts: list[str], cache: EmbeddingCache | None = None,
          known: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Embed ``texts``: a paid API's answers are all kept in the registry; a local embedder's are cheap to redo.

    ``known`` vectors (the graph's captions, already in the registry) and the user's ``cache`` are
    read first; what the embedder computes goes into the cache.
    """
    found = {text: known[text] for text in texts if known and text in known}
    if cache is not None:
        found.update(cache.get(embedder.id, [text for text in texts if text not in found]))
    if len({vector.shape for vector in found.values()}) > 1:  # a cache from another embedder version
        found = {}
    missing = list(dict.fromkeys(text for text in texts if text not in found))
    if missing:
        remote = getattr(embedder, "remote", False)
        vectors = embed_cached(registry, embedder, missing) if remote else embedder.embed(missing)
        if cache is not None:
            cache.put(embedder.id, missing, vectors)
        found.update(zip(missing, vectors))
    if not texts:
        return np.zeros((0, 0), np.float32) if getattr(embedder, "remote", False) else embedder.embed([])
    return np.stack([found[text] for text in texts]).astype(np.float32)


def node_vectors(registry, embedder: Embedder, graph) -> np.ndarray:
    """The graph's caption embeddings ``[nodes, dim]``, computed once per (graph, embedder) and kept whole.

    They are a cache of the captions, so a damaged matrix is recomputed (and replaced when the
    registry can be written) with one warning.
    """
    try:
        vectors = registry.node_embeddings(graph.id, embedder.id)
    except DamagedBlob as exc:
        kept = "recomputing and replacing them" if registry.writable else "recomputing them (not kept: read-only)"
        warn(f"the {embedder.id} caption embeddings of graph {graph.id} in {registry.path} are damaged "
             f"({exc}); {kept}")
        vectors = None
    if vectors is None:
        vectors = embed(registry, embedder, graph.captions)
        registry.save_node_embeddings(graph.id, embedder.id, vectors)
    return vectors
