"""Labeling with tiny real open_clip models: exactness, idempotence, resume, failures, concurrency."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

import reference
from conftest import kill_register_after_parts, run_cli
from mllzoo import labels
from mllzoo.graph.concept_graph import build_graph, save_graph
from mllzoo.labeling.driver import label_models
from mllzoo.models.catalog import discover_models
from mllzoo.models.vlm import encode_images, encode_texts, load_model
from mllzoo.store.registry import Registry

pytestmark = pytest.mark.slow  # mllzoo CLI subprocesses: `make test-fast` leaves this module out


def labeled_registry(registry, sample_folder, **kwargs):
    graph = build_graph(sample_folder)
    save_graph(registry, graph, str(sample_folder))
    entries = [e for e in discover_models().values() if e.spec.family == "tinyclip"]
    return (
        graph,
        entries,
        label_models(
            registry, graph, sample_folder, entries, device="cpu", progress=False, **kwargs
        ),
    )


def test_label_replay_equals_dense_on_small_graph(registry, sample_folder, tinyclip_plugin):
    # the default depth fits the budget: ~45 nodes per image, more than the 39 this graph has
    graph, entries, report = labeled_registry(registry, sample_folder)
    assert sorted(report.labeled) == sorted(e.spec.id for e in entries)
    spec = entries[0].spec
    fmt, arrays, meta = registry.load_label(spec.id, graph.id)
    label = labels.Label.from_arrays(arrays, meta)
    assert meta["depth"] == "auto"
    # the dense reference: every image against every caption, computed here independently
    from mllzoo.graph.images import open_rgb

    model = load_model(spec, "cpu")
    import torch

    pixels = torch.stack([model.preprocess(open_rgb(sample_folder / p)) for p in graph.image_paths])
    similarity = encode_images(model, pixels) @ encode_texts(model, graph.captions).T
    rng = np.random.default_rng(0)
    for _ in range(10):
        subset = rng.choice(len(graph.nodes), 8, replace=False)
        for got, want in zip(
            labels.replay(label, graph.samples, subset),
            reference.dense_replay(similarity, graph.samples, subset, len(graph.nodes)),
        ):
            assert np.array_equal(got, want)


def test_images_are_decoded_once_per_transform(registry, sample_folder, tinyclip_plugin):
    graph, entries, report = labeled_registry(registry, sample_folder)
    assert len(entries) == 2 and report.image_decodes == len(
        graph.image_paths
    )  # both share "clip32"
    naive = Registry(registry.path.parent / "naive.db")
    save_graph(naive, graph, str(sample_folder))
    again = label_models(
        naive, graph, sample_folder, entries, device="cpu", progress=False, cache_bytes=0
    )
    assert again.image_decodes == 2 * len(graph.image_paths)


def test_second_run_does_nothing(registry, sample_folder, tinyclip_plugin):
    graph, entries, first = labeled_registry(registry, sample_folder)
    created = [r["created"] for r in registry.db["labels"].rows]
    again = label_models(registry, graph, sample_folder, entries, device="cpu", progress=False)
    assert again.labeled == [] and sorted(again.skipped) == sorted(first.labeled)
    assert [r["created"] for r in registry.db["labels"].rows] == created


def test_failing_model_does_not_stop_others(registry, sample_folder, tinyclip_plugin, monkeypatch):
    monkeypatch.setenv("TINYCLIP_FAIL", "tiny-a")
    _, _, report = labeled_registry(registry, sample_folder)
    assert report.labeled == ["tinyclip/tiny-b.seed0"]
    assert "weights not found" in report.failed["tinyclip/tiny-a.seed0"]
    assert [r["status"] for r in registry.db["runs"].rows] == ["failed", "done"]


def test_unreadable_images_are_skipped_and_counted(registry, sample_folder, tinyclip_plugin):
    (sample_folder / "dog.n.01" / "broken.png").write_bytes(b"not a png")
    _, _, report = labeled_registry(registry, sample_folder)
    assert report.undecodable_images == 1 and len(report.labeled) == 2
    assert report.undecodable_files == ["dog.n.01/broken.png"]  # named, relative to the samples


def test_work_saved_at_another_depth_is_redone(registry, sample_folder, tinyclip_plugin):
    graph, entries, _ = labeled_registry(registry, sample_folder, depth=5, chunk=8)
    spec = entries[0].spec
    want = registry.load_label(spec.id, graph.id)[1]
    registry.db.execute("delete from labels")
    registry.db.execute("delete from label_blocks")
    stale = {
        "image_idx": np.arange(8, dtype=np.int32),
        "lists": np.zeros(0, np.int16),  # depth 3, wrong
        "lengths": np.zeros(8, np.int16),
        "sample_idx": np.zeros(0, np.int32),
        "rank": np.zeros(0, np.int32),
        "depth": np.array([3], np.int32),
    }
    registry.save_label_part(spec.id, graph.id, 0, stale)
    again = label_models(
        registry, graph, sample_folder, entries[:1], device="cpu", progress=False, depth=5, chunk=8
    )
    assert again.labeled == [spec.id] and again.images_encoded == len(graph.image_paths)
    got = registry.load_label(spec.id, graph.id)[1]
    assert all(np.array_equal(got[name], want[name]) for name in want)


def test_register_cli_depth(tmp_path, sample_folder, tinyclip_site):
    env = {
        "PYTHONPATH": str(tinyclip_site),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
    }
    assert run_cli("graph", "build", "--samples", str(sample_folder), env=env).returncode == 0
    assert run_cli("register", "tinyclip/tiny-a.seed0", "--depth", "2", env=env).returncode == 0
    reg = Registry(tmp_path / "r.db")
    _, arrays, meta = reg.load_label("tinyclip/tiny-a.seed0", reg.current_graph_id())
    assert meta["depth"] == 2 and arrays["lengths"].max() <= 2
    assert run_cli("register", "tinyclip/tiny-b.seed0", "--depth", "auto", env=env).returncode == 0
    assert reg.load_label("tinyclip/tiny-b.seed0", reg.current_graph_id())[2]["depth"] == "auto"
    for value in ("0", "deep"):
        bad = run_cli("register", "--depth", value, env=env)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--depth" in bad.stderr


def test_auto_depth_fits_each_chunk_to_the_budget(
    registry, sample_folder, tinyclip_plugin, monkeypatch
):
    # a budget of 10 list entries per image: 24 bytes = 10 entries + length + rank, at int16. Every
    # image of the small graph needs ~37 of its 39 nodes (its hypernym samples rank low), so the
    # budget, not the need, sets the depth.
    monkeypatch.setattr(labels, "BUDGET_BYTES", 24 * labels.PAPER_NODES * labels.PAPER_PER_NODE)
    graph, entries, _ = labeled_registry(registry, sample_folder, chunk=8)
    for entry in entries:
        _, arrays, meta = registry.load_label(entry.spec.id, graph.id)
        length = arrays["lengths"]
        assert meta["depth"] == "auto" and length.max() == meta["max_length"] == 10
        assert all(length[s : s + 8].mean() <= 10 for s in range(0, len(length), 8))


def test_register_cli_resumes_after_kill(tmp_path, sample_folder, tinyclip_site):
    db = tmp_path / "r.db"
    env = {
        "PYTHONPATH": str(tinyclip_site),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(db),
    }
    assert run_cli("graph", "build", "--samples", str(sample_folder), env=env).returncode == 0
    done_parts = kill_register_after_parts(
        ["tinyclip/tiny-a.seed0", "--chunk-size", "4", "--batch-size", "4"],
        {**env, "TINYCLIP_SLOW": "0.3"},
        db,
        2,
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from labels").fetchone()[0] == 0
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert 2 <= done_parts < 8  # 30 images in chunks of 4
    result = run_cli("register", "tinyclip/tiny-a.seed0", "--chunk-size", "4", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["labeled"] == ["tinyclip/tiny-a.seed0"]
    assert report["images_encoded"] == 30 - 4 * done_parts  # only the missing chunks were encoded
    reg = Registry(db)
    assert reg.label_parts("tinyclip/tiny-a.seed0", reg.current_graph_id()) == {}
    second = json.loads(run_cli("register", "--json", env=env).stdout)
    assert second["labeled"] == ["tinyclip/tiny-b.seed0"] and second["skipped"] == [
        "tinyclip/tiny-a.seed0"
    ]


def test_two_register_processes_label_each_model_once(tmp_path, sample_folder, tinyclip_site):
    db = tmp_path / "r.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(tinyclip_site),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(db),
        "TINYCLIP_SLOW": "0.05",
    }
    assert run_cli("graph", "build", "--samples", str(sample_folder), env=env).returncode == 0
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mllzoo", "register", "--json", "--batch-size", "4"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reports = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    labeled = [m for r in reports for m in r["labeled"]]
    assert sorted(labeled) == ["tinyclip/tiny-a.seed0", "tinyclip/tiny-b.seed0"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from runs where status = 'done'").fetchone()[0] == 2
