"""Label files stream: `labels export` and `labels import` hold one label at a time, whatever the file
holds, an import killed between labels leaves the registry as it was, and files laid out by the
previous writer (manifest first) still import.

Peak memory is traced allocations (numpy's and Python's, not SQLite's) of one export or import of 1
label against 16 labels of the same size: streaming keeps them alike (1.02-1.11x measured), holding
every label, as the code before did, made the second 2.6x (import) and 3.2x (export) the first.
benchmarks/label_transfer_memory.py measures whole processes at the paper's scale.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import reference
from conftest import run_cli_process
from helpers import save_plain_graph
from mllzoo import labels
from mllzoo.errors import MllzooError
from mllzoo.labeling.transfer import export_labels, import_labels
from mllzoo.store.registry import Registry

N_NODES, PER_NODE, DEPTH, N_LABELS = 300, 40, 100, 16
N_IMAGES = N_NODES * PER_NODE


def graph_registry(path: Path) -> tuple[Registry, str, np.ndarray]:
    """A registry holding only a graph: every sample its own image, as at the paper's scale."""
    samples = np.stack([np.repeat(np.arange(N_NODES), PER_NODE), np.arange(N_IMAGES)], 1).astype(
        np.int32
    )
    registry = Registry(path)
    return registry, save_plain_graph(registry, samples, N_NODES, N_IMAGES), samples


def model_id(i: int) -> str:
    return f"synthetic/model.m{i:02d}"


@pytest.fixture(scope="module")
def stocked(tmp_path_factory) -> tuple[Path, Path]:
    """``(registry with N_LABELS labels of about 1 MB each, the same registry with its graph only)``."""
    folder = tmp_path_factory.mktemp("streaming")
    registry, graph_id, samples = graph_registry(folder / "empty.db")
    registry.close()
    shutil.copy(folder / "empty.db", folder / "full.db")
    registry = Registry(folder / "full.db")
    rng = np.random.default_rng(0)
    for i in range(N_LABELS):
        rank = np.where(rng.random(N_IMAGES) < 0.2, 0, rng.geometric(1 / 60, N_IMAGES))
        rank = np.minimum(rank, N_NODES - 1).astype(np.int32)
        topm = rng.integers(0, N_NODES, (N_IMAGES, DEPTH)).astype(labels.index_dtype(N_NODES))
        label = reference.label_from_ranking(topm, samples, rank, N_NODES)
        registry.save_label(
            model_id(i), graph_id, labels.FORMAT, label.arrays(), {"n_nodes": N_NODES}
        )
    registry.close()
    return folder / "full.db", folder / "empty.db"


def traced_peak(work) -> int:
    """The most bytes ``work()`` held at once beyond what was held before it (traced allocations)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def exported(full: Path, count: int, target: Path) -> Path:
    registry = Registry(full, create=False)
    try:
        export_labels(registry, [model_id(i) for i in range(count)], target, force=True)
    finally:
        registry.close()
    return target


def imported(empty: Path, path: Path, target: Path) -> dict:
    shutil.copy(empty, target)
    registry = Registry(target, create=False)
    try:
        return import_labels(registry, [path])
    finally:
        registry.close()


def rewritten(source: Path, target: Path, order=lambda infos: infos, change=None) -> Path:
    """A copy of a label file, its members in ``order(infos)``, each through ``change(name, data)``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in order(old.infolist()):
            data = old.read(info.filename)
            new.writestr(info, change(info.filename, data) if change else data)
    return target


def stored_arrays(path: Path, count: int) -> list[dict]:
    registry = Registry(path, create=False, write=False)
    try:
        return [registry.load_label(model_id(i), "g")[1] for i in range(count)]
    finally:
        registry.close()


@pytest.mark.slow  # 16 labels written, read and stored several times (about 10 s)
def test_export_and_import_peak_memory_follows_one_label_not_the_file(
    stocked, tmp_path, monkeypatch
):
    full, empty = stocked
    monkeypatch.setenv("MLLZOO_LOAD_PLUGINS", "")  # no plugin import inside the measured work
    one, many = tmp_path / "one.mllzoo-labels", tmp_path / "many.mllzoo-labels"
    imported(empty, exported(full, 1, one), tmp_path / "warm.db")  # first-use imports, unmeasured
    export_one = traced_peak(lambda: exported(full, 1, one))
    export_many = traced_peak(lambda: exported(full, N_LABELS, many))
    import_one = traced_peak(lambda: imported(empty, one, tmp_path / "one.db"))
    import_many = traced_peak(lambda: imported(empty, many, tmp_path / "many.db"))
    label_bytes = sum(a.nbytes for a in stored_arrays(full, 1)[0].values())
    assert many.stat().st_size > 0.5 * N_LABELS * label_bytes  # the file does hold them all
    assert export_many < 1.5 * export_one, (export_one, export_many, label_bytes)
    assert import_many < 1.5 * import_one, (import_one, import_many, label_bytes)
    # and nothing was lost on the way: every label comes back array for array
    for want, got in zip(
        stored_arrays(full, N_LABELS), stored_arrays(tmp_path / "many.db", N_LABELS)
    ):
        assert all(np.array_equal(want[name], got[name]) for name in want)


