"""Text embedders for selection, and the registry cache that makes each text cost one embedding.

An embedder is any object with an ``id`` and ``embed(texts) -> float32 [n, dim]`` (L2-normalised);
plugins add them through the ``mllzoo_register_embedders`` hook.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np

from mllzoo.cancellation import checkpoint
from mllzoo.errors import MllzooError, PluginError, warn
from mllzoo.plugins import call_each
from mllzoo.store.blobs import DamagedBlob
from mllzoo.store.usercache import EmbeddingCache

EMBED_BATCH = 1024  # the most texts one embed call gets: a long class list is cached as it goes, and can be stopped


class Embedder(Protocol):
    """``remote = True`` (optional attribute) marks a paid API: all its answers are cached.

    ``check_ready()`` (optional method) raises one :class:`MllzooError` line when the embedder is chosen
    but cannot run here (no key, a missing package).
    """

    id: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


_owners: dict[str, str] = {}  # embedder id -> the plugin that offered it


def embedders() -> dict[str, Embedder]:
    """Every embedder the plugins offer, by id; a plugin that fails to offer its own is one warning."""
    found: dict[str, Embedder] = {}

    def offer(plugin: str, embedder: Embedder) -> None:
        if embedder.id not in found:
            found[embedder.id] = embedder
            _owners[embedder.id] = plugin

    call_each(
        "mllzoo_register_embedders",
        "register embedders",
        lambda plugin: {"register": lambda embedder: offer(plugin, embedder)},
    )
    return found


def checked_embed(embedder: Embedder, texts: list[str], dim: int | None = None) -> np.ndarray:
    """``embedder.embed(texts)`` checked like an encode answer (:func:`mllzoo.models.vlm.checked_features`: a
    float numpy ``[len(texts), dim]``, finite, nonzero; L2-normalised float32). An embedder that raises
    (``sys.exit`` included) or answers wrongly is one :class:`PluginError` line naming its plugin."""
    from mllzoo.models.vlm import checked_features
    from mllzoo.plugins import isolated, mark_failed, one_line

    plugin = _owners.get(embedder.id, "(unknown)")
    answer, exc = isolated(embedder.embed, texts)
    if isinstance(
        exc, MllzooError
    ):  # the embedder's own one-line error (no key, a missing package)
        raise exc
    if exc is not None:
        mark_failed(plugin, f"embedder {embedder.id} failed: {one_line(exc)}")
        raise PluginError(
            f"plugin {plugin}: embedder {embedder.id} failed: {one_line(exc)}"
        ) from None
    try:
        if not texts and isinstance(answer, np.ndarray) and answer.ndim == 2 and not len(answer):
            return answer.astype(np.float32)
        return checked_features(answer, len(texts), "text", dim)
    except ValueError as exc:
        raise PluginError(
            f"plugin {plugin}: embedder {embedder.id} {exc}; nothing of it was cached"
        ) from None


def _usable(vector: np.ndarray, dim: int | None) -> bool:
    """A cached vector worth reusing: one finite row of the expected width (anything else is a miss)."""
    return (
        vector.ndim == 1 and bool(np.isfinite(vector).all()) and (dim is None or len(vector) == dim)
    )


def get_embedder(embedder_id: str | None = None) -> Embedder:
    """The embedder named, else the ``embedder`` setting (``mllzoo config``, default ``minilm``)."""
    from mllzoo.store.config import setting

    available = embedders()
    embedder_id = embedder_id or setting("embedder")
    if embedder_id not in available:
        raise MllzooError(
            f"unknown embedder {embedder_id!r}; available: {', '.join(sorted(available))}"
        )
    embedder = available[embedder_id]
    if hasattr(embedder, "check_ready"):
        embedder.check_ready()
    return embedder


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embed_cached(
    registry, embedder: Embedder, texts: list[str], dim: int | None = None
) -> np.ndarray:
    """Embed ``texts``, reading and filling the registry's cache for this embedder."""
    hashes = [text_hash(t) for t in texts]
    cached = {
        h: v
        for h, v in registry.cached_embeddings(embedder.id, sorted(set(hashes))).items()
        if _usable(v, dim)
    }
    missing = {h: t for h, t in zip(hashes, texts) if h not in cached}
    if missing:
        dim = dim or next((len(v) for v in cached.values()), None)
        vectors = checked_embed(embedder, list(missing.values()), dim)
        new = list(zip(missing.keys(), missing.values(), vectors))
        registry.cache_embeddings(embedder.id, new)
        cached.update({h: v for h, _, v in new})
    if not texts:
        return np.zeros((0, 0), np.float32)
    return np.stack([cached[h] for h in hashes]).astype(np.float32)


