"""Helpers the test modules share (fixtures are in conftest.py): copies of registries, the faulty
plugin's environment, and the checks of what a failing command prints."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from conftest import ROOT, SYNSETS, run_cli, write_images

FAULTY = "mllzoo-plugin-faulty"


BAD, GOOD = "faulty/bad.v0", "faulty/good.v0"


def faulty_env(site: Path, registry: Path, mode: str = "", **extra: str) -> dict[str, str]:
    return {
        "PYTHONPATH": str(site),
        "MLLZOO_LOAD_PLUGINS": FAULTY,
        "MLLZOO_REGISTRY": str(registry),
        "FAULTY_MODE": mode,
        **extra,
    }


def copy_with_samples(registry: Path, target: Path) -> Path:
    """A copy of the registry at ``target``, beside a link to its samples: it records them relative to itself."""
    shutil.copyfile(registry, target)
    if not (target.parent / "samples").exists():
        (target.parent / "samples").symlink_to(registry.parent / "samples")
    return target


def stored_label(db: Path, model_id: str) -> dict[int, tuple] | None:
    """A stored label's blocks as raw rows, by node; None when the model has no label."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select node, dtype, ranks, lengths, entries from label_blocks where model_id = ?",
            [model_id],
        ).fetchall()
    return {node: tuple(rest) for node, *rest in rows} or None


def assert_one_line(stderr: str, *needles: str) -> None:
    """No traceback, and each needle on a line of ``stderr``: a warning reads as one line. Exit
    statuses are the caller's to check (:func:`one_line_error` checks a refusal whole)."""
    assert "Traceback" not in stderr, stderr
    for needle in needles:
        assert [line for line in stderr.splitlines() if needle in line], (
            f"{needle!r} not in {stderr!r}"
        )


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def copy_registry(world, folder: Path, name: str = "r.db") -> tuple[Path, dict]:
    """A private copy of the session's labeled registry and the environment that points ``mllzoo`` at it."""
    _, env = world
    path = folder / name
    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    source.close()
    copy.close()
    return path, {**env, "MLLZOO_REGISTRY": str(path)}


def one_line_error(result, *words: str) -> str:
    """The one strict check of a refusal: exit status 2, one ``Error: ...`` line holding ``words``, no
    traceback; the line is returned."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    return result.stderr


MODEL = "tinyclip/tiny-a.seed0"


def ok(result) -> str:
    """``result``'s output, once it is known to have succeeded."""
    assert result.returncode == 0, result.stderr
    return result.stdout


def other_graph_registry(tmp_path: Path, env: dict) -> dict:
    """A registry whose graph lacks one of the world's concepts: another graph id."""
    samples = tmp_path / "other-samples"
    for seed, (name, color) in enumerate(list(SYNSETS.items())[:-1]):
        write_images(samples / name, color, 6, seed)
    other = {**env, "MLLZOO_REGISTRY": str(tmp_path / "other.db")}
    ok(run_cli("graph", "build", "--samples", str(samples), env=other))
    return other


def run_cli_without(module: str, *args: str, env: dict | None = None, cwd=None):
    """``mllzoo ARGS`` in a process where ``import module`` fails as when the package is not installed."""
    code = f"import sys; sys.modules[{module!r}] = None; from mllzoo.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
    )


# -- the web pages ----------------------------------------------------------------------------------

PREFIX = "/-/mllzoo"
SHIPPED_REGISTRY = ROOT / "registry.db"


def client_get(ds, path: str):
    return asyncio.run(ds.client.get(path))


def client_post(ds, path: str, **kwargs):
    return asyncio.run(ds.client.post(path, **kwargs))


def cli_recommend(
    tmp_path: Path, classes: list[str] | Path, *args: str, registry: Path = SHIPPED_REGISTRY
) -> str:
    """What a real `mllzoo recommend --json` prints for the same input."""
    if not isinstance(classes, Path):
        path = tmp_path / "classes.txt"
        path.write_text("\n".join(classes) + "\n", encoding="utf-8")
        classes = path
    done = run_cli("--registry", str(registry), "recommend", str(classes), "--json", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def query(classes: list[str], **params) -> str:
    return urlencode({"classes": "\n".join(classes), **params})


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 90) -> str:
    """The body at ``url`` once the server ``proc`` answers; fails with its stderr if it dies or never does."""
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.read().decode()
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(
                    f"the server did not answer {url}: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def saved_parts(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(distinct part) from label_parts").fetchone()[0]


