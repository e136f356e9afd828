"""Labeling through a real local Ray instance (2 CPUs, no network): same labels, same guarantees."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import kill_after_parts, run_cli
from mllzoo.graph.concept_graph import build_graph, save_graph
from mllzoo.labeling.driver import label_models
from mllzoo.models.catalog import CatalogEntry, discover_models
from mllzoo.models.vlm import ModelSpec
from mllzoo.store.label_store import utc_now
from mllzoo.store.registry import Registry

pytestmark = pytest.mark.slow  # Ray clusters: `make test-fast` leaves this module out

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed (pip install 'mllzoo[ray]')",
)


@pytest.fixture(scope="module")
def ray_cluster(tinyclip_site, tinyclip_dir, tmp_path_factory):
    """One local Ray instance for the module; its workers find the tiny family as an installed plugin
    and read the crash and slow-down knobs (files, since their environment is fixed here)."""
    import ray

    knobs = tmp_path_factory.mktemp("knobs")
    env = {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(tinyclip_site), os.environ.get("PYTHONPATH")])
        ),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "TINYCLIP_CRASH_FILE": str(knobs / "crash"),
        "TINYCLIP_SLOW_FILE": str(knobs / "slow"),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:  # the Ray processes keep this environment; this process must not crash on the knobs
        context = ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    yield knobs, context.address_info["gcs_address"], env
    ray.shutdown()


def labeled_pair(tmp_path, sample_folder, entries, **kwargs):
    """The same graph labeled locally and through Ray, in two registries."""
    from mllzoo.labeling.ray_executor import RayExecutor

    graph = build_graph(sample_folder)
    registries = {}
    for name, executor in (("local", None), ("ray", RayExecutor(shard_images=16))):
        registries[name] = Registry(tmp_path / f"{name}.db")
        save_graph(registries[name], graph, str(sample_folder))
        report = label_models(
            registries[name],
            graph,
            sample_folder,
            entries,
            device="cpu",
            progress=False,
            chunk=8,
            batch_size=4,
            executor=executor,
            **kwargs,
        )
        assert sorted(report.labeled) == sorted(e.spec.id for e in entries), report
    return graph, registries, report


def assert_same_labels(graph, one: Registry, other: Registry, model_ids) -> None:
    for model_id in model_ids:
        _, want, _ = one.load_label(model_id, graph.id)
        _, got, meta = other.load_label(model_id, graph.id)
        assert sorted(got) == sorted(want)
        assert all(
            got[name].dtype == want[name].dtype and np.array_equal(got[name], want[name])
            for name in want
        )
        assert meta["n_images"] == len(graph.image_paths) and meta["device"] == "cpu"


@needs_ray
def test_ray_labels_equal_local_labels(tmp_path, sample_folder, tinyclip_plugin, ray_cluster):
    entries = [e for e in discover_models().values() if e.spec.family == "tinyclip"]
    graph, registries, report = labeled_pair(tmp_path, sample_folder, entries)
    assert_same_labels(graph, registries["local"], registries["ray"], [e.spec.id for e in entries])
    assert report.images_encoded == 2 * len(graph.image_paths)  # 2 models x 2 shards of 2 chunks
    assert report.caption_encodings == 4  # once per task
    assert (
        registries["ray"].db["label_parts"].count == 0
        and registries["ray"].db["label_claims"].count == 0
    )


@needs_ray
def test_worker_killed_mid_task_is_retried(tmp_path, sample_folder, tinyclip_plugin, ray_cluster):
    knobs, _, _ = ray_cluster
    (knobs / "crash").write_text(
        ""
    )  # the first task to reach its third batch exits after its first part
    entries = [e for e in discover_models().values() if e.spec.arch == "tiny-a"]
    graph, registries, _ = labeled_pair(tmp_path, sample_folder, entries)
    assert not (knobs / "crash").exists()  # a worker did die
    assert_same_labels(graph, registries["local"], registries["ray"], ["tinyclip/tiny-a.seed0"])


@needs_ray
def test_failures_and_claims_held_elsewhere(registry, sample_folder, tinyclip_plugin, ray_cluster):
    from mllzoo.labeling.ray_executor import RayExecutor

    graph = build_graph(sample_folder)
    save_graph(registry, graph, str(sample_folder))
    tiny = {e.spec.arch: e for e in discover_models().values() if e.spec.family == "tinyclip"}
    missing = CatalogEntry(ModelSpec("nosuchfamily", "vit", "x"), "mllzoo-plugin-nosuch", None)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"]
    )  # a live process
    try:
        registry.db["label_claims"].insert(
            {
                "model_id": "tinyclip/tiny-a.seed0",
                "graph_id": graph.id,
                "host": socket.gethostname(),
                "pid": holder.pid,
                "claimed": utc_now(),
                "renewed": time.time(),  # a live lease
            }
        )
        report = label_models(
            registry,
            graph,
            sample_folder,
            [missing, tiny["tiny-a"], tiny["tiny-b"]],
            device="cpu",
            progress=False,
            chunk=8,
            executor=RayExecutor(),
        )
    finally:
        holder.kill()
        holder.wait()
    assert report.labeled == ["tinyclip/tiny-b.seed0"] and report.busy == ["tinyclip/tiny-a.seed0"]
    assert "no installed plugin can load nosuchfamily/vit.x" in report.failed["nosuchfamily/vit.x"]
    assert registry.labeled_model_ids(graph.id) == {"tinyclip/tiny-b.seed0"}
    assert sorted(r["status"] for r in registry.db["runs"].rows) == ["done", "failed"]


@needs_ray
def test_killed_driver_resumes_from_saved_parts(
    tmp_path, sample_folder, tinyclip_plugin, tinyclip_site, ray_cluster, capsys
):
    from mllzoo.labeling.ray_executor import RayExecutor

    knobs, address, ray_env = ray_cluster
    db = tmp_path / "r.db"
    env = {
        "PYTHONPATH": ray_env["PYTHONPATH"],
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(db),
    }
    assert run_cli("graph", "build", "--samples", str(sample_folder), env=env).returncode == 0
    (knobs / "slow").write_text("0.4")
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mllzoo",
            "register",
            "tinyclip/tiny-a.seed0",
            "--executor",
            "ray",
            "--address",
            address,
            "--chunk-size",
            "4",
            "--batch-size",
            "4",
            "--shard-size",
            "8",
            "--device",
            "cpu",
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        kill_after_parts(driver, db, 2)
    finally:
        (knobs / "slow").unlink()
    registry = Registry(db)
    graph_id = registry.current_graph_id()
    saved = registry.label_parts("tinyclip/tiny-a.seed0", graph_id)
    assert registry.labeled_model_ids(graph_id) == set()
    assert registry.db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert 2 <= len(saved) < 8, driver.stderr.read()  # 30 images in chunks of 4
    from mllzoo.graph.concept_graph import load_graph

    graph = load_graph(registry)
    # the killed driver's parts name the installed distribution: resume as that plugin, or they are redone
    entries = [
        dataclasses.replace(e, plugin="mllzoo-plugin-tinyclip", plugin_version="0.1")
        for e in discover_models().values()
        if e.spec.arch == "tiny-a"
    ]
    report = label_models(
        registry,
        graph,
        sample_folder,
        entries,
        device="cpu",
        progress=True,
        chunk=4,
        batch_size=4,
        executor=RayExecutor(shard_images=8),
    )
    assert report.labeled == ["tinyclip/tiny-a.seed0"], report
    progress = (
        capsys.readouterr().err
    )  # models and images done, the saved parts counted from the start
    assert (
        "models: 100%" in progress
        and "1/1" in progress
        and "images: 100%" in progress
        and "30/30" in progress
    )
    assert report.images_encoded == 30 - sum(len(part["image_idx"]) for part in saved.values())
    local = Registry(tmp_path / "local.db")
    save_graph(local, graph, str(sample_folder))
    label_models(local, graph, sample_folder, entries, device="cpu", progress=False, chunk=4)
    assert_same_labels(graph, local, registry, ["tinyclip/tiny-a.seed0"])


def test_ray_executor_without_ray_says_how_to_install(tmp_path, sample_folder, tinyclip_site):
    hidden = tmp_path / "no_ray"
    (hidden / "ray").mkdir(parents=True)
    (hidden / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {
        "PYTHONPATH": os.pathsep.join(
            [str(hidden), str(tinyclip_site), os.environ.get("PYTHONPATH", "")]
        ),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
    }
    result = run_cli("register", "--executor", "ray", env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "Error: --executor ray needs Ray: pip install 'mllzoo[ray]'"
    misuse = run_cli("register", "--address", "127.0.0.1:6379", env=env)
    assert misuse.returncode == 2 and "--executor ray" in misuse.stderr
