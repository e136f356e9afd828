"""The labeling driver: it plans, claims and publishes; each model runs once over the graph's
captions and sample images and its label is stored.

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

Three steps: :func:`plan` finds the chunks a model still needs;
:func:`~mllzoo.labeling.compute.compute_parts` (the compute side, in :mod:`.compute`) loads the model
through the plugin hooks and computes those parts (what an executor runs: :class:`LocalExecutor` in
this process, ``ray_executor.RayExecutor`` on Ray workers); the driver in :func:`label_models`, the
only writer, stores each part as it arrives and publishes the label once all are in.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mllzoo import labels
from mllzoo.defaults import ALLOW_MISSING, CHUNK, DEVICE
from mllzoo.errors import InvalidLabel, MllzooError, warn
from mllzoo.graph.concept_graph import Graph
from mllzoo.graph.images import UNDECODABLE
from mllzoo.graph.samples import (
    DIFFERENT,
    MISSING,
    check_samples,
    refuse_beyond_tolerance,
)
from mllzoo.labeling.compute import (
    Event,
    Executor,
    LocalExecutor,
    ModelFailed,
    ModelWork,
)
from mllzoo.labeling.lease import LeaseKeeper
from mllzoo.labeling.progress import Progress
from mllzoo.models.catalog import CatalogEntry
from mllzoo.plugins import one_line
from mllzoo.store.registry import Registry


@dataclass
class LabelingReport:
    labeled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    missing_images: int = 0  # absent, not a regular file, or outside the sample folder
    different_images: int = 0  # not the bytes the graph was built from
    undecodable_images: int = 0  # the graph's bytes, but not an image Pillow decodes
    undecodable_files: list[str] = field(default_factory=list)  # their paths in the sample folder
    image_decodes: int = 0
    caption_encodings: int = 0
    images_encoded: int = 0
    seconds: float = 0.0


def chunk_bounds(n_images: int, chunk: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of every chunk of ``chunk`` images, in image order."""
    return [(start, min(start + chunk, n_images)) for start in range(0, n_images, chunk)]


def part_identity(
    entry: CatalogEntry, graph: Graph, start: int, stop: int, depth: int | None
) -> np.ndarray:
    """Everything that shapes a saved part, as canonical JSON bytes stored beside its arrays: a part
    is reused only when its identity equals the current run's for the same chunk."""
    identity = {
        "model": entry.spec.id,
        "plugin": entry.plugin,
        "plugin_version": entry.plugin_version,
        "graph": graph.id,
        "format": labels.FORMAT,
        "start": start,
        "stop": stop,
        "depth": depth or "auto",
        "budget_bytes": labels.BUDGET_BYTES,
        "n_images": len(graph.image_paths),
        "n_samples": len(graph.samples),
        "n_nodes": len(graph.nodes),
    }
    return np.frombuffer(json.dumps(identity, sort_keys=True).encode(), np.uint8)


def saved_parts(
    registry: Registry, entry: CatalogEntry, graph: Graph, depth: int | None, chunk: int
) -> dict[int, dict[str, np.ndarray]]:
    """The saved parts that fit this run's chunks, by start; parts saved with another chunk size,
    depth, graph, format or plugin version are left out (and so redone)."""
    saved = registry.label_parts(entry.spec.id, graph.id)
    fitting = {}
    for start, stop in chunk_bounds(len(graph.image_paths), chunk):
        part = saved.get(start)
        identity = None if part is None else part.get("identity")
        if (
            part is not None
            and identity is not None
            and np.array_equal(identity, part_identity(entry, graph, start, stop, depth))
        ):
            fitting[start] = part
    return fitting


def store_part(
    registry: Registry,
    entry: CatalogEntry,
    graph: Graph,
    start: int,
    stop: int,
    depth: int | None,
    part: dict[str, np.ndarray],
) -> None:
    """Save a computed part with its identity, so a resumed run can tell whether it still fits."""
    registry.save_label_part(
        entry.spec.id,
        graph.id,
        start,
        {**part, "identity": part_identity(entry, graph, start, stop, depth)},
    )


