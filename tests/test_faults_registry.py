"""Fault injection on registry files: damaged blobs, files that are not registries, read-only files and
folders, a newer schema, control characters in class files. Every case runs the real ``mllzoo`` in a
subprocess on a real SQLite file and must end in one clear line (or a correct result), never a
traceback, a silently wrong recommendation or a write to a file that is not an mllzoo registry.

Root ignores file permissions, so the read-only cases run ``mllzoo`` as the ``nobody`` user (through
``setpriv``) when the tests run as root.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from helpers import (
    MODEL,
    copy_registry,
    execute,
    make_pre_checksum,
    one_line_error,
    recommend,
    sha1,
)

NOBODY = 65534


@pytest.fixture
def labeled(world, tmp_path):
    return copy_registry(world, tmp_path)


# damaged blobs -------------------------------------------------------------------------------------


def test_a_truncated_label_blob_is_one_line_naming_the_model_and_the_repair(world, labeled):
    path, env = labeled
    execute(
        path,
        "update label_blocks set entries = substr(entries, 1, length(entries) - 3) where model_id = ?",
        (MODEL,),
    )
    error = one_line_error(
        recommend(world, env), MODEL, f"mllzoo labels remove {MODEL}", f"mllzoo register {MODEL}"
    )
    assert "do not fit" in error


def test_a_flipped_byte_in_a_label_blob_fails_its_checksum(world, labeled):
    path, env = labeled
    conn = sqlite3.connect(path)
    for node, data in conn.execute(
        "select node, entries from label_blocks where model_id = ? and length(entries) > 0", [MODEL]
    ).fetchall():  # every block a query could read
        data = bytearray(data)
        data[len(data) // 2] ^= 0x01  # same length, one bit off: only a checksum can tell
        conn.execute(
            "update label_blocks set entries = ? where model_id = ? and node = ?",
            [bytes(data), MODEL, node],
        )
    conn.commit()
    conn.close()
    error = one_line_error(recommend(world, env), MODEL, "checksum mismatch", "mllzoo register")
    root, _ = world
    predicted = run_cli(
        "predict", str(root / "task"), "--classes", str(root / "classes.txt"), env=env
    )
    one_line_error(predicted, MODEL, "checksum mismatch")
    assert error


def test_skip_damaged_goes_on_without_the_label_and_says_so(world, labeled, tmp_path):
    path, env = labeled
    clean = recommend(world, env, "-k", "3")
    assert (
        clean.returncode == 0 and MODEL in json.loads(clean.stdout)["models"]
    )  # it matters to the answer
    # the reference: the same registry with that model's label gone
    removed_dir = tmp_path / "removed"
    removed_dir.mkdir()
    removed, removed_env = copy_registry(world, removed_dir)
    execute(removed, "delete from label_blocks where model_id = ?", (MODEL,))
    execute(removed, "delete from labels where model_id = ?", (MODEL,))
    without = recommend(world, removed_env, "-k", "3")
    assert without.returncode == 0
    execute(
        path, "update label_blocks set lengths = substr(lengths, 2) where model_id = ?", (MODEL,)
    )
    skipped = recommend(world, env, "-k", "3", "--skip-damaged")
    assert skipped.returncode == 0, skipped.stderr
    warnings = skipped.stderr.strip().splitlines()
    assert (
        len(warnings) == 1
        and warnings[0].startswith(f"Warning: skipped {MODEL}")
        and "Traceback" not in skipped.stderr
    )
    got, want = json.loads(skipped.stdout), json.loads(without.stdout)
    assert got.pop("skipped") == [MODEL]
    assert got == want and MODEL not in got["models"]
    budget = recommend(world, env, "-k", "3", "--skip-damaged", "--max-models", "1")
    assert budget.returncode == 0 and MODEL not in json.loads(budget.stdout)["models"]
    one_line_error(recommend(world, env, "-k", "3"), MODEL)  # without the flag it stops


def test_a_truncated_node_embedding_blob_is_recomputed_with_one_warning(world, labeled):
    path, env = labeled
    clean = recommend(world, env)
    assert clean.returncode == 0
    before = sqlite3.connect(path).execute("select checksum from node_embeddings").fetchone()[0]
    execute(path, "update node_embeddings set data = substr(data, 1, 1000)")
    damaged = recommend(world, env)
    assert damaged.returncode == 0, damaged.stderr
    warnings = damaged.stderr.strip().splitlines()
    assert len(warnings) == 1 and "caption embeddings" in warnings[0] and "damaged" in warnings[0]
    assert json.loads(damaged.stdout) == json.loads(clean.stdout)
    after = sqlite3.connect(path).execute("select checksum from node_embeddings").fetchone()[0]
    assert after == before  # replaced by the same matrix: the next run reads it without a warning
    again = recommend(world, env)
    assert again.returncode == 0 and "damaged" not in again.stderr


def test_an_unknown_label_format_asks_for_relabeling(world, labeled):
    path, env = labeled
    execute(path, "update labels set format = 'ragged-topm-v9' where model_id = ?", (MODEL,))
    one_line_error(recommend(world, env), MODEL, "'ragged-topm-v9'", f"mllzoo register {MODEL}")


def test_a_damaged_label_part_is_redone_not_reused(registry):
    import numpy as np

    registry.save_label_part("f/a.b", "g", 0, {"x": np.arange(4)})
    registry.save_label_part("f/a.b", "g", 4, {"x": np.arange(4, 8)})
    conn = sqlite3.connect(registry.path)
    conn.execute("update label_parts set data = substr(data, 1, 8) where part = 4")
    conn.commit()
    assert list(registry.label_parts("f/a.b", "g")) == [0]


def test_a_damaged_cached_text_embedding_is_embedded_again(registry):
    import numpy as np

    registry.cache_embeddings(
        "remote", [("h1", "dog", np.ones(4, np.float32)), ("h2", "cat", np.zeros(4, np.float32))]
    )
    conn = sqlite3.connect(registry.path)
    conn.execute("update text_embeddings set checksum = 'crc32:00000000' where text_hash = 'h1'")
    conn.commit()
    assert list(registry.cached_embeddings("remote", ["h1", "h2"])) == ["h2"]


# files that are not (usable) registries ------------------------------------------------------------


def unchanged_after(result_of, path: Path) -> subprocess.CompletedProcess:
    """Run a command and check it left the file's bytes alone and made no SQLite side files."""
    before = path.read_bytes()
    result = result_of()
    assert path.read_bytes() == before
    assert (
        not path.with_name(path.name + "-wal").exists()
        and not path.with_name(path.name + "-shm").exists()
    )
    return result


