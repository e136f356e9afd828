"""The fourth audit's small cases (issue 27, item 19): a registry named like Datasette's own database,
an older registry under plain ``datasette``, and FIFOs and device links among ``predict``'s images.
Real Datasette apps over real SQLite files (through the plugin, as ``datasette registry.db`` and
``mllzoo serve`` build them), real FIFOs, real ``mllzoo predict`` runs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import run_cli
from helpers import (
    PREFIX,
    SHIPPED_REGISTRY,
    cli_recommend,
    client_get,
    copy_registry,
    make_pre_checksum,
    one_line_error,
    sha1,
    unbind,
)

pytest.importorskip("datasette")


@pytest.fixture
def plugin():
    """The mllzoo Datasette plugin registered in this process, as an installed distribution is."""
    from datasette.plugins import pm

    from mllzoo import web

    registered_here = not pm.is_registered(web)
    if registered_here:
        pm.register(web, name="mllzoo")
    yield
    if registered_here:  # an installed mllzoo's entry point registered it: later tests need it
        pm.unregister(web)


def started(ds):
    import asyncio

    asyncio.run(ds.invoke_startup())
    return ds


def test_a_registry_named_internal_is_served(tmp_path, plugin):
    from mllzoo.web.serve import make_datasette, uri_safe

    path = tmp_path / "_internal.db"
    shutil.copy(SHIPPED_REGISTRY, path)
    want = json.loads(cli_recommend(tmp_path, ["dog", "cat"], registry=path))
    with tempfile.TemporaryDirectory() as folder:
        served = uri_safe(path, Path(folder))
        ds = started(make_datasette(path, served, follow=True, no_sql=False))
        got = client_get(ds, f"{PREFIX}/recommend.json?classes=dog%0Acat")
        assert got.status_code == 200, got.text
        assert got.json()["classes"] == want["classes"]
        assert client_get(ds, f"{PREFIX}/").status_code == 200
    # plain `datasette _internal.db` names it _internal_2, which the plugin finds by its tables
    from datasette.app import Datasette

    plain = started(Datasette(files=[str(path)]))
    assert client_get(plain, f"{PREFIX}/recommend.json?classes=dog").status_code == 200


@pytest.mark.parametrize("downgrade", [unbind, make_pre_checksum], ids=["m004", "m002"])
def test_an_older_registry_under_plain_datasette_says_how_to_upgrade_it(
    world, tmp_path, plugin, downgrade
):
    from datasette.app import Datasette

    path, env = copy_registry(world, tmp_path)
    downgrade(path)
    before = sha1(path)
    ds = started(Datasette(files=[str(path)]))
    for page in ("recommend.json?classes=dog", ""):
        answer = client_get(ds, f"{PREFIX}/{page}")
        assert answer.status_code == 400, answer.text
        assert "needs a schema upgrade" in answer.text, answer.text
        assert f"mllzoo --registry {path} models" in answer.text
    assert sha1(path) == before and not list(tmp_path.glob("*.bak-*"))
    done = run_cli("--registry", str(path), "models")  # what the page says to run
    assert done.returncode == 0 and "Note: upgrading registry" in done.stderr
    ds = started(Datasette(files=[str(path)]))
    assert client_get(ds, f"{PREFIX}/recommend.json?classes=dog").status_code == 200


@pytest.fixture
def odd_task(world, tmp_path) -> Path:
    """The session's task folder plus a FIFO, links to /dev/zero and /dev/null and a socket named
    like images: none is an image, and opening the FIFO would block."""
    import socket

    root, _ = world
    task = tmp_path / "task"
    shutil.copytree(root / "task", task)
    os.mkfifo(task / "dog" / "fifo.png")
    (task / "dog" / "zero.png").symlink_to("/dev/zero")
    (task / "null.jpg").symlink_to("/dev/null")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(task / "dog" / "sock.png"))
    sock.close()
    return task


def test_fifos_and_device_links_in_a_predict_folder_are_not_images(world, odd_task):
    root, env = world
    result = run_cli(
        "predict", str(odd_task), "--classes", str(root / "classes.txt"), "--json", env=env,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    names = sorted(Path(p["path"]).name for p in data["predictions"])
    assert len(names) == 12 and not {"fifo.png", "zero.png", "null.jpg", "sock.png"} & set(names)
    assert data["unreadable"] == 0 and "unreadable" not in result.stderr


@pytest.mark.parametrize("name", ["dog/fifo.png", "dog/zero.png", "null.jpg"])
def test_a_fifo_or_device_given_as_an_image_is_one_line(world, odd_task, name):
    root, env = world
    result = run_cli(
        "predict", str(odd_task / name), "--classes", str(root / "classes.txt"), env=env,
        timeout=120,
    )  # fmt: skip
    one_line_error(result, "is not a regular file, so not an image")
