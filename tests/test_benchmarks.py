"""The benchmark scripts still run end to end (at a tiny scale: their figures are not checked here)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # mllzoo CLI subprocesses: `make test-fast` leaves this module out


def test_scale_benchmark_prints_every_case_and_the_marginal_cost(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "scale.py"),
            "--labels",
            "1",
            "3",
            "--nodes",
            "300",
            "--per-node",
            "4",
            "--repeats",
            "1",
            "--keep",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for case in (
        "cold cache",
        "warm cache",
        "warm, --models <one id>",
        "whole labels, warm",
        "whole labels, one id",
    ):
        assert done.stdout.count(case) == 3, (
            case,
            done.stdout,
        )  # two label counts and the marginal cost
    assert "a query reads" in done.stdout and (tmp_path / "registry.db").exists()


def test_pull_throughput_benchmark_compares_the_pull_with_a_baseline_in_the_same_run():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pull_throughput.py"), "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[2:]]
    assert len(rows) == 3 and rows[0][-1] == "1.00x", done.stdout
    assert "mllzoo labels pull" in done.stdout and "MB/s" in done.stdout


def test_migration_space_benchmark_prints_each_upgrade_against_the_one_before(world):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "migration_space.py"),
            "--registry",
            world[1]["MLLZOO_REGISTRY"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(",")[0] for line in lines[:4]] == ["from m004"] * 2 + ["from m002"] * 2
    assert "as before" in lines[0] and "with backup and VACUUM" in lines[1]
    assert lines[-1].startswith("refused below: 2.5x")


def test_embedding_cache_benchmark_compares_the_bounded_file_with_the_layout_before():
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "embedding_cache.py"),
            *("--mb", "0.5", "--lists", "4", "--classes", "200"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert "holds 0.5 MB" in first and "(200 of 200 hits)" in first
    assert second.startswith("the layout before bounds") and "bounded file / old file" in second


def test_decoding_benchmark_reports_each_worker_count_against_the_forward_rate():
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "labeling_throughput.py"),
            "--decode-workers",
            "0,1",
            "--images-per-node",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("model forward on ready tensors: ") and "images/s" in lines[1]
    runs = [line for line in lines if line.startswith("labeling, ")]
    assert [line.split(" decoding")[0] for line in runs] == ["labeling, 0", "labeling, 1"]
    assert all("% of forward)" in line and "nan" not in line for line in runs), done.stdout


def world_tasks(world, tmp_path) -> Path:
    """A tasks folder holding the world's task, as ``pets``."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "pets").symlink_to(world[0] / "task")
    return tmp_path / "tasks"


def run_on_the_world_task(script: str, world, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """``benchmarks/SCRIPT`` on the world's registry, with its task as the only task."""
    return run_on_tasks(script, world, world_tasks(world, tmp_path), *args)


def run_on_tasks(script: str, world, tasks: Path, *args: str) -> subprocess.CompletedProcess:
    """``benchmarks/SCRIPT`` on the world's registry and the task folders in ``tasks``."""
    env = world[1]
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / script),
            *("--registry", env["MLLZOO_REGISTRY"], "--tasks", str(tasks), *args),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return done


def test_temperature_benchmark_fits_a_scale_per_model_and_scores_each_way(world, tmp_path):
    samples = str(world[0] / "samples")
    done = run_on_the_world_task(
        "temperature_calibration.py",
        *(world, tmp_path, "--samples", samples, "--fit-samples", "20", "--scales", "15"),
    )
    lines = done.stdout.splitlines()
    assert sum("fitted scale" in line for line in lines) == 2  # the world's two tiny models
    header = next(line for line in lines if line.startswith("method"))
    assert "fixed 100" in header and "fitted" in header and header.endswith("shared 15")
    assert any(line.startswith("mll_k3 ") for line in lines)
    assert sum(": mll - oracle_single" in line for line in lines) == 4


