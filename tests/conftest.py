"""Shared fixtures: real registries in temp folders, tiny real models, synset-named image folders."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
os.environ.setdefault("NLTK_DATA", str(ROOT / ".nltk_data"))
# the user's embedding cache (mllzoo.store.usercache): a throwaway folder per session, never the real one
os.environ["MLLZOO_CACHE_DIR"] = tempfile.mkdtemp(prefix="mllzoo-cache-")
# Tests load only the plugins they name: this repository's own plugins, unless a test names others through
# MLLZOO_LOAD_PLUGINS (in env= or monkeypatch). A stray plugin installed in the environment (or a developer's
# MLLZOO_LOAD_PLUGINS) never loads, in this process or in the CLI subprocesses, so it cannot change a result.
OWN_PLUGINS = sorted(
    p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file()
)
os.environ["MLLZOO_LOAD_PLUGINS"] = ",".join(OWN_PLUGINS)


@pytest.fixture(autouse=True)
def user_config(tmp_path, monkeypatch):
    """Each test gets its own, empty user config folder: a developer's settings never change a result."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    return tmp_path / "user-config"


@pytest.fixture
def registry(tmp_path):
    from mllzoo.store.registry import Registry

    reg = Registry(tmp_path / "registry.db")
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def tinyclip_dir(tmp_path_factory):
    import tinyclip

    return tinyclip.build_checkpoints(tmp_path_factory.mktemp("tinyclip"))


@pytest.fixture
def tinyclip_plugin(tinyclip_dir, monkeypatch):
    """The tiny family registered in this process only, unregistered afterwards (llm's pattern)."""
    import tinyclip
    from mllzoo.plugins import load_plugins, pm

    monkeypatch.setenv("TINYCLIP_DIR", str(tinyclip_dir))
    load_plugins()
    pm.register(tinyclip, "tinyclip")
    yield tinyclip
    pm.unregister(name="tinyclip")


@pytest.fixture(scope="session")
def tinyclip_site(tmp_path_factory, tinyclip_dir):
    import tinyclip

    return tinyclip.install_entry_point(tmp_path_factory.mktemp("site"), tinyclip_dir)


SYNSETS = {
    "dog.n.01": (200, 60, 60),
    "cat.n.01": (60, 200, 60),
    "n02958343": (60, 60, 200),
    "apple.n.01": (220, 220, 40),
    "banana.n.02": (230, 200, 20),
}


def write_images(folder: Path, color: tuple[int, int, int], count: int, seed: int) -> None:
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = Image.new("RGB", (40, 40), color)
        draw = ImageDraw.Draw(image)
        x, y = rng.randrange(0, 30), rng.randrange(0, 30)
        draw.rectangle(
            [x, y, x + 10, y + 10],
            fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
        )
        image.save(folder / f"{i:03d}.png")


@pytest.fixture
def sample_folder(tmp_path):
    """Five synset-named folders (one by wnid) of small distinct images, plus a non-synset folder."""
    root = tmp_path / "samples"
    for seed, (name, color) in enumerate(SYNSETS.items()):
        write_images(root / name, color, 6, seed)
    write_images(root / "not_a_synset", (0, 0, 0), 2, 99)
    return root


@pytest.fixture(scope="session")
def world(tmp_path_factory, tinyclip_site):
    """A labeled registry, a class file and a class-named task folder."""
    root = tmp_path_factory.mktemp("world")
    samples = root / "samples"
    for seed, (name, color) in enumerate(SYNSETS.items()):
        write_images(samples / name, color, 6, seed)
    env = {
        "PYTHONPATH": str(tinyclip_site),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(root / "r.db"),
    }
    assert run_cli("graph", "build", "--samples", str(samples), env=env).returncode == 0
    assert run_cli("register", env=env).returncode == 0
    (root / "classes.txt").write_text("# pets\ndog\n\ncat\nbanana\n")
    for seed, (name, color) in enumerate(
        [("dog", (200, 60, 60)), ("cat", (60, 200, 60)), ("banana", (230, 200, 20))]
    ):
        write_images(root / "task" / name, color, 4, 100 + seed)
    return root, env


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300):
    """``mllzoo ARGS`` as a real subprocess; a ``PYTHONPATH`` in ``env`` goes before the current one."""
    full_env = {**os.environ, **(env or {})}
    if env and env.get("PYTHONPATH") and os.environ.get("PYTHONPATH"):
        full_env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + os.environ["PYTHONPATH"]
    return subprocess.run(
        [sys.executable, "-m", "mllzoo", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def kill_register_after_parts(args: list[str], env: dict, db: Path, parts: int) -> int:
    """Run ``mllzoo register ARGS`` and SIGKILL it once ``parts`` label parts are saved; return how many
    were saved when it died (the registry is left as a crash leaves it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mllzoo", "register", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return kill_after_parts(proc, db, parts)


def kill_after_parts(proc: subprocess.Popen, db: Path, parts: int, timeout: float = 120) -> int:
    """SIGKILL ``proc`` (a ``register`` run) once ``db`` holds ``parts`` saved label parts; return how
    many were saved when it died."""
    import signal
    import sqlite3
    import time

    def saved() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("select count(distinct part) from label_parts").fetchone()[0]

    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and saved() < parts:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return saved()
