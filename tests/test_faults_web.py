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

from conftest import run_cli
from helpers import MODEL, copy_registry

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
def server(command: list[str], env: dict, port: int, cwd: Path | None = None):
    """A real server process; yields its base URL once the mllzoo index answers."""
    full = {**os.environ, **env}
    full["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + os.environ.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        command, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd
    )
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


# one request never stalls or crashes the server ------------------------------------------------------


def in_process(path: Path, immutable: bool = False):
    from datasette.app import Datasette

    return Datasette(**{"immutables" if immutable else "files": [str(path)]})


def answer(ds, path: str, **kwargs):
    import asyncio

    posted = {"content", "data", "files"} & set(kwargs)
    method = ds.client.post if posted else ds.client.get
    return asyncio.run(method(path, **kwargs))


@pytest.mark.parametrize(
    "field, value",
    [("k", "²"), ("max_models", "²"), ("k", "١"), ("k", "１"), ("k", "9" * 5000), ("k", "01" * 3)],
)
def test_a_number_in_any_digits_but_ascii_or_too_long_is_a_400(world, tmp_path, field, value):
    path, _ = copy_registry(world, tmp_path)
    response = answer(
        in_process(path), f"{PREFIX}/recommend.json?{urlencode({'classes': 'dog', field: value})}"
    )
    assert response.status_code == 400, response.text
    assert "must be a whole number" in json.loads(response.text)["error"]


