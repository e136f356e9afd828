"""Runs a cluster can trust (issue 28): labeling claims are leases renewed by the running
``register``, a dead job's claim is taken over or cleared, SIGTERM ends a run as Ctrl-C does, and a
batch job's log shows progress. Real ``mllzoo`` processes killed with SIGKILL and SIGTERM, real SQLite
files, and claims made from another host by processes run under another hostname (``unshare -u``)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import run_cli
from helpers import (
    BAD,
    GOOD,
    assert_one_line,
    copy_with_samples,
    faulty_env,
    saved_parts,
    slow_register,
    stored_label,
)
from mllzoo.cli.main import cli
from mllzoo.labeling.progress import Progress
from mllzoo.store.registry import Registry

pytestmark = [
    pytest.mark.slow,  # mllzoo CLI subprocesses
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)"),
]

OTHER_HOST = "node-b"
CLAIM = """
import os, sys, time
from mllzoo.store.registry import Registry
claimed = Registry(sys.argv[1]).claim(sys.argv[2], sys.argv[3])
print(os.getpid(), "claimed" if claimed else "busy", flush=True)
if claimed and len(sys.argv) > 4:
    time.sleep(float(sys.argv[4]))
"""


def claim_as(host: str, db: Path, model_id: str, *hold: str) -> tuple[int, str, str]:
    """Claim ``model_id`` from a process whose hostname is ``host`` (its own UTS namespace), as a
    job on another node does; ``(its pid, "claimed" or "busy", its stderr)``."""
    command = [sys.executable, "-c", CLAIM, str(db), model_id, graph_of(db), *hold]
    if host != socket.gethostname():
        command = ["unshare", "-u", "sh", "-c", 'hostname "$0" && exec "$@"', host, *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    pid, answer = result.stdout.split()
    return int(pid), answer, result.stderr


def graph_of(db: Path) -> str:
    registry = Registry(db, create=False)
    try:
        return registry.require_graph_id()
    finally:
        registry.close()


def claims(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select model_id, host, pid from label_claims").fetchall()


def run_statuses(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [status for (status,) in conn.execute("select status from runs order by id")]


@pytest.fixture
def db(graph_registry, tmp_path) -> Path:
    return copy_with_samples(graph_registry, tmp_path / "r.db")


def set_lease(seconds: str) -> None:
    """The user's ``claim-lease`` (XDG_CONFIG_HOME is this test's own, and the processes it starts')."""
    assert CliRunner().invoke(cli, ["config", "set", "claim-lease", seconds]).exit_code == 0


