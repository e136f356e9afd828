"""Reading images once: decoded pixels are cached by content hash, preprocessed tensors by transform.

Labeling many models over the same samples would otherwise re-read and re-decode every image per
model (what the MLL reference code does). Models that share a transform (``preprocess_key``) share
the preprocessed tensors; the cache keeps as many transforms as fit in ``budget_bytes``.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from PIL import Image, UnidentifiedImageError

from .graph import IMAGE_SUFFIXES

UNREADABLE = (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError)


def open_rgb(path: Path) -> Image.Image | None:
    """The image as RGB, or None when it cannot be read (the caller counts it)."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("P", "LA") or (image.mode == "RGBA"):
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            return image.convert("RGB")
    except UNREADABLE:
        return None


def class_folder_images(folder: Path) -> list[tuple[Path, str | None]]:
    """Every image file under ``folder`` (sorted, sub-folders included) with the name of the folder that
    holds it, or None for files directly in ``folder``: an ImageFolder's images and their class names."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return [(file, file.parent.name if file.parent != Path(folder) else None) for file in files]


class ImageCache:
    """Preprocessed tensors for chunks of a fixed list of image files, kept per transform.

    Paths are relative to ``root`` (a graph's sample folder), or, with ``root=None``, read as given.
    Entries are keyed by ``(preprocess_key, chunk start)`` and evicted least-recently-used past
    ``budget_bytes``; while a graph's tensors fit, every image is decoded once per transform.
    """

    def __init__(self, root: Path | None, paths: list[str], budget_bytes: int = 2 * 1024**3):
        self.root = Path(root) if root is not None else None
        self.paths = paths
        self.budget = budget_bytes
        self._chunks: OrderedDict[tuple[str, int, int], tuple[Any, list[int]]] = OrderedDict()
        self._bytes = 0
        self.unreadable: set[int] = set()
        self.decodes = 0

    def chunk(self, key: str, preprocess: Callable[[Image.Image], Any], start: int, stop: int) -> tuple[Any, list[int]]:
        """``(tensor [n_ok, 3, H, W], indices of the readable images)`` for images ``start:stop``."""
        cache_key = (key, start, stop)
        if cache_key in self._chunks:
            self._chunks.move_to_end(cache_key)
            return self._chunks[cache_key]
        import torch

        stacked, ok = [], []
        for i in range(start, stop):
            if i in self.unreadable:
                continue
            image = open_rgb(self.path(i))
            self.decodes += 1
            if image is None:
                self.unreadable.add(i)
                print(f"Warning: unreadable image skipped: {self.path(i)}", file=sys.stderr)
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