def test_classes_percent_encoded_in_another_encoding_are_refused(world, tmp_path):
    path, _ = copy_registry(world, tmp_path)
    ds = in_process(path)
    got = answer(ds, f"{PREFIX}/recommend.json?classes=caf%E9")
    assert got.status_code == 400 and "not UTF-8" in json.loads(got.text)["error"]
    posted = answer(
        ds,
        f"{PREFIX}/recommend.json",
        content=b"classes=caf%E9",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 400 and "not UTF-8" in json.loads(posted.text)["error"]


def test_a_deeply_nested_multipart_body_is_refused_quickly(world, tmp_path):
    path, _ = copy_registry(world, tmp_path)
    body, boundary = b"", "b0"
    for depth in range(3000, 0, -1):
        inner = f"b{depth}"
        body = (
            f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={inner}\r\n\r\n".encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        boundary = inner
    started = time.monotonic()
    response = answer(
        in_process(path),
        f"{PREFIX}/recommend.json",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=b0"},
    )
    assert response.status_code == 400 and "itself multipart" in json.loads(response.text)["error"]
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("page", ["/nothing", "/nothing.json", "/model", "/concept/", "/a/b/c"])
def test_every_unmatched_path_under_the_prefix_is_a_404(world, tmp_path, page):
    path, _ = copy_registry(world, tmp_path)
    response = answer(in_process(path), PREFIX + page)
    assert response.status_code == 404, response.text


def test_plain_datasette_leaves_nothing_beside_a_read_only_registry(world, tmp_path):
    path, _ = copy_registry(world, tmp_path)
    path.chmod(0o444)
    ds = in_process(path)  # `datasette r.db`: Datasette would open it mode=ro
    import asyncio

    asyncio.run(ds.invoke_startup())
    assert answer(ds, f"{PREFIX}.json").status_code == 200
    assert answer(ds, "/r/labels.json").status_code == 200
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("r.db")) == ["r.db"]


@pytest.mark.parametrize("where", ["exp#3/r.db", "run?1/r.db", "x%2F.db", "a b/%41.db"])
def test_serve_a_registry_whose_path_a_uri_would_read_otherwise(world, tmp_path, where):
    path, env = copy_registry(world, tmp_path)
    odd = tmp_path / "odd" / where
    odd.parent.mkdir(parents=True, exist_ok=True)
    path.rename(odd)
    env = {**env, "MLLZOO_REGISTRY": str(odd)}
    work = tmp_path / "work"
    work.mkdir()
    port = free_port()
    with server(commands("mllzoo serve", odd, port), env, port, cwd=work) as (base, _):
        status, index = get(f"{base}{PREFIX}.json")
        assert status == 200, index
        assert [m["id"] for m in index["models"]] == [MODEL, OTHER]
        assert web_answer(base) == cli_answer(world, env)
    assert list(work.iterdir()) == []  # no stray file where a URI would have cut the path
    assert {p.name for p in odd.parent.iterdir()} <= {
        odd.name,
        f"{odd.name}-wal",
        f"{odd.name}-shm",
    }


def test_a_request_stuck_behind_another_is_a_503_in_bounded_time_and_never_runs(
    world, tmp_path, monkeypatch
):
    import mllzoo.web as web
    from mllzoo.web.zoo import Zoo, zoo_for

    path, _ = copy_registry(world, tmp_path)
    ds = in_process(path)
    assert answer(ds, f"{PREFIX}.json").status_code == 200
    zoo = zoo_for(path)
    ran = []
    real = Zoo.overview
    monkeypatch.setattr(Zoo, "overview", lambda self: ran.append(1) or real(self))
    monkeypatch.setattr(web, "REQUEST_SECONDS", 1.0)
    busy = zoo.run(time.sleep, 4)  # a long request holds the one worker
    started = time.monotonic()
    response = answer(ds, f"{PREFIX}.json")
    assert response.status_code == 503 and "longer than 1 s" in json.loads(response.text)["error"]
    assert time.monotonic() - started < 3
    busy.result()
    zoo.run(lambda: None).result()
    assert ran == []  # the abandoned request's work was dropped from the queue, not run late
    assert answer(ds, f"{PREFIX}.json").status_code == 200 and ran == [1]


def test_the_work_of_a_client_that_has_gone_is_dropped(world, tmp_path, monkeypatch):
    import asyncio

    from mllzoo.web.zoo import Zoo, zoo_for

    path, _ = copy_registry(world, tmp_path)
    ds = in_process(path)
    assert answer(ds, f"{PREFIX}.json").status_code == 200
    zoo = zoo_for(path)
    ran = []
    real = Zoo.overview
    monkeypatch.setattr(Zoo, "overview", lambda self: ran.append(1) or real(self))
    busy = zoo.run(time.sleep, 3)
    messages = [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)

    async def send(message):
        pass

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"{PREFIX}.json",
        "raw_path": f"{PREFIX}.json".encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    started = time.monotonic()
    asyncio.run(ds.app()(scope, receive, send))
    assert time.monotonic() - started < 2  # answered (to nobody) as soon as the client left
    busy.result()
    zoo.run(lambda: None).result()
    assert ran == []


def test_no_sql_turns_off_datasettes_sql_and_table_pages_and_keeps_mllzoos(world, tmp_path):
    import asyncio

    from mllzoo.web.serve import loopback, make_datasette

    path, _ = copy_registry(world, tmp_path)
    open_ds, closed_ds = (make_datasette(path, path, True, no_sql) for no_sql in (False, True))
    for ds in (open_ds, closed_ds):
        asyncio.run(ds.invoke_startup())
    for page in ("/r/labels.json", "/r.json?sql=select+1", "/r", "/r/models"):
        assert answer(open_ds, page).status_code == 200, page
        assert answer(closed_ds, page).status_code == 403, page
    for page in (f"{PREFIX}.json", f"{PREFIX}", f"{PREFIX}/model/{MODEL}.json"):
        assert answer(closed_ds, page).status_code == 200, page
    assert [loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.0.0.2")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_serve_on_a_wider_address_says_who_can_read_what(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    port = free_port()
    full = {**os.environ, **env}
    full["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + os.environ.get("PYTHONPATH", "")
    for flags, words in (([], "run read-only SQL"), (["--no-sql"], "the mllzoo pages")):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mllzoo",
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                str(port),
                *flags,
            ],
            env=full,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = proc.stderr.readline() if proc.stderr else ""
        proc.terminate()
        proc.wait(timeout=30)
        assert first.startswith("Note: 0.0.0.0 is not a loopback address") and words in first, first


@pytest.fixture
def slow_embedder(monkeypatch, tmp_path):
    """The real embedder, 0.2 s a call and a few texts a call: a long class list takes a while."""
    import mllzoo.text.embedders as embedders

    calls = []
    real = embedders.checked_embed

    def slow(embedder, texts, dim=None):
        calls.append(len(texts))
        time.sleep(0.2)
        return real(embedder, texts, dim)

    monkeypatch.setattr(embedders, "EMBED_BATCH", 8)
    monkeypatch.setattr(embedders, "checked_embed", slow)
    monkeypatch.setenv("MLLZOO_CACHE_DIR", str(tmp_path / "cache"))
    return calls


def warm_long_lane(path: Path) -> None:
    """Load the long lane's selector first, so the requests below spend their time embedding."""
    from mllzoo.web.zoo import zoo_for

    lane = zoo_for(path, long_lane=True)
    lane.run(lambda: lane.selector).result()


def long_list(n: int = 300) -> bytes:
    return "\n".join(f"made-up class {i}" for i in range(n)).encode()


def asgi_call(ds, path: str, body: bytes, leave_after: float) -> None:
    """POST ``body`` as a class file, the client leaving ``leave_after`` seconds after sending it."""
    import asyncio

    boundary = "xyz"
    payload = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="class_file"; filename="c.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode()
        + body
        + f"\r\n--{boundary}--\r\n".encode()
    )
    messages = [{"type": "http.request", "body": payload, "more_body": False}]

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(leave_after)
        return {"type": "http.disconnect"}

    async def send(message):
        pass

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{PREFIX}/recommend.json",
        "raw_path": f"{PREFIX}/recommend.json".encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(ds.app()(scope, receive, send))


def test_a_long_request_whose_client_left_stops_and_frees_its_worker(
    world, tmp_path, slow_embedder
):
    from mllzoo.web.zoo import zoo_for

    path, _ = copy_registry(world, tmp_path)
    ds = in_process(path)
    assert answer(ds, f"{PREFIX}.json").status_code == 200
    warm_long_lane(path)
    started = time.monotonic()
    asgi_call(ds, path.name, long_list(), leave_after=1.0)
    assert time.monotonic() - started < 3  # answered (to nobody) once the client left
    zoo_for(path, long_lane=True).run(lambda: None).result(timeout=1)  # the worker is free again
    stopped_at = len(slow_embedder)
    time.sleep(0.5)
    assert len(slow_embedder) == stopped_at  # nothing runs on after the stop
    assert 0 < stopped_at < 20  # it ran, and stopped within a batch of the client leaving


def test_a_long_request_past_its_time_is_a_503_and_stops(
    world, tmp_path, slow_embedder, monkeypatch
):
    import mllzoo.web as web

    path, _ = copy_registry(world, tmp_path)
    ds = in_process(path)
    assert answer(ds, f"{PREFIX}.json").status_code == 200
    warm_long_lane(path)
    monkeypatch.setattr(web, "REQUEST_SECONDS", 1.0)
    response = answer(ds, f"{PREFIX}/recommend.json", files={"class_file": ("c.txt", long_list())})
    assert response.status_code == 503 and "longer than 1 s" in response.json()["error"], (
        response.text
    )
    stopped_at = len(slow_embedder)
    time.sleep(0.5)
    assert len(slow_embedder) <= stopped_at + 1 and 0 < stopped_at < 20


def test_small_requests_are_answered_while_a_long_list_is_worked_on(world, tmp_path, slow_embedder):
    import asyncio

    path, _ = copy_registry(world, tmp_path)
    ds = in_process(path)
    assert answer(ds, f"{PREFIX}.json").status_code == 200

    async def both():
        long = asyncio.ensure_future(
            ds.client.post(f"{PREFIX}/recommend.json", files={"class_file": ("c.txt", long_list())})
        )
        await asyncio.sleep(0.5)
        started = time.monotonic()
        small = await ds.client.get(f"{PREFIX}/recommend.json?classes=dog")
        index = await ds.client.get(f"{PREFIX}.json")
        waited = time.monotonic() - started
        running = not long.done()
        return (await long), small, index, waited, running

    long, small, index, waited, running = asyncio.run(both())
    assert running  # the small ones were answered while the long one still ran
    assert small.status_code == index.status_code == 200, small.text
    assert waited < 5, waited
    assert long.status_code == 200 and len(long.json()["classes"]) == 300
