"""Keeping a running ``register``'s claims alive: a thread renews them several times per lease.

A claim is a lease (:meth:`Registry.claim`): another process takes it over once it has not been
renewed for ``claim-lease`` seconds. The renewal runs beside the labeling, on its own SQLite
connection, so a model whose chunks take longer than the lease keeps its claim; a process that is
killed, or hangs as a whole, stops renewing and its models are freed for others.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from mllzoo.errors import warn

RENEWALS_PER_LEASE = 4  # a renewal may fail or be late three times before the lease runs out


class LeaseKeeper:
    """Renews this process's claims in ``path`` every ``lease / RENEWALS_PER_LEASE`` seconds while
    entered; a failed renewal is one warning, and the next one tries again."""

    def __init__(self, path: Path, lease: float):
        self.path, self.interval = path, lease / RENEWALS_PER_LEASE
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mllzoo-claim-lease", daemon=True)
        self.renewals = 0

    def __enter__(self) -> LeaseKeeper:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        from mllzoo.store.registry import Registry

        registry = None
        warned = False
        while not self.stopped.wait(self.interval):
            try:
                registry = registry or Registry(self.path, create=False)
                registry.renew_claims()
                self.renewals += 1
                warned = False
            except Exception as exc:  # the labeling goes on; the claim may lapse if this persists
                if not warned:
                    warn(f"could not renew the labeling claims in {self.path}: {exc}")
                    warned = True
        if registry is not None:
            registry.close()
