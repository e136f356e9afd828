"""What a registry path holds, found before SQLite opens it, so that no command writes to a file it
cannot identify and every refusal is one line saying what is wrong.

Opening a file with SQLite for writing is not harmless: migrations would turn an empty or foreign
file into a registry and leave ``-wal``/``-shm`` files beside it. So the path is checked first
(missing, folder, not a regular file, unreadable, empty, read-only file or folder), then SQLite tells
whether it is a database at all, and a registry that cannot be written is opened read-only.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from mllzoo.errors import MllzooError
from mllzoo.store import upgrade


def check(path: Path, create: bool, write: bool) -> bool:
    """Whether the registry at ``path`` can be written; a one-line :class:`MllzooError` when it cannot be
    opened as asked (``create``: a missing file may be made; ``write``: the command must write)."""
    if path.is_dir():
        raise MllzooError(f"registry path {path} is a folder, not a file")
    if not path.exists():
        if not create:
            raise MllzooError(
                f"registry not found: {path} (make one with `mllzoo --registry {path} graph build "
                f"--samples DIR`)"
            )
        folder = _existing_ancestor(path.parent)
        if not folder.is_dir():
            raise MllzooError(f"cannot create registry {path}: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise MllzooError(f"cannot create registry {path}: folder {folder} is read-only")
        return True
    if not path.is_file():
        raise MllzooError(f"registry path {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise MllzooError(f"registry {path} cannot be read (permission denied)")
    real = path.resolve()  # a link's target: its folder is where SQLite writes the journal
    if upgrade.is_backup(real) or upgrade.is_backup(path):  # only ever read, even by root
        if write:
            raise upgrade.refuse_backup(path)
        return False
    writable = os.access(real, os.W_OK) and os.access(real.parent, os.W_OK | os.X_OK)
    if write and not writable:
        raise read_only(path)
    # Only stat here: closing a descriptor of a database file drops every SQLite lock this process holds
    # on it (POSIX), so the header is left to SQLite (see not_sqlite).
    if path.stat().st_size == 0 and not (
        create and write
    ):  # an empty file loses nothing by becoming a registry
        raise MllzooError(f"{path} is an empty file, not an mllzoo registry")
    return writable


def cannot_leave_journal(path: Path) -> bool:
    """Whether a read-only reader of ``path`` must open it immutable to leave nothing beside it: the
    file is read-only (its mode, or to this user) or its folder is, and no journal holds unsaved
    changes that only a locking reader would see."""
    real = path.resolve()
    journal = real.with_name(real.name + "-wal")
    if journal.exists() and journal.stat().st_size:
        return False
    return (
        not real.stat().st_mode & 0o222
        or not os.access(real, os.W_OK)
        or not os.access(real.parent, os.W_OK | os.X_OK)
    )


def not_sqlite(path: Path, exc: sqlite3.DatabaseError) -> MllzooError:
    """The one line for a file SQLite could not read as a database."""
    if "not a database" in str(exc):
        return MllzooError(f"{path} is not an SQLite file, so not an mllzoo registry")
    return MllzooError(f"{path} is not a readable mllzoo registry ({exc})")


def read_only(path: Path) -> MllzooError:
    """The one line for a write refused by the file's or its folder's permissions."""
    if path.exists() and not os.access(path, os.W_OK):
        return MllzooError(f"registry {path} is read-only")
    return MllzooError(
        f"registry {path} is in a read-only folder ({path.parent}), where SQLite cannot write "
        f"its journal"
    )


class ImmutableConnection(sqlite3.Connection):
    """A connection opened ``immutable``: SQLite takes no lock and reads no journal, so it cannot see
    another process write the file; a reader that must follow the file reopens it when it changes."""


def connect(path: Path, writable: bool, immutable: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode; read-only (``mode=ro``) when the registry cannot be written;
    ``immutable`` opens it read-only as a file nobody changes while it is open (no lock, no journal read).

    A WAL-mode file that its reader cannot write may need its shared-memory index rebuilt, which a
    read-only connection cannot do; with no unsaved journal beside it, the file is then opened as
    ``immutable`` (nobody here can change it).
    """
    path = path.resolve()  # once: SQLite keeps a link's journal beside its target, so look there
    if writable:
        return sqlite3.connect(path, timeout=60, isolation_level=None)
    uri = f"file:{quote(str(path))}?mode=ro"
    journal = path.with_name(path.name + "-wal")
    read_only_file = not path.stat().st_mode & 0o222 and not journal.exists()
    if read_only_file or (immutable and not (journal.exists() and journal.stat().st_size)):
        # a file nobody may write, with no journal: opened ``mode=ro`` in a writable folder, SQLite would
        # leave -wal/-shm files as read-only as the file, and once it is writable again every write would
        # fail on them; an ``immutable`` open (mllzoo serve) likewise leaves nothing beside the file
        return _immutable(uri)
    conn = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
    try:  # (an immutable open with unsaved changes in the journal comes here, to read them)
        conn.execute("select count(*) from sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
    if journal.exists() and journal.stat().st_size:
        raise MllzooError(
            f"registry {path} is read-only and its journal {journal} holds unsaved changes: "
            f"open it once with write access"
        )
    return _immutable(uri)


def _immutable(uri: str) -> sqlite3.Connection:
    return sqlite3.connect(
        uri + "&immutable=1",
        uri=True,
        timeout=60,
        isolation_level=None,
        factory=ImmutableConnection,
    )


def _existing_ancestor(folder: Path) -> Path:
    folder = folder.absolute()
    while not folder.exists():
        folder = folder.parent
    return folder