def publish(
    registry: Registry,
    entry: CatalogEntry,
    graph: Graph,
    parts: dict[int, dict[str, np.ndarray]],
    depth: int | None,
    meta: dict,
) -> labels.Label:
    """Assemble the parts, validate the label against the graph and publish it. A label that fails
    validation is not published and its parts are dropped, so the next run computes them again."""
    try:
        label = _assemble(graph, parts)
        labels.validate(label, len(graph.image_paths), graph.samples, len(graph.nodes))
    except (
        InvalidLabel,
        IndexError,
        ValueError,
    ) as exc:  # parts that do not fit together are invalid too
        registry.drop_label_parts(entry.spec.id, graph.id)
        raise InvalidLabel(
            f"{entry.spec.id}: {exc}; not published, its saved work dropped"
        ) from None
    meta = {
        "n_nodes": len(graph.nodes),
        "depth": depth or "auto",
        "max_length": int(label.lengths.max(initial=0)),
        "n_images": len(graph.image_paths),
        "n_samples": int(len(graph.samples)),
        "bytes": label.nbytes,
        "plugin": entry.plugin,
        "plugin_version": entry.plugin_version,
        **meta,
    }
    registry.save_label(entry.spec.id, graph.id, labels.FORMAT, label.arrays(), meta)
    return label


def plan(
    registry: Registry, graph: Graph, entry: CatalogEntry, depth: int | None, chunk: int
) -> tuple[dict[int, dict[str, np.ndarray]], list[tuple[int, int]]]:
    """``(saved parts that fit this run, image ranges still to compute)`` for one model."""
    parts = saved_parts(registry, entry, graph, depth, chunk)
    return parts, [
        (start, stop)
        for start, stop in chunk_bounds(len(graph.image_paths), chunk)
        if start not in parts
    ]


def sample_coverage(
    parts: dict[int, dict[str, np.ndarray]], unavailable: dict[int, str], n_images: int
) -> dict[str, int]:
    """Images the label saw, and why the others were not seen (as known when it is published).

    An unseen image with no known reason was present and unchanged when an earlier run saved its
    part, so it was skipped then for failing to decode.
    """
    seen = np.zeros(n_images, bool)
    for part in parts.values():
        seen[part["image_idx"]] = True
    unseen = [unavailable.get(int(i), UNDECODABLE) for i in np.flatnonzero(~seen)]
    return {
        "images": n_images,
        "seen": int(seen.sum()),
        "missing": unseen.count(MISSING),
        "different": unseen.count(DIFFERENT),
        "undecodable": unseen.count(UNDECODABLE),
    }