def read_only_commands(world, path: Path) -> list[list[str]]:
    root, _ = world
    return [
        ["--registry", str(path), "recommend", str(root / "classes.txt")],
        ["--registry", str(path), "models", "--labeled"],
        ["--registry", str(path), "graph", "info"],
    ]


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("zero-byte", "is an empty file, not an mllzoo registry"),
        ("empty-sqlite", "is an empty SQLite database, not an mllzoo registry"),
        ("foreign-sqlite", "is an SQLite database but not an mllzoo registry"),
        ("random-bytes", "is not an SQLite file"),
    ],
)
def test_read_only_commands_never_write_to_a_file_that_is_not_a_registry(
    world, tmp_path, kind, expected
):
    path = tmp_path / f"{kind}.db"
    if kind == "zero-byte":
        path.write_bytes(b"")
    elif kind == "empty-sqlite":  # a valid SQLite header and no tables
        execute(path, "create table t (x)")
        execute(path, "drop table t")
    elif kind == "foreign-sqlite":
        execute(path, "create table invoices (id integer primary key, total real)")
        execute(path, "insert into invoices (total) values (12.5)")
    else:
        path.write_bytes(os.urandom(4096))
    for command in read_only_commands(world, path):
        # the lambda is called at once, inside this iteration: it cannot see a later `command`
        one_line_error(unchanged_after(lambda: run_cli(*command), path), expected)  # noqa: B023


