"""Labeling on a Ray cluster (``mllzoo register --executor ray``): workers compute, the driver writes.

One Ray task per (model, shard of its missing chunks), so one large model spreads over many workers.
A task loads the model through the plugin hooks on its worker and runs :func:`labeling.compute_parts`,
the code local labeling runs, yielding each finished part as soon as it is computed (a Ray generator
task); the driver stores it, and publishes the label once every part is in
(:func:`labeling.label_models`: claims, resumable parts, complete-or-invisible labels, failures).
A worker that dies is retried by Ray (``max_retries``); parts it already returned are kept, and a
retry's repeats are ignored.

Workers read the sample images from ``samples_root``, a path every node sees (a shared file system,
or the same copy on every node's disk), not through Ray's object store: at the paper's scale the
sample set is ~680,000 images read once per model, and putting them in the object store would push
every byte through the driver's node and hold tens of GB in the stores' memory (or spill it), while
each worker reading only its own shard spreads the reads over the cluster. Only the graph (image
paths and hashes, samples, captions: tens of MB at that scale) goes through the object store, once.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

from mllzoo.defaults import CPUS_PER_TASK, SHARD_IMAGES
from mllzoo.errors import MllzooError, warn
from mllzoo.graph.concept_graph import Graph
from mllzoo.labeling.compute import (
    Event,
    ModelFailed,
    ModelWork,
    compute_parts,
    default_batch_size,
)
from mllzoo.models.vlm import CaptionFeatures
from mllzoo.plugins import one_line

INSTALL_HINT = "--executor ray needs Ray: pip install 'mllzoo[ray]'"


def import_ray():
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MllzooError(INSTALL_HINT) from None
    return ray


CONNECT_TIMEOUT_S = 10  # Ray itself retries an unreachable address for minutes without a word


def _reachable(address: str | None) -> None:
    """Refuse in one line, within :data:`CONNECT_TIMEOUT_S`, a ``HOST:PORT`` (or ``ray://HOST:PORT``)
    where nothing accepts a connection; ``auto``, ``local`` and no address are left to Ray."""
    import socket

    target = (address or "").removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise MllzooError(
            f"could not join the Ray cluster at {address}: nothing accepted a connection there "
            f"within {CONNECT_TIMEOUT_S} s ({exc.strerror or exc}); check --address or RAY_ADDRESS"
        ) from None


class RayExecutor:
    """Computes label parts as Ray tasks: ``gpus_per_model`` and ``cpus_per_task`` per task, at most
    ``shard_images`` images each. Joins the cluster at ``address`` (default: ``RAY_ADDRESS``, else a
    local instance), unless this process is already connected."""

    def __init__(
        self,
        address: str | None = None,
        gpus_per_model: float | None = None,
        cpus_per_task: float = CPUS_PER_TASK,
        shard_images: int = SHARD_IMAGES,
        max_retries: int = 3,
    ):
        self.ray = import_ray()
        self.address, self.gpus_per_model, self.cpus_per_task = (
            address,
            gpus_per_model,
            cpus_per_task,
        )
        self.shard_images, self.max_retries = shard_images, max_retries

    def run(
        self,
        works: Iterable[ModelWork],
        graph: Graph,
        samples_root: Path,
        device: str,
        batch_size: int | None,
        depth: int | None,
    ) -> Generator[Event, None, None]:
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            local = {} if self.address else {"include_dashboard": False}
            _reachable(self.address)
            try:
                ray.init(address=self.address, logging_level=logging.WARNING, **local)
            except Exception as exc:  # an unreachable address, a cluster of another Ray version
                where = (
                    f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
                )
                raise MllzooError(f"could not start or join {where}: {exc}") from None
        pending: dict = {}  # streaming task -> model id
        try:
            task = ray.remote(_label_shard).options(
                num_cpus=self.cpus_per_task, num_gpus=self._gpus(), max_retries=self.max_retries
            )
            graph_ref = ray.put(graph)  # with the image hashes: workers check every file they read
            for work in works:
                for shard in self._shards(work.ranges):
                    shard_work = ModelWork(work.entry, shard)
                    pending[
                        task.remote(
                            shard_work, graph_ref, str(samples_root), device, batch_size, depth
                        )
                    ] = work.entry.spec.id
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for stream in ready:
                    event = self._next(stream, pending)
                    if event is None:
                        continue
                    if isinstance(event, ModelFailed):  # its other shards are wasted work now
                        for other in [
                            s for s, model_id in pending.items() if model_id == event.model_id
                        ]:
                            ray.cancel(other)
                            del pending[other]
                    yield event
        finally:
            for stream in pending:
                ray.cancel(stream)
            if started_here:
                ray.shutdown()

    def _next(self, stream, pending: dict) -> Event | None:
        """The stream's next event; None once it has ended, a failure once Ray gives up on it."""
        try:
            return self.ray.get(next(stream))
        except StopIteration:
            del pending[stream]
            return None
        except Exception as exc:  # the task's retries are spent: a worker or node kept dying
            model_id = pending.pop(stream)
            return ModelFailed(model_id, one_line(getattr(exc, "cause", None) or exc))

    def _gpus(self) -> float:
        """GPUs per task: as asked, else one where the cluster has GPUs."""
        available = self.ray.cluster_resources().get("GPU", 0)
        gpus = self.gpus_per_model if self.gpus_per_model is not None else (1 if available else 0)
        if gpus > available:
            warn(
                f"the Ray cluster has {available:g} GPUs now; tasks needing {gpus:g} wait for "
                f"one to join"
            )
        return gpus

    def _shards(self, ranges: list[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
        """Consecutive runs of a model's missing chunks, at most ``shard_images`` images each."""
        shard: list[tuple[int, int]] = []
        for start, stop in ranges:
            if shard and sum(b - a for a, b in shard) + stop - start > self.shard_images:
                yield shard
                shard = []
            shard.append((start, stop))
        if shard:
            yield shard


def _label_shard(
    work: ModelWork,
    graph: Graph,
    samples_root: str,
    device: str,
    batch_size: int | None,
    depth: int | None,
) -> Iterator[Event]:
    """A Ray task: load the model through the plugins installed on this worker, compute its parts."""
    from mllzoo.graph.images import ImageCache
    from mllzoo.models.vlm import resolve_device
    from mllzoo.plugins import load_plugins

    load_plugins()
    device = resolve_device(device)
    batch_size = batch_size or default_batch_size(device)
    # each image is read once here
    cache = ImageCache(
        Path(samples_root), graph.image_paths, budget_bytes=0, hashes=graph.image_hashes
    )
    yield from compute_parts(
        work, graph, cache, CaptionFeatures(graph.captions), device, batch_size, depth
    )
