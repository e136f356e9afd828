"""Worker processes that read, decode and preprocess sample images, so a model never waits on JPEG
decoding (``mllzoo register --decode-workers N``).

Each batch runs :func:`~mllzoo.graph.images.decode_batch`, the very function that decodes in-process,
and its pixels come back as float arrays: the tensors are the ones in-process decoding makes, to the
byte. Workers are started with ``spawn`` (no forked copy of the driver's threads, locks or CUDA state),
use one thread each, ignore Ctrl-C (the terminal sends it to the whole process group; the driver alone
handles it and then shuts the pool down), and exit when the driver dies, even by SIGKILL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from mllzoo.errors import note
from mllzoo.graph.images import Decoded, decode_batch

BATCH_IMAGES = 64  # most images per task: small enough to spread a chunk over the workers


def start_worker() -> None:
    """In each worker: leave Ctrl-C to the driver, use one thread, and exit when the driver is gone."""
    import multiprocessing
    import os
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: importing torch takes seconds
    import torch

    torch.set_num_threads(1)
    parent = multiprocessing.parent_process()
    if parent is not None:

        def exit_with_parent() -> None:
            parent.join()
            os._exit(0)

        threading.Thread(target=exit_with_parent, daemon=True).start()


def accept(preprocess: Callable[[Any], Any]) -> None:
    """Nothing: a worker received the transform, which is all :meth:`DecodePool._can_send` asks."""


class DecodePool:
    """``workers`` decoding processes, started on first use; :meth:`close` (or ``with``) ends them."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._sendable: dict[str, bool] = {}

    def submit(
        self,
        root: Path | None,
        key: str,
        preprocess: Callable[[Any], Any],
        items: list[tuple[int, str, str | None]],
    ) -> list[Decoded | Future[Decoded]]:
        """``items`` in batches, each decoded by a worker; decoded here instead when the transform
        ``key`` cannot be sent to another process (one note per transform)."""
        if self._executor is None:
            import multiprocessing

            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker,
            )
        if not self._can_send(key, preprocess):
            return [decode_batch(root, items, preprocess)]
        size = min(BATCH_IMAGES, max(1, math.ceil(len(items) / self.workers)))
        return [
            self._executor.submit(decode_batch, root, items[s : s + size], preprocess)
            for s in range(0, len(items), size)
        ]

    def _can_send(self, key: str, preprocess: Callable[[Any], Any]) -> bool:
        """Whether the pool can carry transform ``key`` to its workers: tried once, by sending it."""
        if key not in self._sendable:
            assert self._executor is not None
            try:
                self._executor.submit(accept, preprocess).result()
                self._sendable[key] = True
            except Exception as exc:  # a lambda, a local function: the pool could not send it
                note(
                    f"the image transform {key!r} cannot be sent to decoding workers "
                    f"({type(exc).__name__}: {exc}); its images are decoded in this process"
                )
                self._sendable[key] = False
        return self._sendable[key]

    def close(self) -> None:
        """Drop the batches not started, wait for the running ones (a batch is short) and end the workers."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