def test_a_folder_and_a_missing_path_are_told_apart(world, tmp_path):
    root, _ = world
    one_line_error(
        run_cli("--registry", str(tmp_path), "recommend", str(root / "classes.txt")), "is a folder"
    )
    one_line_error(
        run_cli("--registry", str(tmp_path / "nope.db"), "recommend", str(root / "classes.txt")),
        "registry not found",
        "graph build",
    )


def test_a_newer_schema_is_refused_and_left_alone(world, labeled):
    path, env = labeled
    execute(
        path,
        "insert into _sqlite_migrations (migration_set, name, applied_at) values ('mllzoo', 'm999_future', 'x')",
    )
    unchanged_after(
        lambda: one_line_error(recommend(world, env), "newer mllzoo", "m999_future"), path
    )
    unchanged_after(lambda: one_line_error(run_cli("register", env=env), "newer mllzoo"), path)


def test_register_on_a_missing_path_leaves_no_file_behind(world, tmp_path):
    _, env = world
    path = tmp_path / "sub" / "new.db"
    result = run_cli("register", env={**env, "MLLZOO_REGISTRY": str(path)})
    one_line_error(result, "registry not found", "graph build")
    assert not path.exists() and not path.parent.exists()


def test_an_older_registry_is_migrated_with_checksums_when_writable(world, labeled):
    path, env = labeled
    want = recommend(world, env)
    make_pre_checksum(path)
    clean = recommend(world, env)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == want.stdout
    conn = sqlite3.connect(path)
    applied = {row[0] for row in conn.execute("select name from _sqlite_migrations")}
    assert {"m003_checksums", "m004_label_blocks", "m005_bound_label_blocks"} <= applied
    for table in ("label_blocks", "node_embeddings"):
        assert (
            conn.execute(f"select count(*) from {table} where checksum is null").fetchone()[0] == 0
        )
    assert (
        conn.execute("select count(*) from sqlite_master where name = 'label_arrays'").fetchone()[0]
        == 0
    )
    conn.close()


def test_a_blob_already_truncated_before_checksums_reads_as_damaged(world, labeled):
    path, env = labeled
    make_pre_checksum(path)
    execute(
        path,
        "update label_arrays set data = substr(data, 3) where model_id = ? and name = 'rank'",
        (MODEL,),
    )
    assert "Note: upgrading registry" in run_cli("models", env=env).stderr
    one_line_error(recommend(world, env), MODEL, "mllzoo register")


# control characters in class names -----------------------------------------------------------------


def test_control_characters_in_a_class_file_are_refused_without_reaching_the_terminal(
    world, tmp_path
):
    _, env = world
    classes = tmp_path / "classes.txt"
    classes.write_text("dog\ncat\x1b]0;pwned\x07\x1b[2J\n")
    error = one_line_error(run_cli("recommend", str(classes), env=env), "U+001B", "class 2")
    assert "\x1b" not in error and "\x07" not in error
    classes.write_text("dog\ncat\x9b31m\n")  # the one-byte CSI of C1
    assert "U+009B" in one_line_error(run_cli("recommend", str(classes), env=env))


# read-only files and folders -----------------------------------------------------------------------


