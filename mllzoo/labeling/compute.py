"""The compute side of labeling: load a model and turn chunks of sample images into label parts.

What every executor runs, in this process or on a Ray worker. Workers compute; only the driver
(:mod:`mllzoo.labeling.driver`) writes the registry.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mllzoo import labels
from mllzoo.defaults import DECODE_WORKERS
from mllzoo.graph.concept_graph import Graph
from mllzoo.graph.images import ImageCache
from mllzoo.models.catalog import CatalogEntry
from mllzoo.models.vlm import (
    CaptionFeatures,
    LoadedModel,
    encode_images,
    load_model,
    resolve_device,
)
from mllzoo.plugins import one_line


def default_batch_size(device: str) -> int:
    return 256 if device.startswith("cuda") else 64


@dataclass
class ModelWork:
    """One claimed model and the image ranges (chunks) of its label still to compute."""

    entry: CatalogEntry
    ranges: list[tuple[int, int]]


@dataclass
class PartDone:
    """A computed part as an executor hands it to the driver, with what computing it cost."""

    model_id: str
    start: int
    stop: int
    arrays: dict[str, np.ndarray]
    unavailable: dict[
        int, str
    ]  # images of the range not seen, and why (missing, different, undecodable)
    dim: int
    device: str
    image_decodes: int
    caption_encodings: int


@dataclass
class ModelFailed:
    model_id: str
    message: str


Event = PartDone | ModelFailed


class Executor(Protocol):
    """Computes the parts of claimed models; the driver (:func:`label_models`) stores and publishes.

    ``run`` may consume ``works`` lazily (each model is claimed as it is drawn), and yields events in
    any order; it must not write to the registry.
    """

    def run(
        self,
        works: Iterable[ModelWork],
        graph: Graph,
        samples_root: Path,
        device: str,
        batch_size: int | None,
        depth: int | None,
    ) -> Generator[Event, None, None]: ...


class LocalExecutor:
    """Labels in this process, one model after another, sharing decoded images and caption embeddings;
    with ``decode_workers`` processes decoding the next chunk's images while the model encodes."""

    def __init__(self, cache_bytes: int = 2 * 1024**3, decode_workers: int = DECODE_WORKERS):
        self.cache_bytes = cache_bytes
        self.decode_workers = decode_workers

    def run(
        self,
        works: Iterable[ModelWork],
        graph: Graph,
        samples_root: Path,
        device: str,
        batch_size: int | None,
        depth: int | None,
    ) -> Generator[Event, None, None]:
        from mllzoo.graph.decode_pool import DecodePool

        device = resolve_device(device)
        batch_size = batch_size or default_batch_size(device)
        with DecodePool(self.decode_workers) as pool:
            cache = ImageCache(
                Path(samples_root),
                graph.image_paths,
                self.cache_bytes,
                graph.image_hashes,
                pool=pool if self.decode_workers else None,
            )
            captions = CaptionFeatures(graph.captions)
            for work in works:
                yield from compute_parts(work, graph, cache, captions, device, batch_size, depth)


def compute_parts(
    work: ModelWork,
    graph: Graph,
    cache: ImageCache,
    captions: CaptionFeatures,
    device: str,
    batch_size: int,
    depth: int | None,
) -> Iterator[Event]:
    """Load the model through the plugin hooks and compute its parts for ``work.ranges``, in order.

    What every executor runs, locally or on a Ray worker; a failure ends the model with
    :class:`ModelFailed` (KeyboardInterrupt passes through).
    """
    model_id = work.entry.spec.id
    try:
        model = load_model(work.entry.spec, device, plugin=work.entry.plugin)
        decodes, encodings = cache.decodes, captions.encodings
        text = captions.of(model)
        for n, (start, stop) in enumerate(work.ranges):
            ahead = work.ranges[n + 1] if n + 1 < len(work.ranges) else None
            arrays = compute_part(model, text, graph, cache, start, stop, depth, batch_size, ahead)
            unavailable = {i: cache.status[i] for i in range(start, stop) if i in cache.status}
            yield PartDone(
                model_id,
                start,
                stop,
                arrays,
                unavailable,
                int(text.shape[1]),
                model.device,
                cache.decodes - decodes,
                captions.encodings - encodings,
            )
            decodes, encodings = cache.decodes, captions.encodings
    except Exception as exc:  # one failing model must not stop the others
        yield ModelFailed(model_id, one_line(exc))


def compute_part(
    model: LoadedModel,
    text: np.ndarray,
    graph: Graph,
    cache: ImageCache,
    start: int,
    stop: int,
    depth: int | None,
    batch_size: int,
    ahead: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """The label part of images ``[start, stop)``: encode the readable ones and rank the nodes; the
    decoding workers, if any, start on the ``ahead`` range meanwhile."""
    tensor, ok = cache.chunk(model.preprocess_key, model.preprocess, start, stop)
    if ahead is not None:
        cache.prefetch(model.preprocess_key, model.preprocess, *ahead)
    features = [
        encode_images(model, tensor[s : s + batch_size]) for s in range(0, len(ok), batch_size)
    ]
    similarity = (
        np.concatenate(features) @ text.T if ok else np.zeros((0, len(graph.nodes)), np.float32)
    )
    return chunk_label(graph, similarity, np.asarray(ok, np.int64), start, stop, depth)


def chunk_label(
    graph: Graph, similarity: np.ndarray, ok: np.ndarray, start: int, stop: int, depth: int | None
) -> dict[str, np.ndarray]:
    """The chunk's readable images' node lists, cut at ``depth`` (or fitted to the budget), and the
    own-node ranks of their samples."""
    n_nodes = len(graph.nodes)
    row_of = np.full(stop - start, -1, np.int64)
    row_of[ok - start] = np.arange(len(ok))
    in_chunk = np.flatnonzero((graph.samples[:, 1] >= start) & (graph.samples[:, 1] < stop))
    rows = row_of[graph.samples[in_chunk, 1] - start]
    readable = rows >= 0
    ranks = np.full(len(in_chunk), -1, np.int32)
    ranks[readable] = labels.own_ranks(
        similarity, graph.samples[in_chunk[readable], 0], rows[readable]
    )
    need = labels.image_needs(len(ok), np.where(readable, rows, 0), ranks)
    cut = depth or labels.budget_depth(need, n_nodes)
    lists, lengths = labels.cut_lists(labels.rank_images(similarity, cut), need, n_nodes)
    return {
        "image_idx": ok.astype(np.int32),
        "lists": lists,
        "lengths": lengths,
        "sample_idx": in_chunk.astype(np.int32),
        "rank": ranks,
    }
