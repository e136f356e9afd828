"""Reading images once: decoded pixels are cached by content hash, preprocessed tensors by transform.

Labeling many models over the same samples would otherwise re-read and re-decode every image per
model (what the MLL reference code does). Models that share a transform (``preprocess_key``) share
the preprocessed tensors; the cache keeps as many transforms as fit in ``budget_bytes``.
"""

from __future__ import annotations

import io
import warnings
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mllzoo.graph.samples import (
    DIFFERENT,
    IMAGE_SUFFIXES,
    UnavailableSample,
    read_regular,
    read_sample,
    sample_hash,
)

if TYPE_CHECKING:
    from mllzoo.graph.decode_pool import DecodePool

UNDECODABLE = "undecodable"
UNREADABLE = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


def decode_rgb(data: bytes) -> Image.Image | None:
    """The image as RGB, or None when it cannot be decoded (the caller counts it). The one decoding
    of ``predict``, labeling and benchmarks alike.

    Pillow's decompression-bomb warning is an error here: such an image is undecodable, not a
    warning followed by a huge allocation. Wide single-channel images are scaled to 8 bits first
    (:func:`eight_bit`).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                if image.mode in ("I", "F") or image.mode.startswith("I;16"):
                    image = eight_bit(image)
                if image.mode in ("P", "LA") or (image.mode == "RGBA"):
                    image = image.convert("RGBA")
                    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                    image = Image.alpha_composite(background, image)
                return image.convert("RGB")
    except UNREADABLE:
        return None


def eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float grayscale image as 8-bit grayscale, its range kept: Pillow's
    own conversion clips every value above 255 (nearly all of a 16-bit image: white) and truncates a
    float image in [0, 1] to 0 (black). Integers in [0, 65535] and floats in [0, 1] scale from that
    range, as their formats mean them; other values from their own minimum and maximum."""
    values = np.asarray(image, dtype=np.float64)
    finite = values[np.isfinite(values)]
    nominal = (0.0, 1.0) if image.mode == "F" else (0.0, 65535.0)
    low, high = nominal
    if finite.size and (finite.min() < low or finite.max() > high):
        low, high = float(finite.min()), float(finite.max())
    scaled = (np.nan_to_num(values, nan=low, posinf=high, neginf=low) - low) / max(
        high - low, 1e-12
    )
    return Image.fromarray(np.rint(np.clip(scaled, 0, 1) * 255).astype(np.uint8))


def open_rgb(path: Path) -> Image.Image | None:
    """A user's image file as RGB (regular files up to the sample size cap), or None."""
    try:
        return decode_rgb(read_regular(path))
    except UnavailableSample:
        return None


