"""mllzoo bench end to end on a tiny world: JSON keys, sane numbers, the plot."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli, write_images

pytestmark = pytest.mark.slow  # runs every model of a task on its images, twice over


def test_bench_end_to_end(world, tmp_path):
    root, env = world
    tasks = tmp_path / "tasks"
    for task, classes in {"pets": ["dog", "cat"], "fruit": ["apple", "banana", "car"]}.items():
        for seed, name in enumerate(classes):
            write_images(tasks / task / name, (40 * seed, 200 - 40 * seed, 90), 3, seed)
    (tasks / "pets" / "task.json").write_text(
        json.dumps({"domain": "toy picture", "task": "pet recognition"})
    )
    plot = tmp_path / "bench.png"
    result = run_cli("bench", str(tasks), "--orders", "2", "--plot", str(plot), "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    keys = {"mll_k1", "mll_k3", "inb", "inb_k3", "oracle_single", "all_models", "mean_single"}
    assert [t["name"] for t in data["tasks"]] == ["fruit", "pets"]
    for task in data["tasks"]:
        assert set(task["accuracy"]) == keys and set(task["cost"]) == keys
        acc = task["accuracy"]
        assert all(0 <= v <= 1 for v in acc.values())
        assert acc["oracle_single"] >= max(acc["inb"], acc["mean_single"])
        assert task["cost"]["oracle_single"]["models_loaded"] == 2
        assert (
            task["cost"]["mll_k1"]["image_forward_passes"]
            == task["cost"]["mll_k1"]["models_loaded"] * task["images"]
        )
    assert data["tasks"][1]["images"] == 6 and data["tasks"][0]["classes"] == 3
    assert set(data["average"]) == keys
    assert data["average"]["mean_single"] == pytest.approx(
        sum(t["accuracy"]["mean_single"] for t in data["tasks"]) / 2, abs=1e-4
    )
    assert len(data["growth"]["mll_k1"]) == 2
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = run_cli("bench", str(tasks), "--orders", "0", env=env)
    assert table.returncode == 0 and "average" in table.stdout and "MLL k=1 loads" in table.stdout


def test_bench_without_tasks_is_a_user_error(world, tmp_path):
    root, env = world
    (tmp_path / "empty").mkdir()
    result = run_cli("bench", str(tmp_path / "empty"), env=env)
    assert result.returncode == 2 and "no ImageFolder task" in result.stderr