def label_models(
    registry: Registry,
    graph: Graph,
    samples_root: Path,
    entries: list[CatalogEntry],
    device: str = DEVICE,
    batch_size: int | None = None,
    depth: int | None = None,
    chunk: int = CHUNK,
    progress: bool | None = None,
    cache_bytes: int = 2 * 1024**3,
    executor: Executor | None = None,
    allow_missing: float = ALLOW_MISSING,
    lease: float | None = None,
) -> LabelingReport:
    """Label every entry not yet labeled on ``graph``; the rest are left untouched.

    ``depth`` caps every image's node list; ``None`` fits each chunk's lists to the label budget
    (:func:`labels.budget_depth`). ``cache_bytes`` bounds the preprocessed images kept for the
    next model with the same transform (local executor). ``executor`` computes the parts (default:
    :class:`LocalExecutor`); this process alone writes them, publishes labels and holds the claims.
    More than ``allow_missing`` (a share of the graph's images) missing or different refuses every
    model before any runs, with one line. Claims are leases of ``lease`` seconds (default: the
    ``claim-lease`` setting), renewed while this runs (:mod:`.lease`).
    """
    report = LabelingReport()
    registry.record_models(entries)
    done = registry.labeled_model_ids(graph.id)
    todo = [e for e in entries if e.spec.id not in done]
    report.skipped = [e.spec.id for e in entries if e.spec.id in done]
    if not todo:
        return report
    if not Path(samples_root).is_dir():
        raise MllzooError(
            f"sample images of graph {graph.id} not found at {samples_root}: pass --samples DIR"
        )
    check = check_samples(graph.id, graph.image_hashes, graph.image_paths, Path(samples_root))
    refuse_beyond_tolerance(
        len(check.missing), len(check.different), check.images, allow_missing, check.folder
    )
    from mllzoo.store.config import claim_lease

    lease = claim_lease() if lease is None else lease
    executor = executor or LocalExecutor(cache_bytes)
    started = time.perf_counter()
    driver = _Driver(
        registry,
        graph,
        report,
        depth,
        chunk,
        len(todo),
        progress,
        allow_missing,
        str(samples_root),
        check.unavailable(),
        lease,
    )
    try:
        with (
            LeaseKeeper(registry.path, lease),
            contextlib.closing(
                executor.run(
                    driver.claim(todo), graph, Path(samples_root), device, batch_size, depth
                )
            ) as events,  # closing stops an executor's remaining work
        ):
            for event in events:
                driver.handle(event)
        driver.fail_unfinished("the executor returned without all of its parts")
    except KeyboardInterrupt:
        driver.interrupt()
        raise
    finally:
        driver.close()
    report.missing_images, report.different_images, report.undecodable_images = (
        driver.count(kind) for kind in (MISSING, DIFFERENT, UNDECODABLE)
    )
    report.undecodable_files = driver.paths(UNDECODABLE)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Open:
    """A claimed model being labeled: its run record and the part starts still missing."""

    entry: CatalogEntry
    run_id: int
    missing: set[int]
    unavailable: dict[int, str]
    dim: int | None = None
    device: str | None = None
    encoded: int = 0


