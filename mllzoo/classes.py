"""Class files: one class per line, UTF-8, blank lines and ``#`` comments ignored."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

from .errors import MllzooError

MAX_CLASSES = 5_000  # zero-shot over more classes is beyond what selection is tuned for


def read_classes(path: str | Path) -> list[str]:
    """The class names of a file (``-`` is standard input), in order; bad files are one-line user errors."""
    path = Path(path)
    if str(path) == "-":
        data = sys.stdin.buffer.read()
    elif not path.exists() or path.is_dir():  # pipes such as <(...) are not regular files but read fine
        raise MllzooError(f"class file not found: {path}")
    else:
        data = path.read_bytes()
    return parse_classes(data, str(path))


def parse_classes(data: bytes, path: str) -> list[str]:
    """The class names in ``data``, checked as a class file's are; ``path`` names the source in errors."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MllzooError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    names = [line.strip() for line in text.splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    for number, name in enumerate(names, 1):
        control = next((c for c in name if unicodedata.category(c) == "Cc"), None)
        if control is not None:  # ESC and friends would drive the terminal that prints the name
            raise MllzooError(f"{path}: class {number} ({name.encode('unicode_escape').decode('ascii')}) contains "
                              f"the control character U+{ord(control):04X}; class names must be plain text")
    if not names:
        raise MllzooError(f"{path} lists no classes (one class per line; # starts a comment)")
    seen: set[str] = set()
    duplicates = [n for n in names if n in seen or seen.add(n)]
    if duplicates:
        raise MllzooError(f"{path} lists duplicate classes: {', '.join(sorted(set(duplicates))[:5])}")
    if len(names) > MAX_CLASSES:
        raise MllzooError(f"{path} lists {len(names)} classes; at most {MAX_CLASSES} are supported")
    return names


def display_name(name: str) -> str:
    """Raw spellings read as words: ``Apply_Eye_Makeup`` -> ``Apply Eye Makeup``."""
    return " ".join(name.replace("_", " ").split())