def embed(
    registry,
    embedder: Embedder,
    texts: list[str],
    cache: EmbeddingCache | None = None,
    known: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Embed ``texts``: a paid API's answers are all kept in the registry; a local embedder's are cheap to redo.

    ``known`` vectors (the graph's captions, already in the registry) and the user's ``cache`` are
    read first; what the embedder computes goes into the cache.
    """
    remote = getattr(embedder, "remote", False)
    if not texts:
        return np.zeros((0, 0), np.float32) if remote else checked_embed(embedder, [])
    dim = next((len(vector) for vector in (known or {}).values()), None)  # the captions' width
    found = _already_embedded(embedder, texts, cache, known or {}, dim)
    missing = list(dict.fromkeys(text for text in texts if text not in found))
    dim = dim or next((len(vector) for vector in found.values()), None)
    for start in range(0, len(missing), EMBED_BATCH):  # kept as it goes; a stop loses one batch
        checkpoint()
        batch = missing[start : start + EMBED_BATCH]
        vectors = (
            embed_cached(registry, embedder, batch, dim)
            if remote
            else checked_embed(embedder, batch, dim)
        )
        dim = dim or vectors.shape[1]
        if cache is not None:
            cache.put(embedder.id, batch, vectors)
        found.update(zip(batch, vectors))
    return np.stack([found[text] for text in texts]).astype(np.float32)


def _already_embedded(
    embedder: Embedder,
    texts: list[str],
    cache: EmbeddingCache | None,
    known: dict[str, np.ndarray],
    dim: int | None,
) -> dict[str, np.ndarray]:
    """The vectors of ``texts`` that ``known`` or the user's cache hold; none when they disagree in
    width (a cache from another embedder version)."""
    found = {text: known[text] for text in texts if text in known}
    if cache is not None:
        rest = [text for text in texts if text not in found]
        cached = cache.get(embedder.id, rest).items()
        found.update({text: vector for text, vector in cached if _usable(vector, dim)})
    return found if len({vector.shape for vector in found.values()}) <= 1 else {}


def node_vectors(registry, embedder: Embedder, graph) -> np.ndarray:
    """The graph's caption embeddings ``[nodes, dim]``, computed once per (graph, embedder) and kept whole.

    They are a cache of the captions, so a damaged matrix is recomputed (and replaced when the
    registry can be written) with one warning.
    """
    try:
        vectors = registry.node_embeddings(graph.id, embedder.id)
    except DamagedBlob as exc:
        kept = (
            "recomputing and replacing them"
            if registry.writable
            else "recomputing them (not kept: read-only)"
        )
        warn(
            f"the {embedder.id} caption embeddings of graph {graph.id} in {registry.path} are damaged "
            f"({exc}); {kept}"
        )
        vectors = None
    if vectors is not None and (
        vectors.ndim != 2 or len(vectors) != len(graph.captions) or not np.isfinite(vectors).all()
    ):
        warn(
            f"the {embedder.id} caption embeddings of graph {graph.id} in {registry.path} do not fit "
            f"its {len(graph.captions)} captions or are not finite; recomputing them"
        )
        vectors = None
    if vectors is None:
        vectors = embed(registry, embedder, graph.captions)
        registry.save_node_embeddings(graph.id, embedder.id, vectors)
    return vectors
