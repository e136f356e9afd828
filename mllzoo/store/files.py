"""Files that appear whole or not at all: written to a temporary file of their own beside the target
(a unique name, so concurrent writers never share one), flushed to disk, given the mode a new file
would get, and only then replaced onto the target. A reader or a crash sees the old file or the new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def replaced_atomically(path: Path, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary stream whose content replaces ``path`` once the block ends without error; on any error the
    temporary file is removed, ``path`` is untouched and the error propagates."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