def _as_user_prefix() -> list[str]:
    """How to run a command without root's power to ignore permissions; skips when that is impossible."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "running as root without setpriv: permissions cannot be tested (root ignores them)"
        )
    prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import mllzoo"], capture_output=True, cwd=ROOT
    )
    if probe.returncode != 0:
        pytest.skip(f"the nobody user cannot run this Python: {probe.stderr.decode()[-200:]}")
    return prefix


def run_as_user(*args: str, env: dict, home: Path) -> subprocess.CompletedProcess:
    """``mllzoo ARGS`` as a real subprocess of an unprivileged user (``nobody`` when we are root).

    That user cannot read the test's root-owned plugin site, so its labeled models count as
    uninstalled: selections pass ``--include-uninstalled``."""
    full_env = {
        **os.environ,
        **env,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    return subprocess.run(
        [*_as_user_prefix(), sys.executable, "-m", "mllzoo", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=300,
    )


@pytest.fixture
def user_space(world):
    """A folder the unprivileged user may enter, holding a copy of the labeled registry, a home and the
    class file; removed afterwards (pytest's own temp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="mllzoo-faults-"))
    try:
        folder.chmod(0o755)
        home = folder / "home"
        home.mkdir()
        (folder / "data").mkdir()
        path, env = copy_registry(world, folder / "data")
        shutil.copy(world[0] / "classes.txt", folder / "classes.txt")
        for item in [folder / "data", home, path, folder / "classes.txt"]:
            os.chown(item, NOBODY, NOBODY) if os.geteuid() == 0 else None
        yield folder, path, {"MLLZOO_REGISTRY": str(path)}, home
    finally:
        for item in folder.rglob("*"):
            if item.is_dir():
                item.chmod(0o755)
        shutil.rmtree(folder)


def test_a_read_only_registry_file_serves_reads_and_refuses_writes_in_one_line(
    user_space, sample_folder
):
    folder, path, env, home = user_space
    path.chmod(0o444)
    before = sha1(path)
    classes = str(folder / "classes.txt")
    result = run_as_user(
        "recommend", classes, "--json", "--include-uninstalled", env=env, home=home
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["models"]
    assert run_as_user("models", "--labeled", env=env, home=home).returncode == 0
    one_line_error(run_as_user("register", env=env, home=home), f"registry {path} is read-only")
    shutil.copytree(sample_folder, folder / "samples")
    one_line_error(
        run_as_user("graph", "build", "--samples", str(folder / "samples"), env=env, home=home),
        "is read-only",
    )
    assert sha1(path) == before


def test_a_registry_in_a_read_only_folder_is_told_apart_from_a_read_only_file(user_space):
    folder, path, env, home = user_space
    data = path.parent
    os.chown(data, 0, 0) if os.geteuid() == 0 else None
    data.chmod(0o555)  # the file itself stays writable by its owner
    before = sha1(path)
    result = run_as_user(
        "recommend",
        str(folder / "classes.txt"),
        "--json",
        "--include-uninstalled",
        env=env,
        home=home,
    )
    assert result.returncode == 0, result.stderr
    one_line_error(run_as_user("register", env=env, home=home), "read-only folder")
    assert sha1(path) == before and sorted(p.name for p in data.iterdir()) == ["r.db"]


def test_a_read_only_registry_that_needs_a_migration_says_so(user_space):
    folder, path, env, home = user_space
    make_pre_checksum(path)
    path.chmod(0o444)
    before = sha1(path)
    result = run_as_user(
        "recommend", str(folder / "classes.txt"), "--include-uninstalled", env=env, home=home
    )
    one_line_error(result, "needs a schema upgrade", "m006_claim_leases", "read-only")
    assert sha1(path) == before


@pytest.mark.slow  # real processes
def test_root_check_really_blocks_writes(user_space):
    """The harness itself: the user the read-only tests run as cannot write a 0444 file."""
    folder, path, env, home = user_space
    path.chmod(0o444)
    probe = subprocess.run(
        [*_as_user_prefix(), sys.executable, "-c", f"open({str(path)!r}, 'ab')"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert probe.returncode != 0 and "Permission denied" in probe.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_a_read_only_registry_read_in_a_writable_folder_is_writable_again_once_its_file_is(
    user_space,
):
    """recommend on a 0444 registry in a writable folder left read-only -wal/-shm files behind, and once
    the file was writable again every write failed with a false "in a read-only folder"."""
    folder, path, env, home = user_space
    path.chmod(0o444)
    result = run_as_user(
        "recommend",
        str(folder / "classes.txt"),
        "--json",
        "--include-uninstalled",
        env=env,
        home=home,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.db"]
    path.chmod(0o644)
    removed = run_as_user("labels", "remove", MODEL, env=env, home=home)
    assert removed.returncode == 0, removed.stderr
