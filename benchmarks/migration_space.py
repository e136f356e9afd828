"""How much disk a registry upgrade needs, and how large the upgraded file is, with and without the
backup and compaction of :mod:`mllzoo.store.upgrade`.

Turns a copy of a registry back into an older schema (m004, the previous release, and m002, before
checksums; the tests' helpers do it), compacts it as a shipped file is, and upgrades it by opening it, once as
mllzoo does and once as before (no backup, no ``VACUUM``), while a thread samples every 2 ms the bytes
the folder's files and the process's deleted temporary files take. Prints the peak beyond the old file,
as a multiple of its size: what ``upgrade.space_factor`` must cover.

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/migration_space.py [--registry registry.db]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import make_pre_checksum, unbind  # noqa: E402  (the tests' schema downgrades)

from mllzoo.store import upgrade  # noqa: E402
from mllzoo.store.registry import Registry  # noqa: E402


def taken(folder: Path) -> int:
    """Bytes on disk of the folder's files and of this process's open, deleted files (SQLite's temporary
    files are unlinked as soon as they are made)."""
    total = sum(p.stat().st_blocks * 512 for p in folder.iterdir() if p.is_file())
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)"):
                total += os.fstat(int(fd)).st_blocks * 512
        except OSError:
            continue
    return total


def peak_while(folder: Path, work) -> int:
    """The most bytes :func:`taken` saw while ``work()`` ran."""
    peak, done = [taken(folder)], threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], taken(folder))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], taken(folder))


def old_copy(source: Path, folder: Path, schema: str) -> Path:
    path = folder / "registry.db"
    shutil.copy(source, path)
    (make_pre_checksum if schema == "m002" else unbind)(path)
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")
    return path


def measure(source: Path, schema: str, as_before: bool) -> tuple[int, int, int]:
    """(old size, peak bytes beyond it, upgraded size) of one upgrade in a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="mllzoo-upgrade-") as name:
        folder = Path(name)
        path = old_copy(source, folder, schema)
        size = path.stat().st_size
        saved = upgrade.backup, upgrade.compact
        if as_before:
            upgrade.backup, upgrade.compact = (lambda *a: False), (lambda *a: None)
        try:
            peak = peak_while(folder, lambda: Registry(path).close())
        finally:
            upgrade.backup, upgrade.compact = saved
        after = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("registry.db"))
        backups = sum(p.stat().st_size for p in folder.glob("registry.db.bak-*"))
        return size, peak - size, after - backups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default=str(ROOT / "registry.db"))
    args = parser.parse_args()
    for schema in ("m004", "m002"):
        for as_before in (True, False):
            size, extra, after = measure(Path(args.registry), schema, as_before)
            how = "as before (no backup, no VACUUM)" if as_before else "with backup and VACUUM"
            print(
                f"from {schema}, {how}: old file {size / 1e6:.1f} MB; peak disk beyond it "
                f"{extra / 1e6:.1f} MB ({extra / size:.2f}x its size); upgraded file and journal "
                f"{after / 1e6:.1f} MB ({after / size:.2f}x)"
            )
    print(
        f"refused below: {upgrade.SPACE_FACTOR}x the file's size free, "
        f"{upgrade.CONVERSION_SPACE_FACTOR}x from before m004_label_blocks"
    )


if __name__ == "__main__":
    main()
