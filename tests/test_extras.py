"""Optional extras and helpers that must fail with one line, not a traceback or a stray folder."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import run_cli_without

pytestmark = pytest.mark.slow  # mllzoo CLI subprocesses: `make test-fast` leaves this module out


def test_openai_captioner_without_the_package_names_the_extra(world):
    root, env = world
    result = run_cli_without(
        "openai",
        "recommend",
        str(root / "classes.txt"),
        "--captioner",
        "openai",
        env={**env, "OPENAI_API_KEY": "sk-test-not-a-secret"},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "Error: the openai captioner needs the openai package: pip install 'mllzoo[openai]'"
    )


def test_bench_plot_without_matplotlib_names_the_extra(tmp_path):
    result = run_cli_without(
        "matplotlib",
        "--registry",
        str(tmp_path / "none.db"),
        "bench",
        str(tmp_path),
        "--plot",
        str(tmp_path / "bench.png"),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pip install 'mllzoo[bench]'" in result.stderr and len(result.stderr.splitlines()) == 1


def test_wordnet_setup_help_makes_no_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mllzoo.graph.wordnet_setup", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and "NLTK_DATA_DIR" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_uninstall_without_a_terminal_asks_for_yes():
    result = subprocess.run(
        [sys.executable, "-m", "mllzoo", "uninstall", "mllzoo-plugin-eva"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and "EOFError" not in result.stderr
    assert "pass -y" in result.stderr and len(result.stderr.splitlines()) == 1
