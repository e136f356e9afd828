"""Which images ``mllzoo predict`` reads, and their true class when a folder is laid out by class."""

from __future__ import annotations

from pathlib import Path

from .classes import display_name
from .errors import MllzooError
from .images import class_folder_images


def gather_images(paths: tuple[Path, ...] | list[Path], classes: list[str]) -> tuple[list[Path], list[str | None]]:
    """Files as given; folders walked. A sub-folder named like a class gives its images that truth."""
    by_folder = {display_name(c).lower(): c for c in classes}
    images: list[Path] = []
    truth: list[str | None] = []
    for path in paths:
        if path.is_file():
            images.append(path)
            truth.append(None)
        elif path.is_dir():
            for file, folder in class_folder_images(path):
                images.append(file)
                truth.append(by_folder.get(display_name(folder).lower()) if folder else None)
        else:
            raise MllzooError(f"no such file or folder: {path}")
    if not images:
        raise MllzooError("no images found in " + ", ".join(str(p) for p in paths))
    return images, truth
