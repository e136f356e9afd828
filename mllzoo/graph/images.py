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
from pathlib import Path
from typing import Any

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


class ImageCache:
    """Preprocessed tensors for chunks of a fixed list of image files, kept per transform.

    Paths are relative to ``root`` (a graph's sample folder), or, with ``root=None``, read as given.
    Entries are keyed by ``(preprocess_key, chunk start)`` and evicted least-recently-used past
    ``budget_bytes``; while a graph's tensors fit, every image is decoded once per transform.

    With a ``root``, paths are a graph's sample paths, read inside ``root`` only, and with ``hashes``
    each file is checked against its stored hash as it is read. Without, they are the user's own files.
    ``status`` says why an image was skipped (missing, different or undecodable); ``skip`` marks
    images known to be unavailable before any read.
    """

    def __init__(
        self,
        root: Path | None,
        paths: list[str],
        budget_bytes: int = 2 * 1024**3,
        hashes: list[str] | None = None,
        skip: dict[int, str] | None = None,
    ):
        self.root = None if root is None else Path(root)
        self.paths = paths
        self.hashes = hashes
        self.budget = budget_bytes
        self._chunks: OrderedDict[tuple[str, int, int], tuple[Any, list[int]]] = OrderedDict()
        self._bytes = 0
        self.status: dict[int, str] = dict(skip or {})
        self.decodes = 0

    @property
    def unreadable(self) -> set[int]:
        return set(self.status)

    def _open(self, i: int) -> Image.Image | None:
        """Image ``i`` decoded, or None with its reason recorded in ``status``."""
        try:
            data = (
                read_regular(self.path(i))
                if self.root is None
                else read_sample(self.root, self.paths[i])
            )
        except UnavailableSample as exc:
            self.status[i] = exc.kind
            return None
        if self.hashes is not None and sample_hash(data) != self.hashes[i]:
            self.status[i] = DIFFERENT
            return None
        self.decodes += 1
        image = decode_rgb(data)
        if image is None:
            self.status[i] = UNDECODABLE
        return image

    def chunk(
        self, key: str, preprocess: Callable[[Image.Image], Any], start: int, stop: int
    ) -> tuple[Any, list[int]]:
        """``(tensor [n_ok, 3, H, W], indices of the readable images)`` for images ``start:stop``."""
        cache_key = (key, start, stop)
        if cache_key in self._chunks:
            self._chunks.move_to_end(cache_key)
            return self._chunks[cache_key]
        import torch

        stacked, ok = [], []
        for i in range(start, stop):
            if i in self.status:
                continue
            image = self._open(i)
            if image is None:
                continue
            stacked.append(preprocess(image))
            ok.append(i)
        entry = (torch.stack(stacked) if stacked else torch.zeros(0, 3, 1, 1), ok)
        self._chunks[cache_key] = entry
        self._bytes += entry[0].nbytes
        while self._chunks and self._bytes > self.budget:
            _, (evicted, _) = self._chunks.popitem(last=False)
            self._bytes -= evicted.nbytes
        return entry

    def path(self, i: int) -> Path:
        return Path(self.paths[i]) if self.root is None else self.root / self.paths[i]
