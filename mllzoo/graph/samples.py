"""The graph's sample set as an artifact with an identity: safe reads and checks against stored hashes.

The graph stores each sample image's hash (sha1 of the file bytes) and its path relative to the
sample folder. Everything that reads sample files (``graph build``, ``graph check``, labeling) goes
through :func:`read_regular`, which reads only regular files up to :data:`MAX_SAMPLE_BYTES` and never
blocks on a FIFO, and registry paths go through :func:`read_sample`, which refuses a path that
leaves the sample folder. :func:`check_samples` sorts a folder's images into present, missing and
different, which ``graph check`` prints and ``register`` enforces before running any model.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mllzoo.errors import MllzooError

MAX_SAMPLE_BYTES = 64 * 1024**2  # no sample image is larger; a bigger file is never read whole
MISSING, DIFFERENT = "missing", "different"
SHOWN_PATHS = 5  # paths listed per kind in a check's report
# the files a sample or task folder offers as images (graph build, class folders)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class UnavailableSample(Exception):
    """A sample file that cannot be used: ``kind`` is MISSING (absent, not a regular file, outside the
    sample folder) or DIFFERENT (larger than any sample the graph can hold)."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


def read_regular(path: Path, max_bytes: int = MAX_SAMPLE_BYTES) -> bytes:
    """The file's bytes when it is a regular file of at most ``max_bytes`` (symlinks followed).

    Opened non-blocking and checked on the open descriptor, so a FIFO or a device never blocks or
    floods the reader and a file swapped in between cannot slip through.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise UnavailableSample(
            MISSING, f"cannot open: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnavailableSample(MISSING, "not a regular file")
        if info.st_size > max_bytes:
            raise UnavailableSample(DIFFERENT, f"larger than {max_bytes} bytes")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while being read
        raise UnavailableSample(DIFFERENT, f"larger than {max_bytes} bytes")
    return data


def inside(root: Path, relative: str) -> Path:
    """``root / relative`` for a relative path that stays inside ``root``; anything else is MISSING.

    Registry paths are written by ``graph build`` as plain relative POSIX paths; an absolute path or
    a ``..`` component can only come from a damaged or hostile registry. Symlinks inside the folder
    are the folder owner's choice and are followed (to regular files only, see :func:`read_regular`).
    """
    if "\0" in relative:  # no file system path holds one: a damaged or hostile registry
        raise UnavailableSample(MISSING, "path holds a NUL byte")
    parts = PurePosixPath(relative).parts
    if not relative or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise UnavailableSample(MISSING, "path leaves the sample folder")
    return Path(root).joinpath(*parts)


def read_sample(root: Path, relative: str, max_bytes: int = MAX_SAMPLE_BYTES) -> bytes:
    """A registry image's bytes, read inside the sample folder only."""
    return read_regular(inside(root, relative), max_bytes)


def sample_hash(data: bytes) -> str:
    """The identity of a sample image, as the graph stores it."""
    return hashlib.sha1(data).hexdigest()


@dataclass
class SampleCheck:
    """Which of a graph's images a folder holds unchanged; indices follow the graph's image order."""

    graph: str
    folder: str
    images: int
    missing: list[int] = field(default_factory=list)
    different: list[int] = field(default_factory=list)

    @property
    def present(self) -> int:
        return self.images - len(self.missing) - len(self.different)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.different

    def unavailable(self) -> dict[int, str]:
        return {**{i: MISSING for i in self.missing}, **{i: DIFFERENT for i in self.different}}

    def to_dict(self, paths: list[str]) -> dict:
        return {
            "graph": self.graph,
            "samples": self.folder,
            "images": self.images,
            "present": self.present,
            "missing": len(self.missing),
            "different": len(self.different),
            "ok": self.ok,
            "missing_paths": sorted(paths[i] for i in self.missing)[:SHOWN_PATHS],
            "different_paths": sorted(paths[i] for i in self.different)[:SHOWN_PATHS],
        }

    def summary(self) -> str:
        return (
            f"{self.present} of {self.images} sample images of graph {self.graph} present and identical in "
            f"{self.folder}; {len(self.missing)} missing, {len(self.different)} different"
        )


def check_samples(graph_id: str, hashes: list[str], paths: list[str], root: Path) -> SampleCheck:
    """Read and hash every image of the graph in ``root`` (one read per image, no decoding)."""
    root = Path(root)
    if not root.is_dir():
        raise MllzooError(
            f"sample folder not found: {root} (the shipped graph's samples: `make samples`)"
        )
    check = SampleCheck(graph_id, str(root), len(paths))
    for i, (digest, relative) in enumerate(zip(hashes, paths)):
        try:
            same = sample_hash(read_sample(root, relative)) == digest
        except UnavailableSample as exc:
            (check.missing if exc.kind == MISSING else check.different).append(i)
            continue
        if not same:
            check.different.append(i)
    return check


def refuse_beyond_tolerance(
    missing: int, different: int, images: int, allow: float, folder: str
) -> None:
    """One line when more than ``allow`` (a share) of the images, or all of them, are missing or different."""
    if missing + different > allow * images or missing + different >= images:
        raise MllzooError(
            f"{missing} missing and {different} different of {images} sample images in {folder} "
            f"(more than {allow:.1%} or all); no label is stored from images it did not see: get the graph's samples "
            "(`make samples` for the shipped graph), verify them with `mllzoo graph check --samples DIR`, "
            "or accept the gap with --allow-missing FRACTION"
        )
