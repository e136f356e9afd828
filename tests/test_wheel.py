"""The release as a stranger gets it: wheels built from this checkout, installed (not editable) into a
fresh virtual environment, running the README's ``recommend`` with the shipped labels.

The fresh environment borrows the heavy dependencies (torch, numpy, ...) from the current one through
a ``.pth`` line instead of downloading them; mllzoo and its plugins come only from the built wheels.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = (
    pytest.mark.slow
)  # wheel builds and a fresh venv: `make test-fast` leaves this module out

DISTRIBUTIONS = [
    "mllzoo",
    "mllzoo_plugin_eva",
    "mllzoo_plugin_hf",
    "mllzoo_plugin_minizoo",
    "mllzoo_plugin_openclip",
]
BUILD_LEFTOVERS = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".nltk_data",
    "world",
    ".cache",
    ".pytest_cache",
    "registry.db-*",
)
DEMO = ["recommend", "examples/pets.txt", "--domain", "animal"]  # the README's `make demo` command
SPDX_SETUPTOOLS = (
    "77.0.1"  # the first setuptools that reads `license = "Apache-2.0"` (PEP 639); see CONTRIBUTING
)


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    """mllzoo and every plugin built as wheels from a copy of this checkout (the checkout stays clean)."""
    root = tmp_path_factory.mktemp("release")
    source = root / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=BUILD_LEFTOVERS)
    projects = [source, *sorted((source / "plugins").iterdir())]
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        root / "wheels",
        *projects,
    )
    return root / "wheels"


@pytest.fixture(scope="module")
def fresh_venv(wheels, tmp_path_factory) -> Path:
    """A new virtual environment with the wheels installed as a user would (``pip install``, not ``-e``)."""
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", "--clear", venv)
    python = venv / "bin" / "python"
    site = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    )
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
        "-q",
        *sorted(wheels.glob("*.whl")),
    )
    return venv


def clean_env(home: Path) -> dict[str, str]:
    """No PYTHONPATH to this checkout, no registry setting, a new home and user data folder."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "MLLZOO_REGISTRY", "XDG_DATA_HOME", "XDG_CONFIG_HOME"}
    }
    return {
        **env,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }


def test_every_project_asks_for_a_backend_that_reads_its_licence():
    import tomllib
    from packaging.requirements import Requirement
    from packaging.version import Version

    for pyproject in [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]:
        config = tomllib.loads(pyproject.read_text())
        if not isinstance(config["project"].get("license"), str):
            continue
        (setuptools,) = [
            Requirement(r) for r in config["build-system"]["requires"] if r.startswith("setuptools")
        ]
        floors = [
            Version(s.version) for s in setuptools.specifier if s.operator in (">=", "==", "~=")
        ]
        assert floors and min(floors) >= Version(SPDX_SETUPTOOLS), f"{pyproject}: {setuptools}"


def test_every_distribution_builds_a_wheel(wheels):
    assert sorted(path.name.split("-")[0] for path in wheels.glob("*.whl")) == DISTRIBUTIONS


def test_the_wheel_ships_the_registry(wheels):
    (wheel,) = wheels.glob("mllzoo-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("mllzoo/data/registry.db")
    assert (
        hashlib.sha256(shipped).digest()
        == hashlib.sha256((ROOT / "registry.db").read_bytes()).digest()
    )


def test_the_wheel_ships_the_imagenet_class_index_table(wheels):
    (wheel,) = wheels.glob("mllzoo-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("mllzoo/data/imagenet1k_wnids.txt")
    assert shipped == (ROOT / "mllzoo" / "data" / "imagenet1k_wnids.txt").read_bytes()


def test_installed_wheels_recommend_with_the_shipped_labels(fresh_venv, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    shutil.copyfile(ROOT / "examples" / "pets.txt", work / "examples" / "pets.txt")
    env = clean_env(home)
    where = run(
        fresh_venv / "bin" / "python",
        "-c",
        "import mllzoo, mllzoo_openclip; print(mllzoo.__file__); print(mllzoo_openclip.__file__)",
        env=env,
        cwd=work,
    ).stdout.split()
    assert all(path.startswith(str(fresh_venv)) for path in where), (
        where
    )  # the wheels, not this checkout

    installed = run(fresh_venv / "bin" / "mllzoo", *DEMO, env=env, cwd=work)
    checkout = run(
        sys.executable, "-m", "mllzoo", "--registry", ROOT / "registry.db", *DEMO, cwd=ROOT
    )
    assert installed.stdout == checkout.stdout and "2 model(s) to load" in installed.stdout
    assert (home / "data" / "mllzoo" / "registry.db").stat().st_size == (
        ROOT / "registry.db"
    ).stat().st_size
    assert not (work / "registry.db").exists()
