"""Fault injection on a served registry (issue 27): the registry changes underneath a running
``mllzoo serve`` or plain ``datasette`` (register, labels remove, import, import --replace), a request
straddles a change, the registry is reached through a link while another process holds it open, and it
is read-only. Real servers on 127.0.0.1 and real SQLite files; every answer must be the one the CLI
gives for the registry as it is now, the server never writes the file and leaves nothing beside a
read-only one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
from test_faults_registry import MODEL, copy_registry

from conftest import run_cli

pytest.importorskip("datasette", reason="the web extra is not installed")
pytestmark = pytest.mark.slow  # servers and CLI subprocesses

OTHER = "tinyclip/tiny-b.seed0"
PREFIX = "/-/mllzoo"
CLASSES = ["dog", "cat", "banana"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@contextlib.contextmanager
def server(command: list[str], env: dict, port: int):
    """A real server process; yields its base URL once the mllzoo index answers."""
    full = {**os.environ, **env}
    full["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + os.environ.get("PYTHONPATH", "")
    proc = subprocess.Popen(command, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}{PREFIX}.json", timeout=60).read()
                break
            except urllib.error.HTTPError:
                break  # it answers (the page itself may say what is wrong)
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    proc.kill()
                    pytest.fail(f"no server: {proc.stderr.read().decode() if proc.stderr else ''}")
                time.sleep(0.3)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def commands(kind: str, path: Path, port: int) -> list[str]:
    if kind == "mllzoo serve":
        return [
            sys.executable,
            "-m",
            "mllzoo",
            "--registry",
            str(path),
            "serve",
            "--port",
            str(port),
        ]
    return [sys.executable, "-m", "datasette", "serve", str(path), "--port", str(port)]


def cli_answer(world, env: dict) -> dict:
    root, _ = world
    classes = root / "web-classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    done = run_cli("recommend", str(classes), "-k", "2", "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def web_answer(base: str) -> dict:
    status, body = get(
        f"{base}{PREFIX}/recommend.json?{urlencode({'classes': chr(10).join(CLASSES), 'k': 2})}"
    )
    assert status == 200, body
    return body


def ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr


def opened_for_writing(pid: int, path: Path) -> list[str]:
    """The descriptors process ``pid`` holds on ``path`` opened for writing (from /proc)."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path.resolve()):
                flags = int(Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split()[3], 8)
                if flags & os.O_ACCMODE != os.O_RDONLY:
                    found.append(fd)
    return found


@pytest.mark.parametrize("kind", ["mllzoo serve", "datasette"])
def test_a_served_registry_that_changes_is_followed(world, tmp_path, kind):
    path, env = copy_registry(world, tmp_path)
    port = free_port()
    label_file = tmp_path / "other.mllzoo-labels"
    ok(run_cli("labels", "export", OTHER, "-o", str(label_file), env=env))
    with server(commands(kind, path, port), env, port) as (base, proc):
        assert web_answer(base) == cli_answer(world, env)
        steps = [
            ("labels", "remove", OTHER),
            ("labels", "import", str(label_file)),
            ("labels", "import", str(label_file), "--replace"),
            ("labels", "remove", MODEL),
            ("register", MODEL, "--samples", str(world[0] / "samples")),
        ]
        for step in steps:
            ok(run_cli(*step, env=env))
            want = cli_answer(world, env)
            assert web_answer(base) == want, step
            listed = run_cli("labels", "list", "--json", env=env)
            _, index = get(f"{base}{PREFIX}.json")
            assert [m["id"] for m in index["models"]] == [
                row["id"] for row in json.loads(listed.stdout)
            ], step
            assert opened_for_writing(proc.pid, path) == [], step


@pytest.mark.parametrize("immutable", [False, True])
def test_a_request_that_straddles_a_change_is_answered_from_the_new_state(
    world, tmp_path, immutable
):
    from mllzoo.store.registry import Registry
    from mllzoo.web.zoo import Zoo

    path, _ = copy_registry(world, tmp_path)
    zoo = Zoo(path, immutable=immutable)
    assert zoo.run(zoo.labeled).result() == [MODEL, OTHER]
    calls = []

    def read_then_change():
        seen = zoo.labeled()
        if not calls:  # another process removes a label while this request reads
            writer = Registry(path)
            writer.remove_labels([OTHER], writer.require_graph_id())
            writer.close()
        calls.append(seen)
        return seen

    assert zoo.run(read_then_change).result() == [MODEL]
    assert calls == [[MODEL, OTHER], [MODEL]]
    zoo.close()


def test_a_registry_reached_through_a_link_is_read_with_the_targets_journal(world, tmp_path):
    """Another process holds the registry open with a committed change still in its journal: a
    read-only reader through a link in another folder must read that journal (beside the target)."""
    from mllzoo.store.registry import Registry
    from mllzoo.web.zoo import Zoo

    (tmp_path / "data").mkdir()
    path, _ = copy_registry(world, tmp_path / "data")
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "registry.db"
    link.symlink_to(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("pragma wal_autocheckpoint = 0")
    holder.execute("delete from labels where model_id = ?", [OTHER])
    try:
        assert Path(f"{path}-wal").stat().st_size > 0 and not Path(f"{link}-wal").exists()
        reader = Registry(link, create=False, write=False, read_only=True, immutable=True)
        assert reader.labeled_model_ids(reader.require_graph_id()) == {MODEL}
        reader.close()
        zoo = Zoo(link)
        assert zoo.run(zoo.labeled).result() == [MODEL]
        zoo.close()
    finally:
        holder.close()


def test_a_read_only_registry_is_followed_and_left_without_journal_files(world, tmp_path):
    from mllzoo.store.registry import Registry
    from mllzoo.web.zoo import Zoo

    path, _ = copy_registry(world, tmp_path)
    path.chmod(0o444)  # read-only to its readers (root writes it anyway, as its owner would)
    zoo = Zoo(path)
    assert zoo.run(zoo.labeled).result() == [MODEL, OTHER]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("r.db")) == ["r.db"]
    writer = Registry(path)
    writer.remove_labels([OTHER], writer.require_graph_id())
    writer.close()
    assert zoo.run(zoo.labeled).result() == [MODEL]
    overview = zoo.run(zoo.overview).result()
    assert [m["id"] for m in overview["models"]] == [MODEL]
    zoo.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("r.db")) == ["r.db"]


def test_a_replaced_registry_file_is_reopened(world, tmp_path):
    from mllzoo.store.registry import Registry
    from mllzoo.web.zoo import Zoo

    path, _ = copy_registry(world, tmp_path)
    fewer = tmp_path / "fewer.db"
    shutil.copyfile(path, fewer)
    writer = Registry(fewer)
    writer.remove_labels([MODEL], writer.require_graph_id())
    writer.close()
    zoo = Zoo(path)
    assert zoo.run(zoo.labeled).result() == [MODEL, OTHER]
    os.replace(fewer, path)  # the way a deploy swaps a file in
    assert zoo.run(zoo.labeled).result() == [OTHER]
    zoo.close()
