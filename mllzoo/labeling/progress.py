"""What ``register`` tells the user while it runs: bars on a terminal, log lines in a batch job.

A batch job's log has no terminal, so bars would show nothing until the end; there each stored
chunk is one line with images per second and an estimate of the time left, at most one line per
``every`` seconds (a model finishing always gets its line).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from mllzoo.defaults import PROGRESS_EVERY


class Progress:
    """Models and images done of those this run labels. ``enabled``: ``True`` bars, ``False``
    nothing, ``None`` bars on a terminal and log lines otherwise."""

    def __init__(
        self,
        n_models: int,
        n_images: int,
        enabled: bool | None,
        every: float = PROGRESS_EVERY,
        stream: TextIO | None = None,
    ):
        self.stream = stream or sys.stderr
        self.per_model = n_images
        self.models_total, self.images_total = n_models, n_models * n_images
        self.models_done = self.images_done = self.computed = 0
        self.every, self.started, self.logged = every, time.monotonic(), -float("inf")
        self.log = enabled is None and not _is_terminal(self.stream)
        self.bars = None if self.log or enabled is False else self._bars(enabled)

    def _bars(self, enabled: bool | None):
        from tqdm import tqdm

        disable = None if enabled is None else not enabled
        return (
            tqdm(
                total=self.models_total,
                unit="model",
                desc="models",
                disable=disable,
                file=self.stream,
            ),
            tqdm(
                total=self.images_total,
                unit="img",
                desc="images",
                disable=disable,
                file=self.stream,
                position=1,
            ),
        )

    def pass_over(self) -> None:
        """A model this run will not label after all (busy elsewhere, or labeled meanwhile)."""
        self.models_total -= 1
        self.images_total -= self.per_model
        if self.bars:
            for bar, less in zip(self.bars, (1, self.per_model)):
                bar.total -= less
                bar.refresh()

    def saved(self, images: int) -> None:
        """Images an earlier run already labeled (they count as done, not in the rate)."""
        self.images_done += images
        if self.bars:
            self.bars[1].update(images)

    def chunk(self, model_id: str, images: int) -> None:
        """A chunk of ``images`` computed and stored."""
        self.images_done += images
        self.computed += images
        if self.bars:
            self.bars[1].update(images)
        elif self.log and time.monotonic() - self.logged >= self.every:
            self._line(f"{model_id}: chunk stored")

    def model_done(self, model_id: str, outcome: str) -> None:
        """A model labeled (``outcome`` "labeled") or given up ("failed")."""
        if outcome == "labeled":
            self.models_done += 1
            if self.bars:
                self.bars[0].update(1)
        if self.log:
            self._line(f"{model_id}: {outcome}")

    def _line(self, what: str) -> None:
        now = time.monotonic()
        self.logged = now
        rate = self.computed / (now - self.started) if now > self.started else 0.0
        left = self.images_total - self.images_done
        eta = _duration(left / rate) if rate and left > 0 else ("0s" if left <= 0 else "unknown")
        print(
            f"register: {what}; models {self.models_done}/{self.models_total}, images "
            f"{self.images_done:,}/{self.images_total:,}, {rate:.1f} img/s, ETA {eta}",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self.bars:
            for bar in reversed(self.bars):
                bar.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream is no terminal
        return False


def _duration(seconds: float) -> str:
    """``1h02m``, ``3m05s``, ``12s``: short enough for a log line."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