class _Driver:
    """The one writer: claims models, stores each finished part, publishes complete labels, reports."""

    def __init__(
        self,
        registry: Registry,
        graph: Graph,
        report: LabelingReport,
        depth: int | None,
        chunk: int,
        n_models: int,
        progress: bool | None,
        allow_missing: float,
        folder: str,
        unavailable: dict[int, str],
        lease: float,
    ):
        self.registry, self.graph, self.report, self.depth, self.chunk = (
            registry,
            graph,
            report,
            depth,
            chunk,
        )
        self.allow_missing, self.folder, self.lease = allow_missing, folder, lease
        self.unavailable = dict(unavailable)  # every image not seen in this run so far, and why
        self.open: dict[str, _Open] = {}
        self.progress = Progress(n_models, len(graph.image_paths), progress)

    def claim(self, todo: list[CatalogEntry]) -> Iterator[ModelWork]:
        """Claim each model as the executor draws it; models done or busy elsewhere are passed over."""
        n_images = len(self.graph.image_paths)
        for entry in todo:
            model_id = entry.spec.id
            if not self.registry.claim(model_id, self.graph.id, self.lease):
                self.report.busy.append(model_id)
                self.progress.pass_over()
                continue
            if model_id in self.registry.labeled_model_ids(
                self.graph.id
            ):  # finished by another process meanwhile
                self.registry.release(model_id, self.graph.id)
                self.report.skipped.append(model_id)
                self.progress.pass_over()
                continue
            parts, ranges = plan(self.registry, self.graph, entry, self.depth, self.chunk)
            run_id = self.registry.start_run(
                "register", {"model": model_id, "graph": self.graph.id}
            )
            self.open[model_id] = _Open(
                entry, run_id, {start for start, _ in ranges}, dict(self.unavailable)
            )
            self.progress.saved(n_images - sum(stop - start for start, stop in ranges))
            if ranges:
                yield ModelWork(entry, ranges)
            else:  # every part was saved by an earlier run
                self._publish(model_id)

    def handle(self, event: Event) -> None:
        state = self.open.get(event.model_id)
        if state is None:  # a late part of a model that has already failed
            return
        if isinstance(event, ModelFailed):
            self._fail(event.model_id, event.message)
            return
        self.report.image_decodes += event.image_decodes
        self.report.caption_encodings += event.caption_encodings
        if event.start not in state.missing:  # a retried task computed it again
            return
        if not self.registry.holds_claim(event.model_id, self.graph.id):
            self._fail(event.model_id, self._lost_claim(event.model_id))
            return
        store_part(
            self.registry,
            state.entry,
            self.graph,
            event.start,
            event.stop,
            self.depth,
            event.arrays,
        )
        state.unavailable.update(event.unavailable)
        self.unavailable.update(event.unavailable)
        state.missing.discard(event.start)
        state.dim, state.device = event.dim, event.device
        state.encoded += len(event.arrays["image_idx"])
        self.progress.chunk(event.model_id, event.stop - event.start)
        if not state.missing:
            self._publish(event.model_id)

    def _publish(self, model_id: str) -> None:
        """Assemble the label from the stored parts, check its coverage, validate and publish it."""
        state = self.open.pop(model_id)
        entry, graph = state.entry, self.graph
        n_images = len(graph.image_paths)
        try:
            if not self.registry.holds_claim(model_id, graph.id):
                raise MllzooError(self._lost_claim(model_id))
            parts, _ = plan(self.registry, graph, entry, self.depth, self.chunk)
            vanished = len(chunk_bounds(n_images, self.chunk)) - len(parts)
            if vanished or model_id in self.registry.labeled_model_ids(graph.id):
                raise MllzooError(
                    f"{vanished} of its saved parts vanished from the registry while it ran "
                    f"(another process imported or removed its label); not published, run "
                    f"`mllzoo register {model_id}` again"
                    if vanished
                    else "another process stored a label for it while it ran; that label is kept"
                )
            coverage = sample_coverage(parts, state.unavailable, n_images)
            refuse_beyond_tolerance(
                coverage["missing"],
                coverage["different"],
                n_images,
                self.allow_missing,
                self.folder,
            )
            if not coverage["seen"]:
                raise MllzooError(
                    f"none of the {n_images} sample images in {self.folder} was seen "
                    f"({coverage['missing']} missing, {coverage['different']} different, "
                    f"{coverage['undecodable']} undecodable)"
                )
            publish(
                self.registry,
                entry,
                graph,
                parts,
                self.depth,
                {"coverage": coverage, "dim": state.dim, "device": state.device},
            )
        except Exception as exc:
            self.open[model_id] = state
            self._fail(model_id, one_line(exc))
            return
        self.report.labeled.append(model_id)
        self.report.images_encoded += state.encoded
        self.registry.finish_run(state.run_id, "done", {"model": model_id, "images": state.encoded})
        self.registry.release(model_id, graph.id)
        self.progress.model_done(model_id, "labeled")

    def _lost_claim(self, model_id: str) -> str:
        """Why a model is given up whose claim this process no longer holds."""
        holder = self.registry.claim_holder(model_id, self.graph.id, self.lease)
        return (
            f"its labeling claim was taken over by {holder or 'another process'} (not renewed "
            f"within the claim lease, or cleared by `mllzoo labels unclaim`); the parts it saved are "
            f"kept for that process"
        )

    def count(self, kind: str) -> int:
        """Images not seen in this run for reason ``kind`` (missing, different, undecodable)."""
        return sum(1 for reason in self.unavailable.values() if reason == kind)

    def paths(self, kind: str) -> list[str]:
        """The sample-folder paths of the images not seen for reason ``kind``, in image order."""
        return [
            str(self.graph.image_paths[i])
            for i, reason in sorted(self.unavailable.items())
            if reason == kind
        ]

    def _fail(self, model_id: str, message: str) -> None:
        state = self.open.pop(model_id)
        self.report.failed[model_id] = message
        self.registry.finish_run(state.run_id, "failed", {"model": model_id, "error": message})
        self.registry.release(model_id, self.graph.id)
        self.progress.model_done(model_id, "failed")
        warn(f"{model_id} was not labeled: {message}")

    def fail_unfinished(self, message: str) -> None:
        for model_id in list(self.open):
            self._fail(model_id, message)

    def interrupt(self) -> None:
        for model_id, state in self.open.items():
            self.registry.finish_run(state.run_id, "interrupted", {"model": model_id})

    def close(self) -> None:
        for model_id in self.open:
            self.registry.release(model_id, self.graph.id)
        self.open.clear()
        self.progress.close()


