"""Which images ``mllzoo predict`` reads, their true class when a folder is laid out by class, and the
per-class report of a scored run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mllzoo.classes import display_name
from mllzoo.errors import MllzooError
from mllzoo.graph.images import class_folder_images, open_rgb
from mllzoo.graph.samples import IMAGE_SUFFIXES

CONFUSIONS = 3  # the most common wrong answers a class's report names


def gather_images(
    paths: tuple[Path, ...] | list[Path],
    classes: list[str],
    aliases: dict[str, str] | None = None,
) -> tuple[list[Path], list[str | None], dict[str, int]]:
    """Files as given; folders walked (only regular files count as images: a FIFO or a link to a device
    is never opened, which could block). A sub-folder named like a class (or like one of its ``aliases``,
    lowercase folder name -> class: its concept's wnid) gives its images that truth; the images of
    sub-folders named like no class are counted per folder (they are predicted, not scored)."""
    by_folder = {**(aliases or {}), **{display_name(c).lower(): c for c in classes}}
    images: list[Path] = []
    truth: list[str | None] = []
    unmatched: Counter[str] = Counter()
    for path in paths:
        if path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise MllzooError(
                    f"{path} is neither an image ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a folder "
                    f"of images; the class file goes after --classes"
                )
            images.append(path)
            truth.append(None)
        elif path.is_dir():
            for file, folder in class_folder_images(path):
                images.append(file)
                truth.append(by_folder.get(display_name(folder).lower()) if folder else None)
                if folder and truth[-1] is None:
                    unmatched[folder] += 1
        elif path.exists():  # a FIFO, device or socket (or a link to one): never opened
            raise MllzooError(f"{path} is not a regular file, so not an image")
        else:
            raise MllzooError(f"no such file or folder: {path}")
    if not images:
        raise MllzooError("no images found in " + ", ".join(str(p) for p in paths))
    return images, truth, dict(unmatched)


def require_readable(images: list[Path]) -> None:
    """Refuse a batch none of whose images decodes, before any model loads for it. Decoding stops at
    the first image that decodes, so a readable batch pays for one."""
    if not any(open_rgb(path) is not None for path in images):
        raise nothing_readable(len(images))


def nothing_readable(count: int) -> MllzooError:
    """As an empty folder is an error: nothing to answer with."""
    return MllzooError(f"none of the {count} image(s) could be read: nothing predicted")


def per_class_report(
    classes: list[str], truth: list[str | None], predicted: list[str | None]
) -> list[dict]:
    """Per class with scored images: how many, the share right, and its most common confusions."""
    by_class: dict[str, list[str]] = {}
    for t, p in zip(truth, predicted):  # one pass over the images, however many classes
        if t is not None and p is not None:
            by_class.setdefault(t, []).append(p)
    report = []
    for name in classes:
        answers = by_class.get(name)
        if not answers:
            continue
        wrong = Counter(p for p in answers if p != name)
        report.append(
            {
                "class": name,
                "images": len(answers),
                "accuracy": round(sum(p == name for p in answers) / len(answers), 6),
                "confused_with": [
                    {"class": c, "images": n} for c, n in wrong.most_common(CONFUSIONS)
                ],
            }
        )
    return report


def problem_of(path: str | Path) -> str:
    """Why an image got no label: gone since it was listed ("not found"), or not decodable."""
    return "unreadable" if Path(path).exists() else "not found"