def slow_register(faulty_site, db: Path) -> subprocess.Popen:
    """``register GOOD --chunk-size 1`` slowed down, started; returns once it has saved two parts."""
    env = {**os.environ, **faulty_env(faulty_site, db, FAULTY_SLOW="0.3")}
    env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + os.environ.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mllzoo",
            "register",
            GOOD,
            "--chunk-size",
            "1",
            "--batch-size",
            "1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while proc.poll() is None and saved_parts(db) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    return proc


def execute(path: Path, sql: str, params: tuple = ()) -> None:
    """One raw statement on the file, as a disk fault or a careless tool would leave it."""
    conn = sqlite3.connect(path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def make_pre_checksum(path: Path) -> None:
    """Turn a registry back into what mllzoo wrote before checksums (schema m002: each label as whole
    arrays in ``label_arrays``, no checksum columns)."""
    from mllzoo.store import blobs
    from mllzoo.store.registry import Registry

    registry = Registry(path)
    graph_id = registry.require_graph_id()
    arrays = {m: registry.load_label(m, graph_id)[1] for m in registry.labeled_model_ids(graph_id)}
    registry.close()
    conn = sqlite3.connect(path)
    conn.execute(
        "create table label_arrays (model_id text, graph_id text, name text, dtype text, shape text, "
        "data blob, primary key (model_id, graph_id, name))"
    )
    for model_id, named in arrays.items():
        for name, array in named.items():
            packed = blobs.pack(array)
            conn.execute(
                "insert into label_arrays values (?, ?, ?, ?, ?, ?)",
                [model_id, graph_id, name, packed["dtype"], packed["shape"], packed["data"]],
            )
    conn.execute("drop table label_blocks")
    conn.execute("alter table labels drop column token")
    conn.execute("alter table label_claims drop column renewed")
    for table in ("label_parts", "node_embeddings", "text_embeddings"):
        conn.execute(f"alter table {table} drop column checksum")
    conn.execute(
        "delete from _sqlite_migrations where name in "
        "('m003_checksums', 'm004_label_blocks', 'm005_bound_label_blocks', 'm006_claim_leases')"
    )
    conn.commit()
    conn.close()


def unbind(path: Path) -> None:
    """Turn a registry back into schema m004: block checksums over the bytes only, no label token."""
    from mllzoo.store.label_store import block_checksum

    conn = sqlite3.connect(path)
    for model_id, node, dtype, ranks, lengths, entries in conn.execute(
        "select model_id, node, dtype, ranks, lengths, entries from label_blocks"
    ).fetchall():
        conn.execute(
            "update label_blocks set checksum = ? where model_id = ? and node = ?",
            [block_checksum(dtype, ranks, lengths, entries, bound=None), model_id, node],
        )
    conn.execute("alter table labels drop column token")
    conn.execute("alter table label_claims drop column renewed")
    conn.execute(
        "delete from _sqlite_migrations where name in ('m005_bound_label_blocks', 'm006_claim_leases')"
    )
    conn.commit()
    conn.close()


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "1m", read_only: bool = False):
    """A real small filesystem at ``folder`` (skips the test where mounting is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Fill the filesystem holding ``folder`` to the last byte."""
    for name, block in (("filler", 65536), ("filler-small", 1)):
        handle = os.open(folder / name, os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(handle, b"\0" * block)
        os.close(handle)


def recommend(world, env: dict, *args: str) -> subprocess.CompletedProcess:
    root, _ = world
    return run_cli("recommend", str(root / "classes.txt"), "--json", *args, env=env)


def save_plain_graph(registry, samples, n_nodes: int, n_images: int) -> str:
    """Save graph ``g`` of ``n_nodes`` placeholder nodes and ``n_images`` images with these samples
    (labels are made for it directly, never by a model); its id."""
    nodes = [
        {
            "idx": i,
            "synset": f"n{i}.n.01",
            "wnid": f"n{i:08d}",
            "name": f"n{i}",
            "definition": "d",
            "caption": f"n{i} which is d",
            "depth": 0,
            "parents": "[]",
        }
        for i in range(n_nodes)
    ]
    images = [(f"{i:040x}", f"x/{i}.png") for i in range(n_images)]
    registry.save_graph("g", "g", {}, nodes, images, samples)
    return "g"
