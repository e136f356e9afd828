"""Class files: one class per line, UTF-8, blank lines and ``#`` comments ignored."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

from mllzoo.errors import MllzooError

MAX_CLASSES = 5_000  # zero-shot over more classes is beyond what selection is tuned for
MAX_NAME_CHARS = 256  # the longest WordNet or benchmark class name is far shorter
MAX_FILE_BYTES = (
    8 * 1024**2
)  # MAX_CLASSES names of MAX_NAME_CHARS in UTF-8, with comments and blank lines


def unsafe_character(text: str) -> str | None:
    """What makes ``text`` unfit to print as a name (``the control character U+001B``), or None.

    Cc: ESC and friends would drive the terminal that prints the name; Cf: bidi overrides, zero-width
    and tag characters would make a name read as another or hide text in it. Class names, and the web
    form's other fields, are checked by this one rule."""
    for c in text:
        category = unicodedata.category(c)
        if category in ("Cc", "Cf"):
            kind = "control" if category == "Cc" else "invisible formatting"
            return f"the {kind} character U+{ord(c):04X}"
    return None


def read_classes(path: str | Path) -> list[str]:
    """The class names of a file (``-`` is standard input), in order; bad files are one-line user errors."""
    path = Path(path)
    if str(path) == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    elif path.is_dir():
        raise MllzooError(f"{path} is a folder: give the class file inside it (one class per line)")
    elif not path.exists():  # pipes such as <(...) are not regular files but read fine
        raise MllzooError(f"class file not found: {path}")
    else:
        try:
            with open(path, "rb") as stream:
                data = stream.read(MAX_FILE_BYTES + 1)  # a device such as /dev/zero never ends
        except OSError as exc:
            raise MllzooError(f"cannot read class file {path}: {exc.strerror or exc}") from None
    return parse_classes(data, str(path))


BINARY_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"BM": "a BMP image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a zip archive",
    b"\x1f\x8b": "a gzip archive",
    b"SQLite format 3\x00": "an SQLite database",
}


def binary_kind(data: bytes) -> str | None:
    """What a known binary file is, from its first bytes (an image given where a class file goes)."""
    if data[8:12] == b"WEBP" and data[:4] == b"RIFF":
        return "a WebP image"
    for signature, kind in BINARY_SIGNATURES.items():
        if data.startswith(signature) and (signature != b"BM" or b"\x00" in data[:64]):
            return kind
    return None


def parse_classes(data: bytes, path: str) -> list[str]:
    """The class names in ``data``, checked as a class file's are; ``path`` names the source in errors
    (the web pages' pasted and uploaded lists go through here too)."""
    if len(data) > MAX_FILE_BYTES:
        raise MllzooError(
            f"{path} is larger than {MAX_FILE_BYTES // 1024**2} MB; a class file lists at most "
            f"{MAX_CLASSES} names of at most {MAX_NAME_CHARS} characters"
        )
    kind = binary_kind(data)
    if kind:
        raise MllzooError(
            f"{path} is {kind}, not a text file: a class file lists one class name per line"
        )
    if data.count(0) * 4 > len(data):  # every other byte NUL: UTF-16 (with a BOM or not), not UTF-8
        raise MllzooError(
            f"{path} looks like UTF-16 text (every other byte is NUL): save it as UTF-8"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MllzooError(
            f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    names = [line.strip() for line in text.splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    for number, name in enumerate(names, 1):
        if len(name) > MAX_NAME_CHARS:  # the tokenizer's memory grows with it: 10 MB needed 3.6 GB
            raise MllzooError(
                f"{path}: class {number} is {len(name)} characters long; at most {MAX_NAME_CHARS}"
            )
        problem = unsafe_character(name)
        if problem:
            raise MllzooError(
                f"{path}: class {number} ({name.encode('unicode_escape').decode('ascii')}) contains "
                f"{problem}; class names must be plain text"
            )
    if not names:
        raise MllzooError(f"{path} lists no classes (one class per line; # starts a comment)")
    seen: set[str] = set()
    duplicates = []
    for n in names:
        if n in seen:
            duplicates.append(n)
        seen.add(n)
    if duplicates:
        raise MllzooError(
            f"{path} lists duplicate classes: {', '.join(sorted(set(duplicates))[:5])}"
        )
    if len(names) > MAX_CLASSES:
        raise MllzooError(f"{path} lists {len(names)} classes; at most {MAX_CLASSES} are supported")
    return names


def display_name(name: str) -> str:
    """Raw spellings read as words: ``Apply_Eye_Makeup`` -> ``Apply Eye Makeup``."""
    return " ".join(name.replace("_", " ").split())