def test_balanced_reuse_benchmark_scores_every_scenario(world, tmp_path):
    done = run_on_the_world_task("balanced_reuse.py", world, tmp_path)
    lines = done.stdout.splitlines()
    assert "mll_balanced" in lines[1] and "oracle_balanced" in lines[1]
    scenarios = [line[:26].strip() for line in lines[2:]]
    assert scenarios == [
        "every image",
        "half the classes at 25%",
        "one class is 80%",
        "some classes only",
    ]
    assert all("nan" not in line for line in lines), done.stdout


def test_ensemble_ceiling_benchmark_ranks_the_chosen_pair_among_every_pair(world, tmp_path):
    tasks, task = world_tasks(world, tmp_path), world[0] / "task"
    # two more tasks of the same class list, half of its images each: three tasks, one class list
    for name, part in (("pets-a", 0), ("pets-b", 1)):
        for class_dir in (p for p in task.iterdir() if p.is_dir()):
            (tasks / name / class_dir.name).mkdir(parents=True)
            for image in sorted(class_dir.iterdir())[part::2]:
                (tasks / name / class_dir.name / image.name).symlink_to(image)
    done = run_on_tasks("ensemble_ceiling.py", world, tasks)
    lines = done.stdout.splitlines()
    assert "3 tasks" in lines[0] and "(1 class list)" in lines[0], done.stdout
    rows = [(line[:44].strip(), line[44:].split()) for line in lines[1:]]
    # the world's two tiny models: one pair, no ensemble of 3 or 4, and mll keeps both (k = 2)
    assert [name for name, _ in rows] == [
        "best single model in hindsight",
        "the best one per class list",
        "best ensemble of 2 in hindsight",
        "the best one per class list",
        "best weighted pool of all 2 in hindsight",
        "the best one per class list",
        "the pair mll chose from the labels",
    ], done.stdout
    single, single_by_list = float(rows[0][1][0]), float(rows[1][1][0])
    assert single_by_list <= single  # one model for all three can only lose to one per task
    pool, pool_by_list = float(rows[4][1][0]), float(rows[5][1][0])
    assert "(5003 weightings)" in " ".join(rows[4][1])  # 5000 drawn, each model alone, all equal
    assert pool >= single and pool_by_list >= single_by_list  # each model alone is one weighting
    assert pool >= float(rows[2][1][0])  # so is the pair with equal weights
    pair, pair_by_list = rows[2][1][0], rows[3][1][0]
    assert pair == pair_by_list == rows[6][1][0]  # one pair in all: every ceiling is that pair
    assert "rank 1.0 of 1 pairs" in " ".join(rows[6][1])


def ceiling_module():
    """benchmarks/ensemble_ceiling.py imported, for its functions (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "ceiling", ROOT / "benchmarks" / "ensemble_ceiling.py"
    )
    ceiling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ceiling)
    return ceiling


def test_the_class_list_ceiling_takes_one_ensemble_for_every_task_of_a_list():
    ceiling = ceiling_module()
    # tasks 0 and 1 share a class list: model a wins task 0, b task 1, b over both (1.1 against 0.9)
    scores = [{("a",): 0.8, ("b",): 0.5}, {("a",): 0.1, ("b",): 0.6}, {("a",): 0.3, ("b",): 0.2}]
    assert ceiling.best_per_class_list(scores, [[0, 1], [2]]) == [0.5, 0.6, 0.3]


def test_pool_weights_hold_every_model_alone_and_all_equal():
    ceiling = ceiling_module()
    weights = ceiling.pool_weights(3, 10, 0)
    assert weights.shape == (14, 3) and np.allclose(weights.sum(axis=1), 1)
    assert (weights[10:13] == np.eye(3)).all() and np.allclose(weights[13], 1 / 3)
    assert (ceiling.pool_weights(3, 10, 0) == weights).all()  # seeded


def test_label_transfer_memory_benchmark_prints_each_command_and_its_baseline(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "label_transfer_memory.py"),
            *("--labels", "1", "2", "--nodes", "300", "--per-node", "4", "--keep", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for case in ("export", "export, whole", "import", "import, whole"):
        # a row per label count and a growth line
        assert sum(line.strip().split("  ")[0] == case for line in done.stdout.splitlines()) == 3, (
            case,
            done.stdout,
        )
    assert "label file" in done.stdout and (tmp_path / "registry.db").exists()
