"""A third-party plugin as its author ships it: CONTRIBUTING's template built as a real wheel, with a label.

The wheel is built with ``pip wheel`` from the very code blocks of CONTRIBUTING.md, installed with
``pip install --target`` into a temp folder (never into the environment), and found through its entry
point. Its model loader raises, so a label that appears proves ``register`` imported it without a run.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from helpers import copy_registry, ok, other_graph_registry

pytestmark = pytest.mark.slow  # wheel builds: `make test-fast` leaves this module out

MODEL = "myclip/ViT-S-16.v1"
DIST = "mllzoo-plugin-myclip"
NEVER_RUN = """
def available(spec):
    return False  # its weights are never here


def load(spec, device, dtype):
    raise RuntimeError("the myclip model was run")
"""


def template_blocks() -> dict[str, str]:
    """CONTRIBUTING's plugin template: the pyproject, the model table and the plugin module."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", text, re.S)
    pick = {
        "pyproject.toml": next(
            b for lang, b in blocks if lang == "toml" and b.startswith("# pyproject.toml")
        ),
        "models.json": next(b for lang, b in blocks if lang == "json"),
        "__init__.py": next(b for lang, b in blocks if b.startswith("# mllzoo_myclip/__init__.py")),
    }
    return pick


def write_plugin(folder: Path, label_file: Path | None, package_data: bool = True) -> Path:
    blocks = template_blocks()
    pyproject = blocks["pyproject.toml"]
    if not package_data:  # the template as it was before: code only
        pyproject = pyproject.split("# without this table")[0]
    package = folder / "mllzoo_myclip"
    package.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(pyproject)
    (package / "models.json").write_text(blocks["models.json"])
    (package / "__init__.py").write_text(blocks["__init__.py"])
    (package / "model.py").write_text(NEVER_RUN)
    if label_file is not None:
        (package / "labels").mkdir()
        (package / "labels" / "shipped.mllzoo-labels").write_bytes(label_file.read_bytes())
    return folder


def build_and_install(folder: Path, site: Path) -> Path:
    """``pip wheel`` (no isolation: setuptools from this environment) then ``pip install --target site``."""
    dist = folder.parent / f"{folder.name}-dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next(dist.glob("*.whl"))
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return wheel


@pytest.fixture(scope="module")
def shipped_label(world, tmp_path_factory) -> Path:
    """A label for ``myclip/ViT-S-16.v1`` on the world's graph, exported as its author would.

    The author's model run is stood in for by a real label of a tiny model of the world registry.
    """
    from mllzoo.store.registry import Registry

    folder = tmp_path_factory.mktemp("author")
    _, env = copy_registry(world, folder)
    registry = Registry(env["MLLZOO_REGISTRY"])
    graph_id = registry.current_graph_id()
    fmt, arrays, meta = registry.load_label("tinyclip/tiny-a.seed0", graph_id)
    registry.save_label(
        MODEL, graph_id, fmt, arrays, {**meta, "plugin": DIST, "plugin_version": "0.1.0"}
    )
    registry.close()
    path = folder / "myclip.mllzoo-labels"
    ok(run_cli("labels", "export", MODEL, "-o", str(path), env=env))
    return path


def runs(env: dict) -> int:
    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as conn:
        return conn.execute("select count(*) from runs").fetchone()[0]


def test_register_imports_the_label_a_wheel_ships_without_running_the_model(
    world, tmp_path, shipped_label
):
    root, _ = world
    site = tmp_path / "site"
    wheel = build_and_install(write_plugin(tmp_path / "myclip", shipped_label), site)
    assert "mllzoo_myclip/labels/shipped.mllzoo-labels" in zipfile.ZipFile(wheel).namelist()
    env = {
        **copy_registry(world, tmp_path)[1],
        "PYTHONPATH": str(site),
        "MLLZOO_LOAD_PLUGINS": DIST,
    }
    runs_before = runs(env)
    result = run_cli("register", "--json", env=env)
    report = json.loads(ok(result))
    assert report["imported"] == [MODEL] and report["failed"] == {} and report["labeled"] == []
    assert (
        "was run" not in result.stderr and runs(env) == runs_before
    )  # no labeling run was started
    listed = json.loads(ok(run_cli("labels", "list", "--json", env=env)))
    assert {row["id"]: (row["plugin"], row["installed"]) for row in listed}[MODEL] == (DIST, True)
    chosen = json.loads(ok(run_cli("recommend", str(root / "classes.txt"), "--json", env=env)))
    assert chosen["models"] == [MODEL]  # the only installed labeled model: selectable at once
    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as conn:
        metadata = json.loads(
            conn.execute("select metadata from models where id = ?", [MODEL]).fetchone()[0]
        )
    assert metadata["gflops"] == 4.6 and metadata["license"] == "MIT"

    again = json.loads(ok(run_cli("register", "--json", env=env)))  # nothing left to do
    assert again["imported"] == [] and again["skipped"] == [MODEL]

    named = {
        **copy_registry(world, tmp_path, "named.db")[1],
        "PYTHONPATH": str(site),
        "MLLZOO_LOAD_PLUGINS": DIST,
    }
    assert json.loads(ok(run_cli("register", MODEL, "--json", env=named)))["imported"] == [MODEL]

    checked = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mllzoo.testing import check_installed; "
            f"print([s.id for s in check_installed({DIST!r})])",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
        cwd=ROOT,
    )
    assert checked.returncode == 0, checked.stderr
    assert MODEL in checked.stdout


def test_a_label_for_another_graph_is_left_alone_and_the_model_not_downloaded(
    world, tmp_path, shipped_label
):
    """On a registry with another graph the shipped label does not apply; the model's weights are not
    here, so a plain register skips it and says how to label it."""

    site = tmp_path / "site"
    build_and_install(write_plugin(tmp_path / "myclip", shipped_label), site)
    _, world_env = world
    other = {
        **other_graph_registry(tmp_path, world_env),
        "PYTHONPATH": str(site),
        "MLLZOO_LOAD_PLUGINS": DIST,
        "HF_HUB_OFFLINE": "1",
    }
    result = run_cli("register", env=other)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 model(s) whose weights are not on this machine" in result.stdout
    assert "mllzoo register --download" in result.stdout and "was run" not in result.stderr
    assert "labeled 0" in result.stdout and runs(other) == 0
    forced = run_cli(
        "register", "--download", "--json", env=other
    )  # asked for: now the loader is called
    assert "the myclip model was run" in json.loads(forced.stdout)["failed"][MODEL]


def test_a_wheel_without_package_data_fails_the_installed_check(tmp_path, shipped_label):
    site = tmp_path / "site"
    build_and_install(write_plugin(tmp_path / "myclip", shipped_label, package_data=False), site)
    checked = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from mllzoo.testing import check_installed; check_installed({DIST!r})",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site), "MLLZOO_LOAD_PLUGINS": DIST},
        timeout=300,
        cwd=ROOT,
    )
    assert checked.returncode != 0 and "models.json" in checked.stderr
