"""Upgrading an older registry (issue 27, item 15): said in one line before it starts, a read-only backup
beside it that is never taken for the registry, compacted afterwards, refused up front on a disk that
cannot hold it, and consistent after a full disk or a SIGKILL in the middle. Real SQLite files, real
``mllzoo`` processes, a real small tmpfs for the full disk."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from helpers import (
    copy_registry,
    fill,
    make_pre_checksum,
    ok,
    one_line_error,
    recommend,
    sha1,
    tmpfs,
    unbind,
)

NEWEST = "m006_claim_leases"


def schema(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("select name from _sqlite_migrations order by rowid desc").fetchone()[0]


def integrity(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("pragma integrity_check").fetchone()[0]


def unused_share(path: Path) -> float:
    with sqlite3.connect(path) as conn:
        pages = conn.execute("pragma page_count").fetchone()[0]
        return conn.execute("pragma freelist_count").fetchone()[0] / pages


def test_an_upgrade_is_said_backed_up_read_only_and_compacted(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    want = ok(recommend(world, env))
    make_pre_checksum(path)  # schema m002: m004 converts every label and drops the old arrays
    old = sha1(path)
    result = run_cli("models", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"Note: upgrading registry {path} from schema m002_node_embeddings to {NEWEST} "
        f"(4 migrations), keeping the old file as r.db.bak-m002"
    ]
    backup = tmp_path / "r.db.bak-m002"
    assert backup.stat().st_mode & 0o777 == 0o444
    assert schema(backup) == "m002_node_embeddings" and integrity(backup) == "ok"
    assert schema(path) == NEWEST and unused_share(path) < 0.1  # compacted
    wal = tmp_path / "r.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert ok(recommend(world, env)) == want
    assert run_cli("models", env=env).stderr == ""  # said once, at the upgrade only
    make_pre_checksum(path)  # a second upgrade from the same schema keeps the first backup
    ok(run_cli("models", env=env))
    assert sorted(p.name for p in tmp_path.glob("r.db.bak-*")) == [
        "r.db.bak-m002",
        "r.db.bak-m002-2",
    ]
    assert old != sha1(path)


def test_an_upgrade_that_frees_little_is_not_vacuumed_and_grows_nothing(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    unbind(path)  # schema m004, the previous release: m005 rewrites every block's checksum
    with sqlite3.connect(path) as conn:
        conn.execute("vacuum")
    size = path.stat().st_size
    ok(run_cli("models", env=env))
    assert schema(path) == NEWEST and path.stat().st_size <= size * 1.1
    assert (tmp_path / "r.db.bak-m004").exists()


def test_the_backup_is_never_taken_for_the_registry(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    make_pre_checksum(path)
    ok(run_cli("models", env=env))
    backup = tmp_path / "r.db.bak-m002"
    before = sha1(backup)
    link = tmp_path / "current.db"
    link.symlink_to(backup)
    listing = sorted(p.name for p in tmp_path.iterdir())
    for target in (backup, link):
        for args in (["models"], ["register"]):  # as root too, who could write a 0444 file
            result = run_cli("--registry", str(target), *args, env=env)
            one_line_error(result, "is the backup mllzoo kept", "copy it over the registry")
    assert sha1(backup) == before and schema(backup) == "m002_node_embeddings"
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no -wal, no backup of it


def test_a_served_registry_is_never_upgraded(world, tmp_path):
    from mllzoo.errors import MllzooError
    from mllzoo.store.registry import Registry

    path, _ = copy_registry(world, tmp_path)
    unbind(path)
    before = sha1(path)
    for how in ({"immutable": True}, {"read_only": True}):
        with pytest.raises(MllzooError, match="needs a schema upgrade .* never made here"):
            Registry(path, create=False, write=False, **how)
    assert sha1(path) == before and not list(tmp_path.glob("*bak*"))


def test_a_nearly_full_disk_is_refused_up_front_saying_what_it_needs(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    unbind(path)
    size = path.stat().st_size
    with tmpfs(tmp_path / "disk", f"{2 * size // 1024 + 64}k") as disk:  # room for 1x, not 2.5x
        on_disk = disk / "r.db"
        on_disk.write_bytes(path.read_bytes())
        before = sha1(on_disk)
        result = run_cli("models", env={**env, "MLLZOO_REGISTRY": str(on_disk)})
        one_line_error(result, "needs a schema upgrade", "about 2.5x its size free", "nothing was")
        assert sha1(on_disk) == before and [p.name for p in disk.iterdir()] == ["r.db"]


def test_a_disk_that_fills_during_the_upgrade_leaves_the_old_registry_consistent(
    world, tmp_path, monkeypatch
):
    """The space check passed (a misjudged factor, another writer on the disk): SQLite rolls the
    migration back and the registry is as it was; once space is freed the upgrade completes."""
    from mllzoo.store import upgrade

    path, env = copy_registry(world, tmp_path)
    want = ok(recommend(world, env))
    make_pre_checksum(path)
    size = path.stat().st_size
    monkeypatch.setattr(upgrade, "CONVERSION_SPACE_FACTOR", 0.0)
    with tmpfs(tmp_path / "disk", f"{4 * size // 1024 + 256}k") as disk:
        on_disk = disk / "r.db"
        on_disk.write_bytes(path.read_bytes())
        env = {**env, "MLLZOO_REGISTRY": str(on_disk)}
        fill(disk)
        os.truncate(disk / "filler", (disk / "filler").stat().st_size - 160 * 1024)
        result = run_cli("models", env=env)  # room to open it, not for its backup or journal
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.splitlines()
        assert lines[0].startswith("Note: upgrading registry") and "disk is full" in lines[-1]
        assert lines[-1].startswith("Error: ") and len(lines) <= 3  # note, no-backup warning
        assert schema(on_disk) == "m002_node_embeddings" and integrity(on_disk) == "ok"
        assert not list(disk.glob("*.partial")) and not list(disk.glob(".*.partial"))
        for filler in disk.glob("filler*"):
            filler.unlink()
        assert ok(recommend(world, env)) == want


@pytest.mark.slow  # real processes at once
def test_processes_opening_an_old_registry_at_once_upgrade_it_once(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    want = ok(recommend(world, env))
    make_pre_checksum(path)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "mllzoo", "models", "--json"],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [run.communicate(timeout=300) + (run.returncode,) for run in runs]
    assert [code for _, _, code in results] == [0, 0, 0], results  # before: "database is locked"
    notes = [line for _, err, _ in results for line in err.splitlines()]
    assert len(notes) == 1 and notes[0].startswith("Note: upgrading registry"), notes
    assert [p.name for p in tmp_path.glob("r.db.bak-*")] == ["r.db.bak-m002"]
    assert ok(recommend(world, env)) == want


UPGRADE = "from mllzoo.store.registry import Registry; import sys; Registry(sys.argv[1]).close()"


@pytest.mark.slow  # real processes, killed
def test_sigkill_at_random_moments_of_an_upgrade_never_leaves_a_torn_registry(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    want = ok(recommend(world, env))
    make_pre_checksum(path)
    rng = random.Random(0)
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", UPGRADE, str(path)],
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the note: the upgrade starts now
        if schema(path) == NEWEST:
            proc.wait()
            break
        assert line.startswith("Note: upgrading registry"), line
        subprocess.run(["sleep", f"{rng.uniform(0, 0.08):.3f}"])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert integrity(path) == "ok"
        for backup in tmp_path.glob("r.db.bak-*"):  # a backup is whole, or not there
            assert integrity(backup) == "ok" and backup.stat().st_mode & 0o222 == 0
    assert ok(recommend(world, env)) == want
    assert schema(path) == NEWEST
    assert not list(tmp_path.glob(".*.partial"))  # those the killed runs left are cleared