def class_folder_images(folder: Path) -> list[tuple[Path, str | None]]:
    """Every image file under ``folder`` (sorted, sub-folders included) with the name of the folder that
    holds it, or None for files directly in ``folder``: an ImageFolder's images and their class names."""
    files = sorted(
        p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    return [(file, file.parent.name if file.parent != Path(folder) else None) for file in files]


def read_image(
    root: Path | None, path: str, expected_hash: str | None
) -> tuple[Image.Image | None, str | None]:
    """Image ``path`` decoded, or None and why (missing, different, undecodable): a graph's sample read
    inside ``root`` only (checked against ``expected_hash`` when given), or with ``root=None`` a
    user's file read as given."""
    try:
        data = read_regular(Path(path)) if root is None else read_sample(root, path)
    except UnavailableSample as exc:
        return None, exc.kind
    if expected_hash is not None and sample_hash(data) != expected_hash:
        return None, DIFFERENT
    image = decode_rgb(data)
    return image, None if image is not None else UNDECODABLE


@dataclass
class Decoded:
    """A batch of images decoded and preprocessed: the pixels of the readable ones (``[n_ok, 3, H,
    W]``, None without any), their indices, why the others were skipped, and how many were decoded."""

    pixels: np.ndarray | None
    ok: list[int]
    status: dict[int, str]
    decodes: int


def decode_batch(
    root: Path | None,
    items: list[tuple[int, str, str | None]],
    preprocess: Callable[[Image.Image], Any],
) -> Decoded:
    """Read (as :func:`read_image` does), decode and preprocess ``(index, path, expected hash or
    None)`` items, in order: what :class:`ImageCache` runs here, or in a decoding worker process."""
    import torch

    tensors, ok, status, decodes = [], [], {}, 0
    for i, path, expected in items:
        image, reason = read_image(root, path, expected)
        decodes += reason in (None, UNDECODABLE)  # opened and decoded, or tried to
        if image is None:
            status[i] = reason or UNDECODABLE
            continue
        tensors.append(preprocess(image))
        ok.append(i)
    pixels = torch.stack(tensors).numpy() if tensors else None
    return Decoded(pixels, ok, status, decodes)


class ImageCache:
    """Preprocessed tensors for chunks of a fixed list of image files, kept per transform.

    Paths are relative to ``root`` (a graph's sample folder), or, with ``root=None``, read as given.
    Entries are keyed by ``(preprocess_key, chunk start)`` and evicted least-recently-used past
    ``budget_bytes``; while a graph's tensors fit, every image is decoded once per transform.

    With a ``root``, paths are a graph's sample paths, read inside ``root`` only, and with ``hashes``
    each file is checked against its stored hash as it is read. Without, they are the user's own files.
    ``status`` says why an image was skipped (missing, different or undecodable); ``skip`` marks
    images known to be unavailable before any read. With a ``pool`` its worker processes decode and
    preprocess, and :meth:`prefetch` has them decode the next chunk while the model encodes this one;
    the tensors are the same, to the byte.
    """

    def __init__(
        self,
        root: Path | None,
        paths: list[str],
        budget_bytes: int = 2 * 1024**3,
        hashes: list[str] | None = None,
        skip: dict[int, str] | None = None,
        pool: DecodePool | None = None,
    ):
        self.root = None if root is None else Path(root)
        self.paths = paths
        self.hashes = hashes
        self.budget = budget_bytes
        self._chunks: OrderedDict[tuple[str, int, int], tuple[Any, list[int]]] = OrderedDict()
        self._bytes = 0
        self.status: dict[int, str] = dict(skip or {})
        self.decodes = 0
        self.pool = pool  # decoding worker processes (:mod:`.decode_pool`), else decode here
        self._pending: dict[tuple[str, int, int], list[Decoded | Future[Decoded]]] = {}

    @property
    def unreadable(self) -> set[int]:
        return set(self.status)

    def chunk(
        self, key: str, preprocess: Callable[[Image.Image], Any], start: int, stop: int
    ) -> tuple[Any, list[int]]:
        """``(tensor [n_ok, 3, H, W], indices of the readable images)`` for images ``start:stop``:
        from the cache, from the decoding workers' :meth:`prefetch`, or decoded now."""
        cache_key = (key, start, stop)
        if cache_key in self._chunks:
            self._chunks.move_to_end(cache_key)
            return self._chunks[cache_key]
        import torch

        pending = self._pending.pop(cache_key, None)
        if pending is None:
            pending = self._decode(key, preprocess, start, stop)
        batches = [b if isinstance(b, Decoded) else b.result() for b in pending]
        for batch in batches:
            self.status.update(batch.status)
            self.decodes += batch.decodes
        arrays = [batch.pixels for batch in batches if batch.pixels is not None]
        entry = (
            torch.from_numpy(np.concatenate(arrays)) if arrays else torch.zeros(0, 3, 1, 1),
            [i for batch in batches for i in batch.ok],
        )
        self._chunks[cache_key] = entry
        self._bytes += entry[0].nbytes
        while self._chunks and self._bytes > self.budget:
            _, (evicted, _) = self._chunks.popitem(last=False)
            self._bytes -= evicted.nbytes
        return entry

    def prefetch(
        self, key: str, preprocess: Callable[[Image.Image], Any], start: int, stop: int
    ) -> None:
        """Have the decoding workers start on images ``start:stop`` while the caller encodes another
        chunk (nothing without workers, or when the chunk is cached); an earlier prefetch not taken
        is dropped."""
        cache_key = (key, start, stop)
        if self.pool is None or cache_key in self._chunks or cache_key in self._pending:
            return
        for stale in self._pending.values():
            for batch in stale:
                if isinstance(batch, Future):
                    batch.cancel()  # not started: never decoded; running: its result is dropped
        self._pending.clear()
        self._pending[cache_key] = self._decode(key, preprocess, start, stop)

    def _decode(
        self, key: str, preprocess: Callable[[Image.Image], Any], start: int, stop: int
    ) -> list[Decoded | Future[Decoded]]:
        """Images ``start:stop`` not known to be unavailable, decoded and preprocessed in batches: by
        the workers when there are any (their results to come), else here and now."""
        todo = [
            (i, self.paths[i], self.hashes[i] if self.hashes is not None else None)
            for i in range(start, stop)
            if i not in self.status
        ]
        if self.pool is not None:
            return self.pool.submit(self.root, key, preprocess, todo)
        done = decode_batch(self.root, todo, preprocess)
        return [done]

    def path(self, i: int) -> Path:
        return Path(self.paths[i]) if self.root is None else self.root / self.paths[i]
