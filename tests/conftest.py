"""Shared fixtures: real registries in temp folders, tiny real models, synset-named image folders."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
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


def pytest_sessionstart(session) -> None:
    """Keep the CLI's own commands before any test's plugin can add one (:func:`run_cli`)."""
    from mllzoo.cli import main as cli_main

    CORE_COMMANDS.update(
        {
            n: c
            for n, c in cli_main.cli.commands.items()
            if c.callback is None or c.callback.__module__.startswith("mllzoo.")
        }
    )


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


@dataclass
class CliRun:
    """What a ``mllzoo`` run left: the fields of ``subprocess.CompletedProcess`` the tests read."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300):
    """``mllzoo ARGS`` run in this process (click's CliRunner) as a fresh process would run it: with
    ``env`` over this environment (a ``PYTHONPATH`` goes first on ``sys.path``), in ``cwd``, plugins and
    per-process caches loaded afresh, and the plugin modules it imported forgotten afterwards. An
    exception that would print a traceback in a process puts it on ``stderr`` with exit status 1.
    The test process's own plugins are given back afterwards. ``timeout`` is :func:`run_cli_process`'s:
    use that one where the process itself is the point."""
    import importlib
    import traceback

    from click.testing import CliRunner

    from mllzoo import plugins
    from mllzoo.cli import main as cli_main

    env = dict(env or {})
    paths = [path for path in env.pop("PYTHONPATH", "").split(os.pathsep) if path]
    before = (
        plugins.pm.list_name_plugin(),
        plugins._loaded,
    )  # this process's own, given back after
    saved_path, saved_modules, saved_cwd = list(sys.path), set(sys.modules), os.getcwd()
    core = dict(CORE_COMMANDS or cli_main.cli.commands)
    sys.path[:0] = paths
    shadowed = {name: sys.modules.pop(name) for name in modules_in(paths) if name in sys.modules}
    importlib.invalidate_caches()

    class FreshProcess:
        """What ``python -m mllzoo`` does on start, then the command: CliRunner calls ``main``."""

        name = "mllzoo"

        def main(self, **arguments):
            fresh_process_state()
            cli_main.cli.commands = dict(core)
            cli_main.add_plugin_commands()  # as importing mllzoo.cli.main does
            return cli_main.cli.main(**arguments)

    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(FreshProcess(), list(args), env=env)  # type: ignore[arg-type]
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            origin = getattr(sys.modules.get(name), "__file__", None) or ""
            if any(origin.startswith(path) for path in paths):
                del sys.modules[name]
        sys.modules.update(shadowed)
        cli_main.cli.commands = core
        fresh_process_state()
        for name, plugin in before[0]:
            plugins.pm.register(plugin, name)
        plugins._loaded = before[1]
    stderr, code = result.stderr, result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))  # as Python would print it
        code = 1
    return CliRun(code, result.stdout, stderr)


def modules_in(paths: list[str]) -> set[str]:
    """The top-level modules and packages these folders provide (a process would import them there)."""
    names = set()
    for folder in map(Path, paths):
        if folder.is_dir():
            names |= {p.stem for p in folder.glob("*.py")}
            names |= {p.parent.name for p in folder.glob("*/__init__.py")}
    return names


CORE_COMMANDS: dict = {}  # the CLI's own commands, before any test's plugin added one


def fresh_process_state() -> None:
    """Forget what one ``mllzoo`` run loaded that a new process would not have: plugins, their
    failures, and the hub's reachability answers."""
    from mllzoo.models import weights
    from mllzoo.plugins import unload_plugins

    unload_plugins()
    weights._accepts_connection.cache_clear()


def run_cli_process(
    *args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300
):
    """``mllzoo ARGS`` as a real subprocess, for tests where the process is the point (imports, exit
    on a signal, a hang); a ``PYTHONPATH`` in ``env`` goes before the current one."""
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


# -- the faulty plugin (tests/fixtures/faultyplugin.py) installed as an entry point ------------------


@pytest.fixture(scope="module")
def faulty_site(tmp_path_factory) -> Path:
    import faultyplugin
    import tinyclip
    from helpers import FAULTY

    return tinyclip.install_distribution(
        tmp_path_factory.mktemp("faulty"), FAULTY, Path(faultyplugin.__file__)
    )


@pytest.fixture(scope="module")
def graph_registry(tmp_path_factory, faulty_site) -> Path:
    """A registry holding a 30-image graph and no labels yet; tests work on copies."""
    from helpers import faulty_env

    root = tmp_path_factory.mktemp("faultworld")
    for seed, (name, color) in enumerate(SYNSETS.items()):
        write_images(root / "samples" / name, color, 6, seed)
    built = run_cli(
        "graph",
        "build",
        "--samples",
        str(root / "samples"),
        env=faulty_env(faulty_site, root / "r.db"),
    )
    assert built.returncode == 0, built.stderr
    return root / "r.db"


@pytest.fixture
def fresh_registry(graph_registry, tmp_path) -> Path:
    from helpers import copy_with_samples

    return copy_with_samples(graph_registry, tmp_path / "r.db")


@pytest.fixture(scope="module")
def bad_labeled(graph_registry, tmp_path_factory, faulty_site) -> tuple[Path, Path]:
    """A registry where only faulty/bad.v0 is labeled (it behaved then), so ``predict`` must load it."""
    from helpers import BAD, copy_with_samples, faulty_env

    root = tmp_path_factory.mktemp("badlabeled")
    copy_with_samples(graph_registry, root / "r.db")
    result = run_cli("register", BAD, env=faulty_env(faulty_site, root / "r.db"))
    assert result.returncode == 0, result.stderr
    (root / "classes.txt").write_text("dog\ncat\nbanana\n")
    for seed, (name, color) in enumerate([("dog", (200, 60, 60)), ("cat", (60, 200, 60))]):
        write_images(root / "task" / name, color, 2, 100 + seed)
    return root, root / "r.db"


@pytest.fixture(scope="module")
def good_label_file(graph_registry, tmp_path_factory, faulty_site) -> tuple[Path, Path]:
    """A clean registry where GOOD is labeled, and that label exported to a file."""
    from helpers import GOOD, copy_with_samples, faulty_env

    root = tmp_path_factory.mktemp("goodlabel")
    copy_with_samples(graph_registry, root / "clean.db")
    env = faulty_env(faulty_site, root / "clean.db")
    assert run_cli("register", GOOD, env=env).returncode == 0
    exported = run_cli("labels", "export", GOOD, "-o", str(root / "good.mllzoo-labels"), env=env)
    assert exported.returncode == 0, exported.stderr
    return root / "clean.db", root / "good.mllzoo-labels"
