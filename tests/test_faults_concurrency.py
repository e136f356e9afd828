"""Fault injection across processes (issue 21): a second process changing labels while ``register``
runs, and settings written by several processes at once. Real ``mllzoo`` subprocesses running at
the same time on real SQLite files; nothing may be lost or silently wrong."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import run_cli
from helpers import (
    GOOD,
    assert_one_line,
    copy_with_samples,
    faulty_env,
    slow_register,
    stored_label,
)

pytestmark = pytest.mark.slow  # mllzoo CLI subprocesses: `make test-fast` leaves this module out


def test_import_and_remove_refuse_a_model_a_running_register_claims(
    faulty_site, graph_registry, good_label_file, tmp_path
):
    clean_db, label_file = good_label_file
    db = tmp_path / "r.db"
    copy_with_samples(graph_registry, db)
    proc = slow_register(faulty_site, db)
    env = faulty_env(faulty_site, db)
    imported = run_cli("labels", "import", str(label_file), env=env)
    removed = run_cli("labels", "remove", GOOD, env=env)
    replaced = run_cli("labels", "import", "--replace", str(label_file), env=env)
    still_running = proc.poll() is None
    out, err = proc.communicate(timeout=180)
    assert still_running  # the refusals really happened while register ran
    for result in (imported, removed, replaced):
        assert result.returncode == 2, result.stderr
        assert_one_line(result.stderr, f"{GOOD}: it is claimed for labeling", f"process {proc.pid}")
    assert proc.returncode == 0, err
    assert stored_label(db, GOOD) == stored_label(
        clean_db, GOOD
    )  # every image seen, none marked undecodable


def test_register_never_publishes_a_label_whose_saved_parts_vanished(
    faulty_site, graph_registry, tmp_path
):
    db = tmp_path / "r.db"
    copy_with_samples(graph_registry, db)
    proc = slow_register(faulty_site, db)
    with sqlite3.connect(
        db
    ) as conn:  # what an older mllzoo's import, or a hand edit, does underneath it
        conn.execute("delete from label_parts")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode != 0
    assert_one_line(
        err, f"{GOOD} was not labeled", "saved parts vanished from the registry while it ran"
    )
    assert stored_label(db, GOOD) is None
    resumed = run_cli("register", GOOD, env=faulty_env(faulty_site, db))
    assert resumed.returncode == 0, resumed.stderr


# settings written by several processes at once -------------------------------------------------------

WRITER = """
import sys
from mllzoo.store import config
worker, calls = int(sys.argv[1]), int(sys.argv[2])
for n in range(calls):
    if worker % 2:
        config.set_setting("captioner", ("templates", "openai")[n % 2])
    else:
        config.set_setting("embedder", f"w{worker}-{n}")
    config.read_config()  # never a half-written or corrupt file
print(("templates", "openai")[(calls - 1) % 2] if worker % 2 else f"w{worker}-{calls - 1}")
"""


def test_concurrent_config_writers_never_corrupt_the_file_or_lose_an_update(tmp_path):
    import json

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "home")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(worker), "150"],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for worker in range(4)
    ]
    results = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], [err for _, err in results]
    final = json.loads((tmp_path / "home" / "mllzoo" / "config.json").read_text())
    assert final["captioner"] in {out.strip() for out, _ in results[1::2]}
    assert final["embedder"] in {out.strip() for out, _ in results[0::2]}
    assert sorted(p.name for p in (tmp_path / "home" / "mllzoo").iterdir()) == [
        "config.json",
        "config.json.lock",
    ]


def test_simultaneous_config_set_commands_keep_both_settings(tmp_path):
    import json

    for pair in range(8):
        env = {"XDG_CONFIG_HOME": str(tmp_path / f"home{pair}")}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "mllzoo", "config", "set", *args],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in (["captioner", "openai"], ["embedder", "faulty-hash"])
        ]
        assert [proc.wait(timeout=120) for proc in procs] == [0, 0], [
            proc.stderr.read() for proc in procs
        ]
        final = json.loads((tmp_path / f"home{pair}" / "mllzoo" / "config.json").read_text())
        assert final == {"captioner": "openai", "embedder": "faulty-hash"}, pair


def test_register_on_an_unreachable_ray_address_gives_up_in_one_line(
    faulty_site, graph_registry, tmp_path
):
    pytest.importorskip("ray")
    db = tmp_path / "r.db"
    copy_with_samples(graph_registry, db)
    started = time.time()
    result = run_cli(
        "register",
        GOOD,
        "--executor",
        "ray",
        "--address",
        "127.0.0.1:1",
        env=faulty_env(faulty_site, db),
        timeout=120,
    )
    assert time.time() - started < 60
    assert result.returncode == 2, result.stderr
    assert_one_line(
        result.stderr,
        "could not join the Ray cluster at 127.0.0.1:1: nothing accepted a connection",
    )
    assert stored_label(db, GOOD) is None