@pytest.mark.slow  # a real process, killed
def test_an_import_killed_between_labels_leaves_the_registry_as_it_was(stocked, tmp_path):
    full, empty = stocked
    path = exported(full, N_LABELS, tmp_path / "many.mllzoo-labels")
    target = tmp_path / "target.db"
    shutil.copy(empty, target)
    wal = target.with_name(target.name + "-wal")
    one_label = full.stat().st_size / N_LABELS
    proc = subprocess.Popen(
        [sys.executable, "-m", "mllzoo", "labels", "import", str(path)],
        env={**os.environ, "MLLZOO_REGISTRY": str(target), "MLLZOO_LOAD_PLUGINS": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        if wal.exists() and wal.stat().st_size > 2 * one_label:  # two labels stored, uncommitted
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import ended before it was killed"
    with sqlite3.connect(target) as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        assert conn.execute("select count(*) from labels").fetchone() == (0,)
        assert conn.execute("select count(*) from label_blocks").fetchone() == (0,)
    done = run_cli_process(
        "labels",
        "import",
        str(path),
        env={"MLLZOO_REGISTRY": str(target), "MLLZOO_LOAD_PLUGINS": ""},
    )
    assert done.returncode == 0 and f"imported {N_LABELS} label(s)" in done.stdout, done.stderr
    for want, got in zip(stored_arrays(full, N_LABELS), stored_arrays(target, N_LABELS)):
        assert all(np.array_equal(want[name], got[name]) for name in want)


def test_a_file_laid_out_by_the_previous_writer_imports_the_same(stocked, tmp_path):
    """The previous writer put the manifest and its checksum first; readers go by member names."""
    full, empty = stocked
    new = exported(full, 2, tmp_path / "new.mllzoo-labels")
    with zipfile.ZipFile(new) as archive:
        assert archive.namelist()[-2:] == ["manifest.json", "manifest.sha256"]
    old = rewritten(
        new, tmp_path / "old.mllzoo-labels", order=lambda infos: infos[-2:] + infos[:-2]
    )
    assert imported(empty, old, tmp_path / "old.db")["imported"] == [model_id(0), model_id(1)]
    for want, got in zip(stored_arrays(full, 2), stored_arrays(tmp_path / "old.db", 2)):
        assert all(np.array_equal(want[name], got[name]) for name in want)


def test_a_damaged_label_found_while_streaming_imports_nothing(stocked, tmp_path):
    """The last label is checked only after the first ones went into the transaction: all roll back."""
    full, empty = stocked
    good = exported(full, 3, tmp_path / "good.mllzoo-labels")
    bad = rewritten(
        good,
        tmp_path / "bad.mllzoo-labels",
        change=lambda name, data: (
            data[:-1] + bytes([data[-1] ^ 1]) if name == "labels/2/lists.bin" else data
        ),
    )
    shutil.copy(empty, tmp_path / "t.db")
    registry = Registry(tmp_path / "t.db", create=False)
    try:
        with pytest.raises(MllzooError, match="checksum of labels/2/lists.bin does not match"):
            import_labels(registry, [bad])
        assert registry.labeled_model_ids("g") == set()
        assert registry.db.execute("select count(*) from label_blocks").fetchone() == (0,)
        assert registry.db.execute("select count(*) from label_claims").fetchone() == (0,)
    finally:
        registry.close()


def test_an_export_that_meets_a_damaged_label_midway_leaves_no_file(stocked, tmp_path):
    """The file is written while the labels are read: a damaged third label leaves nothing behind."""
    full, _ = stocked
    damaged = tmp_path / "damaged.db"
    shutil.copy(full, damaged)
    with sqlite3.connect(damaged) as conn:
        conn.execute(
            "update label_blocks set entries = zeroblob(length(entries)) "
            "where model_id = ? and node = 7",
            [model_id(2)],
        )
    out = tmp_path / "out" / "labels.mllzoo-labels"
    out.parent.mkdir()
    registry = Registry(damaged, create=False)
    try:
        with pytest.raises(MllzooError, match=f"{model_id(2)}.*damaged"):
            export_labels(registry, [model_id(i) for i in range(4)], out)
    finally:
        registry.close()
    assert list(out.parent.iterdir()) == []
