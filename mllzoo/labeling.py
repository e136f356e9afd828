"""Labeling: run each model once over the graph's captions and sample images, store its label.

Work is saved in chunks of images (``label_parts``) so an interrupted run resumes where it
stopped; each chunk cuts its images' node lists as deep as the label budget allows
(:func:`labels.budget_depth`). A saved part carries its identity (:func:`part_identity`: model,
graph, chunk bounds, depth setting, format and sizes), and only a part whose identity fits the
current run is reused: any other is redone, never concatenated. The finished label is validated
(:func:`labels.validate`) and published in one transaction. A claim per (model, graph) keeps two
processes from labeling the same model; a model that fails (to load, to encode, or validation) is
reported and skipped. No label is made from images it did not see: before any model runs, the sample
folder is checked against the graph's image hashes (:mod:`.samples`), every file is checked again as
it is read, and a label whose missing and different images exceed the tolerance is never published.

The unit of work is three calls, so any executor can run the chunks: :func:`compute_part` (a
model and an image range to the part's arrays), :func:`store_part` and :func:`publish`
(assemble, validate, save).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import labels
from .catalog import CatalogEntry
from .defaults import CHUNK
from .errors import InvalidLabel, MllzooError
from .graph import Graph
from .images import UNDECODABLE, ImageCache
from .registry import Registry
from .samples import DEFAULT_ALLOW_MISSING, DIFFERENT, MISSING, check_samples, refuse_beyond_tolerance
from .vlm import LoadedModel, encode_images, encode_texts, load_model, resolve_device


class CaptionFeatures:
    """Node caption embeddings per text tower: models sharing a ``text_key`` encode them once."""

    def __init__(self, captions: list[str]):
        self.captions = captions
        self.by_key: dict[str, np.ndarray] = {}
        self.encodings = 0

    def of(self, model) -> np.ndarray:
        if model.text_key in self.by_key:
            return self.by_key[model.text_key]
        text = encode_texts(model, self.captions)  # the core batches the hook calls
        self.encodings += 1
        if model.text_key:
            self.by_key[model.text_key] = text
        return text


@dataclass
class LabelingReport:
    labeled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    missing_images: int = 0  # absent, not a regular file, or outside the sample folder
    different_images: int = 0  # not the bytes the graph was built from
    undecodable_images: int = 0  # the graph's bytes, but not an image Pillow decodes
    image_decodes: int = 0
    caption_encodings: int = 0
    images_encoded: int = 0
    seconds: float = 0.0


def default_batch_size(device: str) -> int:
    return 256 if device.startswith("cuda") else 64


def label_models(registry: Registry, graph: Graph, samples_root: Path, entries: list[CatalogEntry],
                 device: str = "auto", batch_size: int | None = None, depth: int | None = None,
                 chunk: int = CHUNK, progress: bool | None = None,
                 cache_bytes: int = 2 * 1024**3, allow_missing: float = DEFAULT_ALLOW_MISSING) -> LabelingReport:
    """Label every entry not yet labeled on ``graph``; the rest are left untouched.

    ``depth`` caps every image's node list; ``None`` fits each chunk's lists to the label budget
    (:func:`labels.budget_depth`). ``cache_bytes`` bounds the preprocessed images kept for the
    next model with the same transform. More than ``allow_missing`` (a share of the graph's images)
    missing or different refuses every model before any runs, with one line.
    """
    report = LabelingReport()
    registry.record_models(entries)
    done = registry.labeled_model_ids(graph.id)
    todo = [e for e in entries if e.spec.id not in done]
    report.skipped = [e.spec.id for e in entries if e.spec.id in done]
    if not todo:
        return report
    if not Path(samples_root).is_dir():
        raise MllzooError(f"sample images of graph {graph.id} not found at {samples_root}: pass --samples DIR")
    check = check_samples(graph.id, graph.image_hashes, graph.image_paths, Path(samples_root))
    refuse_beyond_tolerance(len(check.missing), len(check.different), check.images, allow_missing, check.folder)
    device = resolve_device(device)
    batch_size = batch_size or default_batch_size(device)
    cache = ImageCache(Path(samples_root), graph.image_paths, cache_bytes, graph.image_hashes, check.unavailable())
    captions = CaptionFeatures(graph.captions)
    started = time.perf_counter()
    for entry in todo:
        model_id = entry.spec.id
        if not registry.claim(model_id, graph.id):
            report.busy.append(model_id)
            continue
        if model_id in registry.labeled_model_ids(graph.id):  # finished by another process meanwhile
            registry.release(model_id, graph.id)
            report.skipped.append(model_id)
            continue
        run_id = registry.start_run("register", {"model": model_id, "graph": graph.id})
        try:
            encoded = _label_one(registry, graph, cache, captions, entry, device, batch_size, depth, chunk, progress,
                                 allow_missing)
        except KeyboardInterrupt:
            registry.finish_run(run_id, "interrupted", {"model": model_id})
            raise
        except Exception as exc:  # one failing model must not stop the others
            message = str(exc) if isinstance(exc, MllzooError) else f"{type(exc).__name__}: {exc}"
            report.failed[model_id] = message
            registry.finish_run(run_id, "failed", {"model": model_id, "error": message})
            print(f"Warning: {model_id} was not labeled: {message}", file=sys.stderr)
        else:
            report.labeled.append(model_id)
            report.images_encoded += encoded
            registry.finish_run(run_id, "done", {"model": model_id, "images": encoded})
        finally:
            registry.release(model_id, graph.id)
    report.missing_images, report.different_images = cache.count(MISSING), cache.count(DIFFERENT)
    report.undecodable_images = cache.count(UNDECODABLE)
    report.image_decodes = cache.decodes
    report.caption_encodings = captions.encodings
    report.seconds = time.perf_counter() - started
    return report


def _label_one(registry: Registry, graph: Graph, cache: ImageCache, captions: "CaptionFeatures", entry: CatalogEntry, device: str,
               batch_size: int, depth: int | None, chunk: int, progress: bool | None, allow_missing: float) -> int:
    from tqdm import tqdm

    model = load_model(entry.spec, device, plugin=entry.plugin)
    text = captions.of(model)
    n_images = len(graph.image_paths)
    parts = saved_parts(registry, entry, graph, depth, chunk)
    encoded = 0
    bar = tqdm(total=n_images, initial=sum(len(p["image_idx"]) for p in parts.values()), unit="img",
               desc=entry.spec.id, disable=None if progress is None else not progress, file=sys.stderr)
    for start, stop in chunk_bounds(n_images, chunk):
        if start in parts:
            continue
        parts[start] = compute_part(model, text, graph, cache, start, stop, depth, batch_size)
        store_part(registry, entry, graph, start, stop, depth, parts[start])
        encoded += len(parts[start]["image_idx"])
        bar.update(stop - start)
    bar.close()
    coverage = sample_coverage(cache, parts, n_images)
    refuse_beyond_tolerance(coverage["missing"], coverage["different"], n_images, allow_missing, str(cache.root))
    if not coverage["seen"]:
        raise MllzooError(f"none of the {n_images} sample images in {cache.root} was seen ({coverage['missing']} "
                          f"missing, {coverage['different']} different, {coverage['undecodable']} undecodable)")
    publish(registry, entry, graph, parts, depth, {"coverage": coverage,
                                                   "dim": int(text.shape[1]), "device": device})
    return encoded


def chunk_bounds(n_images: int, chunk: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of every chunk of ``chunk`` images, in image order."""
    return [(start, min(start + chunk, n_images)) for start in range(0, n_images, chunk)]


def part_identity(entry: CatalogEntry, graph: Graph, start: int, stop: int, depth: int | None) -> np.ndarray:
    """Everything that shapes a saved part, as canonical JSON bytes stored beside its arrays: a part
    is reused only when its identity equals the current run's for the same chunk."""
    identity = {"model": entry.spec.id, "plugin": entry.plugin, "plugin_version": entry.plugin_version,
                "graph": graph.id, "format": labels.FORMAT, "start": start, "stop": stop,
                "depth": depth or "auto", "budget_bytes": labels.BUDGET_BYTES,
                "n_images": len(graph.image_paths), "n_samples": len(graph.samples), "n_nodes": len(graph.nodes)}
    return np.frombuffer(json.dumps(identity, sort_keys=True).encode(), np.uint8)


def saved_parts(registry: Registry, entry: CatalogEntry, graph: Graph, depth: int | None,
                chunk: int) -> dict[int, dict[str, np.ndarray]]:
    """The saved parts that fit this run's chunks, by start; parts saved with another chunk size,
    depth, graph, format or plugin version are left out (and so redone)."""
    saved = registry.label_parts(entry.spec.id, graph.id)
    fitting = {}
    for start, stop in chunk_bounds(len(graph.image_paths), chunk):
        part = saved.get(start)
        if part is not None and np.array_equal(part.get("identity"), part_identity(entry, graph, start, stop, depth)):
            fitting[start] = part
    return fitting


def compute_part(model: LoadedModel, text: np.ndarray, graph: Graph, cache: ImageCache, start: int, stop: int,
                 depth: int | None, batch_size: int) -> dict[str, np.ndarray]:
    """The label part of images ``[start, stop)``: encode the readable ones and rank the nodes."""
    tensor, ok = cache.chunk(model.preprocess_key, model.preprocess, start, stop)
    features = [encode_images(model, tensor[s:s + batch_size]) for s in range(0, len(ok), batch_size)]
    similarity = np.concatenate(features) @ text.T if ok else np.zeros((0, len(graph.nodes)), np.float32)
    return _chunk_label(graph, similarity, np.asarray(ok, np.int64), start, stop, depth)


def store_part(registry: Registry, entry: CatalogEntry, graph: Graph, start: int, stop: int, depth: int | None,
               part: dict[str, np.ndarray]) -> None:
    """Save a computed part with its identity, so a resumed run can tell whether it still fits."""
    registry.save_label_part(entry.spec.id, graph.id, start,
                             {**part, "identity": part_identity(entry, graph, start, stop, depth)})


def publish(registry: Registry, entry: CatalogEntry, graph: Graph, parts: dict[int, dict[str, np.ndarray]],
            depth: int | None, meta: dict) -> labels.Label:
    """Assemble the parts, validate the label against the graph and publish it. A label that fails
    validation is not published and its parts are dropped, so the next run computes them again."""
    try:
        label = _assemble(graph, parts)
        labels.validate(label, len(graph.image_paths), graph.samples, len(graph.nodes))
    except (InvalidLabel, IndexError, ValueError) as exc:  # parts that do not fit together are invalid too
        registry.drop_label_parts(entry.spec.id, graph.id)
        raise InvalidLabel(f"{entry.spec.id}: {exc}; not published, its saved work dropped") from None
    meta = {"n_nodes": len(graph.nodes), "depth": depth or "auto", "max_length": int(label.lengths.max(initial=0)),
            "n_images": len(graph.image_paths), "n_samples": int(len(graph.samples)), "bytes": label.nbytes,
            "plugin": entry.plugin, "plugin_version": entry.plugin_version, **meta}
    registry.save_label(entry.spec.id, graph.id, labels.FORMAT, label.arrays(), meta)
    return label


def sample_coverage(cache: ImageCache, parts: dict[int, dict[str, np.ndarray]], n_images: int) -> dict[str, int]:
    """Images the label saw, and why the others were not seen (as known when it is published).

    An image of a part saved by an earlier run that this run found present and unchanged was
    skipped then for failing to decode.
    """
    seen = np.zeros(n_images, bool)
    for part in parts.values():
        seen[part["image_idx"]] = True
    unseen = [cache.status.get(i, UNDECODABLE) for i in np.flatnonzero(~seen)]
    return {"images": n_images, "seen": int(seen.sum()), "missing": unseen.count(MISSING),
            "different": unseen.count(DIFFERENT), "undecodable": unseen.count(UNDECODABLE)}


def _chunk_label(graph: Graph, similarity: np.ndarray, ok: np.ndarray, start: int, stop: int,
                 depth: int | None) -> dict[str, np.ndarray]:
    """The chunk's readable images' node lists, cut at ``depth`` (or fitted to the budget), and the
    own-node ranks of their samples."""
    n_nodes = len(graph.nodes)
    row_of = np.full(stop - start, -1, np.int64)
    row_of[ok - start] = np.arange(len(ok))
    in_chunk = np.flatnonzero((graph.samples[:, 1] >= start) & (graph.samples[:, 1] < stop))
    rows = row_of[graph.samples[in_chunk, 1] - start]
    readable = rows >= 0
    ranks = np.full(len(in_chunk), -1, np.int32)
    ranks[readable] = labels.own_ranks(similarity, graph.samples[in_chunk[readable], 0], rows[readable])
    need = labels.image_needs(len(ok), np.where(readable, rows, 0), ranks)
    cut = depth or labels.budget_depth(need, n_nodes)
    lists, lengths = labels.cut_lists(labels.rank_images(similarity, cut), need, n_nodes)
    return {"image_idx": ok.astype(np.int32), "lists": lists, "lengths": lengths,
            "sample_idx": in_chunk.astype(np.int32), "rank": ranks}


def _assemble(graph: Graph, parts: dict[int, dict[str, np.ndarray]]) -> labels.Label:
    """Chunks hold consecutive images in order, so their lists concatenate in image order."""
    n_nodes = len(graph.nodes)
    dtype = labels.index_dtype(n_nodes)
    lengths = np.zeros(len(graph.image_paths), dtype)
    rank = np.full(len(graph.samples), -1, dtype)
    for part in parts.values():
        lengths[part["image_idx"]] = part["lengths"]
        rank[part["sample_idx"]] = part["rank"]
    lists = np.concatenate([np.zeros(0, dtype)] + [parts[start]["lists"] for start in sorted(parts)])
    return labels.Label(lists, lengths, rank, n_nodes)