def test_a_dead_jobs_claim_on_another_host_blocks_only_until_its_lease_runs_out(faulty_site, db):
    pid, answer, _ = claim_as(OTHER_HOST, db, GOOD)  # that job is gone, on a host we cannot see
    assert answer == "claimed" and claims(db) == [(GOOD, OTHER_HOST, pid)]
    env = faulty_env(faulty_site, db)
    busy = run_cli("register", GOOD, "--json", env=env)
    assert json.loads(busy.stdout)["busy"] == [GOOD] and stored_label(db, GOOD) is None
    removed = run_cli("labels", "remove", GOOD, env=env)
    assert removed.returncode == 2
    assert_one_line(removed.stderr, f"by process {pid} on {OTHER_HOST}")

    set_lease("1")
    time.sleep(1.5)
    result = run_cli("register", GOOD, "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["labeled"] == [GOOD] and stored_label(db, GOOD) is not None
    warnings = [line for line in result.stderr.splitlines() if "took over" in line]
    assert len(warnings) == 1, result.stderr
    assert re.fullmatch(
        rf"Warning: took over the labeling claim on {re.escape(GOOD)} from process {pid} on "
        rf"{OTHER_HOST}: not renewed for \d+ s \(claim-lease 1 s\)",
        warnings[0],
    )
    assert claims(db) == []  # released when its label was published


def test_a_running_register_renews_its_claim_and_a_killed_ones_claim_lapses(faulty_site, db):
    set_lease("1")
    proc = slow_register(faulty_site, db)  # ~9 s of work: many leases long
    try:
        time.sleep(2.5)
        _, answer, _ = claim_as(OTHER_HOST, db, GOOD)
        assert answer == "busy"  # renewed well within each 1 s lease
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert claims(db) == [(GOOD, socket.gethostname(), proc.pid)]  # a crash releases nothing
    _, answer, _ = claim_as(OTHER_HOST, db, GOOD)
    assert answer == "busy"  # not yet past the lease: another host cannot see that it died
    time.sleep(1.5)
    pid, answer, stderr = claim_as(OTHER_HOST, db, GOOD)
    assert answer == "claimed" and claims(db) == [(GOOD, OTHER_HOST, pid)]
    assert_one_line(stderr, f"from process {proc.pid} on {socket.gethostname()}: not renewed for")
    assert stderr.count("\n") == 1


def stop_outside_a_write(proc: subprocess.Popen, db: Path) -> None:
    """SIGSTOP ``proc`` at a moment it holds no write transaction: a job hung in its compute, where
    it spends its time. (One stopped inside a write blocks every writer, as SQLite must: the claim
    would wait out the busy timeout.)"""
    for _ in range(100):
        proc.send_signal(signal.SIGSTOP)
        conn = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            conn.execute("begin immediate")
            conn.execute("rollback")
            return
        except sqlite3.OperationalError:  # locked: let it finish that write, and try again
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        finally:
            conn.close()
    pytest.fail("the register never left its write transactions")


def test_a_register_whose_claim_was_taken_over_gives_the_model_up(faulty_site, db):
    set_lease("1")
    proc = slow_register(faulty_site, db)
    stop_outside_a_write(proc, db)  # a hung job: it renews nothing
    try:
        time.sleep(1.5)
        pid, answer, _ = claim_as(OTHER_HOST, db, GOOD)
        assert answer == "claimed"
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert_one_line(
        err,
        f"{GOOD} was not labeled: its labeling claim was taken over by process {pid} on "
        f"{OTHER_HOST}",
    )
    assert stored_label(db, GOOD) is None and saved_parts(db) >= 2  # its work kept, for the taker
    assert claims(db) == [(GOOD, OTHER_HOST, pid)]  # the taker's claim, untouched
    assert run_statuses(db) == ["failed"]


def test_sigterm_ends_register_as_ctrl_c_does(faulty_site, db, good_label_file):
    clean_db, _ = good_label_file
    proc = slow_register(faulty_site, db)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "Terminated."
    assert claims(db) == [] and run_statuses(db) == ["interrupted"]
    kept = saved_parts(db)
    assert kept >= 2
    resumed = run_cli(
        "register", GOOD, "--chunk-size", "1", "--json", env=faulty_env(faulty_site, db)
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["images_encoded"] == 30 - kept  # resumed from the kept parts
    assert stored_label(db, GOOD) == stored_label(clean_db, GOOD)


def test_sigterm_before_any_model_runs_exits_143_too(faulty_site, db):
    env = {**os.environ, **faulty_env(faulty_site, db, FAULTY_SLOW="5")}
    env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + os.environ.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mllzoo", "register", GOOD, "--chunk-size", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not run_statuses(db) and time.time() < deadline:  # in the first, slow batch
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert claims(db) == [] and run_statuses(db) == ["interrupted"]


def test_labels_unclaim_clears_dead_claims_all_or_none(faulty_site, db):
    registry = ["--registry", str(db)]
    pid, _, _ = claim_as(OTHER_HOST, db, GOOD)
    runner = CliRunner()
    cleared = runner.invoke(cli, [*registry, "labels", "unclaim", GOOD])
    assert cleared.exit_code == 0, cleared.output
    assert cleared.output.strip() == (
        f"cleared the claim on {GOOD} held by process {pid} on {OTHER_HOST} "
        f"(since {cleared.output.split('(since ')[1].split(')')[0]})"
    )
    assert claims(db) == []
    again = runner.invoke(cli, [*registry, "labels", "unclaim", GOOD])
    assert again.exit_code == 2 and "is not claimed for labeling" in again.output

    # a claim whose process runs on this host is refused, and then nothing is cleared
    bad_pid, _, _ = claim_as(OTHER_HOST, db, BAD)
    holder = subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(db), GOOD, graph_of(db), "60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().split()[1] == "claimed"
        refused = runner.invoke(cli, [*registry, "labels", "unclaim", BAD, GOOD])
        assert refused.exit_code == 2, refused.output
        assert f"which still runs on this host: stop it (kill {holder.pid})" in refused.output
        assert sorted(claims(db)) == [
            (BAD, OTHER_HOST, bad_pid),
            (GOOD, socket.gethostname(), holder.pid),
        ]
    finally:
        holder.kill()
        holder.wait()
    dead = runner.invoke(cli, [*registry, "labels", "unclaim", BAD, GOOD])  # now both are dead
    assert dead.exit_code == 0 and claims(db) == []


def test_a_batch_jobs_log_gets_progress_lines(faulty_site, db):
    result = run_cli(
        "register", GOOD, "--chunk-size", "10", env=faulty_env(faulty_site, db)
    )  # stderr is a pipe, as in a batch job
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("register: ")]
    number = r"[\d.]+ img/s, ETA \S+"
    assert re.fullmatch(
        rf"register: {re.escape(GOOD)}: chunk stored; models 0/1, images 10/30, {number}",
        lines[0],
    ), result.stderr
    assert re.fullmatch(
        rf"register: {re.escape(GOOD)}: labeled; models 1/1, images 30/30, {number}", lines[-1]
    )
    assert len(lines) == 2  # the later chunks came within 30 s of the first line
    assert "\r" not in result.stderr  # no bars


def test_progress_lines_count_saved_work_estimate_the_rest_and_follow_pass_overs():
    stream = io.StringIO()
    progress = Progress(3, 100, None, every=0, stream=stream)
    progress.pass_over()  # one of the three is busy elsewhere
    progress.saved(40)  # an earlier run saved these
    time.sleep(0.05)
    progress.chunk("f/a.b", 30)
    progress.chunk("f/a.b", 30)
    progress.model_done("f/a.b", "labeled")
    progress.model_done("f/c.d", "failed")
    lines = stream.getvalue().splitlines()
    assert [line.split(";")[0] for line in lines] == [
        "register: f/a.b: chunk stored",
        "register: f/a.b: chunk stored",
        "register: f/a.b: labeled",
        "register: f/c.d: failed",
    ]
    assert "models 0/2, images 70/200" in lines[0] and "models 1/2, images 100/200" in lines[2]
    rate = float(re.search(r"([\d.]+) img/s", lines[1]).group(1))  # type: ignore[union-attr]
    assert 0 < rate < 60 / 0.05  # computed images only, not the saved ones
    assert not lines[0].endswith("ETA unknown") and "ETA" in lines[0]


@pytest.mark.parametrize("value", ["0", "-5", "soon", "inf", "nan"])
def test_claim_lease_must_be_a_positive_number_of_seconds(value, db, user_config):
    from mllzoo.errors import MllzooError

    refused = CliRunner().invoke(cli, ["config", "set", "claim-lease", "--", value])
    assert refused.exit_code == 2
    assert refused.output.strip() == (
        f"Error: claim-lease must be a positive number of seconds, not {value!r}"
    )
    user_config.joinpath("mllzoo").mkdir(parents=True)  # a hand edit: refused where it is read
    user_config.joinpath("mllzoo", "config.json").write_text(json.dumps({"claim-lease": value}))
    registry = Registry(db)
    with pytest.raises(MllzooError, match="claim-lease must be a positive number of seconds"):
        registry.claim(GOOD, graph_of(db))
    registry.close()
    assert claims(db) == []


def test_a_claim_nobody_can_date_is_taken_over(db):
    from mllzoo.errors import set_warning_handler

    with sqlite3.connect(db) as conn:  # a hand edit, from before leases
        conn.execute(
            "insert into label_claims (model_id, graph_id, host, pid, claimed) values (?, ?, ?, ?, ?)",
            [GOOD, graph_of(db), OTHER_HOST, 4242, "yesterday"],
        )
    said: list[str] = []
    previous = set_warning_handler(lambda message, kind: said.append(message))
    registry = Registry(db)
    try:
        assert registry.claim(GOOD, graph_of(db), lease=600)
    finally:
        registry.close()
        set_warning_handler(previous)
    assert said == [
        f"took over the labeling claim on {GOOD} from process 4242 on {OTHER_HOST}: "
        "its time 'yesterday' is unreadable"
    ]