def _assemble(graph: Graph, parts: dict[int, dict[str, np.ndarray]]) -> labels.Label:
    """Chunks hold consecutive images in order, so their lists concatenate in image order."""
    n_nodes = len(graph.nodes)
    dtype = labels.index_dtype(n_nodes)
    lengths = np.zeros(len(graph.image_paths), dtype)
    rank = np.full(len(graph.samples), -1, dtype)
    for part in parts.values():
        lengths[part["image_idx"]] = part["lengths"]
        rank[part["sample_idx"]] = part["rank"]
    lists = np.concatenate(
        [np.zeros(0, dtype)] + [parts[start]["lists"] for start in sorted(parts)]
    )
    return labels.Label(lists, lengths, rank, n_nodes)


@dataclass
class RegisterResult:
    """What ``mllzoo register`` did: the labeling report, labels imported from plugins, models left out
    because their weights are not on this machine."""

    report: LabelingReport
    imported: list[str]
    not_here: list[str]


def register(
    open_registry: Callable[[], Registry],
    model_ids: Iterable[str] = (),
    samples: Path | None = None,
    download: bool = False,
    **labeling: Any,
) -> RegisterResult:
    """Label installed models on the registry's graph: the ones named, or all not yet labeled.

    Ids are checked before the registry opens (``open_registry`` is called once, then). A label a plugin
    ships for this graph is imported instead of running the model; with no ids, only models whose weights
    are already here run unless ``download``. ``labeling`` goes to :func:`label_models` (device,
    batch_size, chunk, depth, allow_missing, executor).
    """
    from mllzoo.graph.concept_graph import load_graph, samples_root_for
    from mllzoo.labeling.transfer import import_shipped
    from mllzoo.models.catalog import resolve
    from mllzoo.models.vlm import model_available
    from mllzoo.store.user_models import known_models

    model_ids = list(model_ids)
    catalog = known_models()
    entries = resolve(model_ids, catalog) if model_ids else list(catalog.values())  # bad ids first
    registry = open_registry()  # a new registry has no graph to label on: never make one here
    built = load_graph(registry)
    done = registry.labeled_model_ids(built.id)
    imported = import_shipped(registry, {e.spec.id for e in entries if e.spec.id not in done})
    registry.record_models(
        [catalog[model_id] for model_id in imported]
    )  # the installed plugin's metadata
    entries = [e for e in entries if e.spec.id not in imported]
    not_here = (
        []
        if model_ids or download
        else [e.spec.id for e in entries if e.spec.id not in done and not model_available(e.spec)]
    )
    entries = [e for e in entries if e.spec.id not in not_here]
    todo = any(
        e.spec.id not in done for e in entries
    )  # the sample folder is needed only when a model runs
    report = label_models(
        registry,
        built,
        samples_root_for(registry, built.id, samples) if todo else Path(),
        entries,
        **labeling,
    )
    return RegisterResult(report, imported, not_here)
