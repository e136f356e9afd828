"""The benchmark scripts still run end to end (at a tiny scale: their figures are not checked here)."""

from __future__ import annotations

import subprocess
import sys

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
