"""Decoding worker processes (``register --decode-workers N``): labels byte-identical to in-process
decoding, undecodable files still named, a transform that cannot be sent decoded here, and no worker
left behind by SIGTERM, Ctrl-C or SIGKILL of the driver. Real tiny open_clip models, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli
from helpers import stored_label
from mllzoo.graph.concept_graph import build_graph, save_graph
from mllzoo.labeling.compute import LocalExecutor
from mllzoo.labeling.driver import label_models
from mllzoo.models.catalog import discover_models
from mllzoo.store.registry import Registry

pytestmark = pytest.mark.slow  # worker processes import torch: seconds each


def labeled(folder: Path, sample_folder: Path, workers: int, name: str):
    """The tiny models labeled in chunks of 4 (so the workers decode ahead) with ``workers``; the
    report and every stored label's bytes."""
    registry = Registry(folder / f"{name}.db")
    graph = build_graph(sample_folder)
    save_graph(registry, graph, str(sample_folder))
    entries = [e for e in discover_models().values() if e.spec.family == "tinyclip"]
    report = label_models(
        registry,
        graph,
        sample_folder,
        entries,
        device="cpu",
        progress=False,
        chunk=4,
        batch_size=3,
        executor=LocalExecutor(decode_workers=workers),
    )
    registry.close()
    return report, {e.spec.id: stored_label(registry.path, e.spec.id) for e in entries}


def test_labels_decoded_by_workers_are_byte_identical(tmp_path, sample_folder, tinyclip_plugin):
    (sample_folder / "dog.n.01" / "broken.png").write_bytes(b"not a png")
    here, here_labels = labeled(tmp_path, sample_folder, 0, "here")
    workers, worker_labels = labeled(tmp_path, sample_folder, 2, "workers")
    assert len(here.labeled) == 2 and sorted(workers.labeled) == sorted(here.labeled)
    assert worker_labels == here_labels and all(here_labels.values())
    assert (workers.image_decodes, workers.undecodable_files) == (
        here.image_decodes,
        ["dog.n.01/broken.png"],
    )


def test_a_transform_that_cannot_be_sent_is_decoded_here(
    tmp_path, sample_folder, tinyclip_plugin, monkeypatch, capsys
):
    here, here_labels = labeled(tmp_path, sample_folder, 0, "here")
    load = tinyclip_plugin.load

    def load_with_a_local_transform(spec, device, dtype):
        model = load(spec, device, dtype)
        original = model.preprocess
        model.preprocess = lambda image: original(image)  # a lambda cannot be pickled
        return model

    monkeypatch.setattr(tinyclip_plugin, "load", load_with_a_local_transform)
    _, labels = labeled(tmp_path, sample_folder, 1, "unsendable")
    assert labels == here_labels
    notes = [line for line in capsys.readouterr().err.splitlines() if "decoding workers" in line]
    assert len(notes) == 1, notes  # once, not per chunk or per model
    assert notes[0].startswith(
        "Note: the image transform 'clip32' cannot be sent to decoding workers ("
    )
    assert notes[0].endswith("its images are decoded in this process")


def test_ray_refuses_decode_workers(tmp_path):
    done = run_cli(
        "--registry",
        str(tmp_path / "r.db"),
        "register",
        "--executor",
        "ray",
        "--decode-workers",
        "2",
    )
    assert done.returncode == 2 and "--decode-workers goes with the local executor" in done.stderr


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def decoding_register(tmp_path: Path, sample_folder: Path, tinyclip_site: Path):
    """A slow ``mllzoo register --decode-workers 2`` process in its own process group (as a terminal
    job), once its workers run and it has saved a part; with the pids of its child processes."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tinyclip_site), os.environ.get("PYTHONPATH", "")]),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
    }
    assert run_cli("graph", "build", "--samples", str(sample_folder), env=env).returncode == 0
    args = ["--decode-workers", "2", "--chunk-size", "4", "--batch-size", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mllzoo", "register", *args],
        env={**env, "TINYCLIP_SLOW": "0.5"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        spawned = {
            pid
            for pid in children(proc.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        }
        if len(spawned) >= 2 and saved_parts(tmp_path / "r.db"):
            return proc, children(proc.pid)
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"no running decoding workers: {proc.communicate()}")


def saved_parts(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select count(*) from label_parts").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def gone_soon(pids: set[int], seconds: float = 20) -> set[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if alive(p)}


@pytest.mark.parametrize(
    "how, status",
    [("SIGTERM to the driver", 143), ("Ctrl-C to the job", 130), ("SIGKILL to the driver", -9)],
)
def test_no_decoding_worker_outlives_the_driver(
    tmp_path, sample_folder, tinyclip_site, how, status
):
    proc, workers = decoding_register(tmp_path, sample_folder, tinyclip_site)
    if how.startswith("SIGTERM"):
        proc.send_signal(signal.SIGTERM)
    elif how.startswith("Ctrl-C"):
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: the whole process group
    else:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert gone_soon(workers) == set(), (how, err)
    if status > 0:
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert err.strip().splitlines()[-1] == ("Terminated." if status == 143 else "Interrupted.")
