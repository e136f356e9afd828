"""Upgrading a registry's schema: said before it starts, refused up front when the disk cannot hold it,
with a backup of the old file beside it, and compacted afterwards.

A migration rewrites much of the file (``m004_label_blocks`` converts every label, ``m005`` rewrites every
block's checksum), and in WAL mode each changed page is written once more into the journal, so the file
and its journal grew threefold (16.6 to 53 MB) until someone ran ``VACUUM`` by hand. Upgrades take
turns under a lock file beside the registry. The backup is made with
``VACUUM INTO`` (a consistent, compact copy even while other processes read) under a temporary name,
synced, then renamed into place read-only: a crash never leaves half a backup under the backup's name,
and a backup is never opened for writing (:func:`is_backup`), so it cannot be migrated in turn.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows: there upgrades are not serialised, and an abandoned partial
    # backup stays until removed by hand
    fcntl = None  # type: ignore[assignment]

from mllzoo.errors import MllzooError, note, warn

# Free space an upgrade needs beside the registry, as a multiple of the file's size (the file itself
# not counted): the backup (at most the file), the journal of the migrations, and, after a migration that
# drops a table, the compaction (VACUUM writes a temporary copy and a journal as large as the file).
# benchmarks/migration_space.py measured 2.01x from schema m004 (the previous release) and 8.47x from
# m002, whose labels m004_label_blocks converts while the old arrays are still there.
SPACE_FACTOR = 2.5
CONVERSION_SPACE_FACTOR = 9.0  # when m004_label_blocks is pending
# the share of unused pages an upgrade leaves for SQLite to reuse rather than vacuum the file
SLACK = 0.1
COUNTS = ("page_count", "freelist_count")
BACKUP = re.compile(r"\.bak-m\d{3}(-\d+)?$")


@contextlib.contextmanager
def one_at_a_time(path: Path) -> Iterator[None]:
    """Hold the upgrade lock of the registry at ``path`` (an exclusive lock on ``.NAME.upgrade-lock``
    beside it, waited for): processes opening one old registry at once would otherwise run the same
    migrations against each other, and all but one fail with "database is locked"."""
    real = path.resolve()
    lock = real.with_name(f".{real.name}.upgrade-lock")
    try:
        handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise MllzooError(
            f"registry {path} needs a schema upgrade, but its lock {lock} cannot be made "
            f"({_reason(exc)})"
        ) from None
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def is_backup(path: Path) -> bool:
    """Whether ``path`` is named as a backup kept before an upgrade (``registry.db.bak-m004``)."""
    return BACKUP.search(path.name) is not None


def refuse_backup(path: Path) -> MllzooError:
    """The one line for a command that would write a backup as if it were the registry."""
    return MllzooError(
        f"{path} is the backup mllzoo kept before upgrading a registry, never written as one: to go "
        f"back to it, copy it over the registry (cp {path} REGISTRY.db; chmod u+w REGISTRY.db)"
    )


def short(name: str) -> str:
    """``m004_label_blocks`` -> ``m004``: what a backup's name says of its schema."""
    return name.split("_", 1)[0]


def space_factor(pending: list[str]) -> float:
    """The free space the ``pending`` migrations need, as a multiple of the registry's size."""
    return CONVERSION_SPACE_FACTOR if "m004_label_blocks" in pending else SPACE_FACTOR


def check_space(path: Path, applied: str, pending: list[str]) -> None:
    """Refuse, before anything is written, an upgrade that the disk holding ``path`` cannot hold."""
    real = path.resolve()
    size = real.stat().st_size
    journal = real.with_name(real.name + "-wal")
    size += journal.stat().st_size if journal.exists() else 0
    factor = space_factor(pending)
    needed = int(factor * size)
    free = shutil.disk_usage(real.parent).free
    if free < needed:
        raise MllzooError(
            f"registry {path} needs a schema upgrade ({applied} to {pending[-1]}), which needs "
            f"about {factor:g}x its size free on its disk ({_mb(needed)}); only {_mb(free)} "
            f"{'is' if free < 2_000_000 else 'are'} free: free some space and run the command "
            f"again (nothing was changed)"
        )


def backup_path(path: Path, applied: str) -> Path:
    """Where the backup of ``path`` at schema ``applied`` goes: beside the file (a link's target), under a
    name no earlier backup has (one is never overwritten)."""
    real = path.resolve()
    target = real.with_name(f"{real.name}.bak-{short(applied)}")
    number = 1
    while target.exists():
        number += 1
        target = real.with_name(f"{real.name}.bak-{short(applied)}-{number}")
    return target


def announce(path: Path, applied: str, target: str, count: int, kept: Path) -> None:
    """The one line said before the upgrade starts."""
    note(
        f"upgrading registry {path} from schema {applied} to {target} "
        f"({count} migration{'s' if count > 1 else ''}), keeping the old file as {kept.name}"
    )


def backup(conn: sqlite3.Connection, path: Path, target: Path) -> bool:
    """Write a read-only, compact copy of the registry as it is to ``target``; ``False`` (with one warning
    saying why) when it cannot be made: the upgrade goes on without one.

    The copy is written to ``.TARGET.partial`` under an exclusive lock held until it is renamed into
    place: a partial file nobody holds locked was left by a killed process, and is removed."""
    _remove_abandoned(target)
    partial = target.with_name(f".{target.name}.partial")
    try:
        handle = os.open(partial, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        warn(f"no backup of registry {path} kept before its upgrade ({_reason(exc)})")
        return False
    mine = _locked(handle)
    try:
        if not mine:
            raise OSError(f"another process is writing {partial.name}")
        os.ftruncate(handle, 0)
        conn.execute("VACUUM INTO ?", [str(partial)])
        os.fsync(handle)
        os.chmod(partial, 0o444)
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        if mine:
            with contextlib.suppress(OSError):
                partial.unlink()
        warn(f"no backup of registry {path} kept before its upgrade ({_reason(exc)})")
        return False
    finally:
        os.close(handle)
    return True


def compact(conn: sqlite3.Connection, path: Path) -> None:
    """Empty the journal the migrations filled and, when they left more than :data:`SLACK` of the file
    unused (a dropped table), ``VACUUM`` it, so the upgraded file takes no more room than it needs.
    When that fails the registry is upgraded and consistent, only larger (one warning)."""
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, unused = (conn.execute(f"PRAGMA {name}").fetchone()[0] for name in COUNTS)
        if unused > SLACK * pages:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        warn(
            f"registry {path} is upgraded but not compacted ({_reason(exc)}); it works as it is "
            f"(`sqlite3 {path} VACUUM` compacts it)"
        )


def _remove_abandoned(target: Path) -> None:
    """Delete the partial backups of the registry that no process holds locked (killed ones left them)."""
    name = target.name[: target.name.rindex(".bak-")]
    for partial in target.parent.glob(f".{glob.escape(name)}.bak-*.partial"):
        try:
            handle = os.open(partial, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _locked(handle):
                partial.unlink()
        except OSError:
            pass
        finally:
            os.close(handle)


def _locked(handle: int) -> bool:
    """Take an exclusive lock on ``handle`` without waiting; whether it was free (always, without fcntl)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _reason(exc: Exception) -> str:
    return str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
