"""A cold ``mllzoo recommend`` as a user runs it: a fresh process on the shipped registry, no torch.

Each run is a real subprocess under ``-X importtime``, so the assertions read which modules the
command actually imported rather than timing it (speed lives in benchmarks/recommend_latency.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # mllzoo CLI subprocesses: `make test-fast` leaves this module out

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "open_clip", "timm")
CIFAR100 = ROOT / "benchmarks" / "data" / "mll-classnames" / "CIFAR100.txt"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A copy of the shipped registry (opening it may add WAL files; the repository's copy stays as is)."""
    path = tmp_path_factory.mktemp("shipped") / "registry.db"
    shutil.copyfile(ROOT / "registry.db", path)
    return path


def run(
    args: list[str], cache_dir, env: dict | None = None
) -> tuple[subprocess.CompletedProcess, set[str]]:
    """``mllzoo ARGS`` in a fresh process; its result and every top-level package it imported."""
    full_env = {**os.environ, "MLLZOO_CACHE_DIR": str(cache_dir), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mllzoo", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    done.stderr = "\n".join(
        line for line in done.stderr.splitlines() if not line.startswith("import time:")
    )
    return done, imported


def test_recommend_imports_nothing_heavy(shipped, tmp_path):
    done, imported = run(
        ["--registry", str(shipped), "recommend", str(CIFAR100), "--json"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["classes"]) == 100
    assert (
        "tokenizers" in imported and "numpy" in imported
    )  # the import log is read, and the encoder ran
    assert not imported & set(HEAVY), imported & set(HEAVY)
    assert "PIL" not in imported  # the image stack is for predict only


def test_warm_cache_skips_the_encoder_and_changes_nothing(shipped, tmp_path):
    pets = ROOT / "examples" / "pets.txt"
    args = ["--registry", str(shipped), "recommend", str(pets), "--domain", "animal", "--json"]
    cold, cold_imports = run(args, tmp_path)
    warm, warm_imports = run(args, tmp_path)
    bypass, bypass_imports = run([*args, "--no-cache"], tmp_path / "unused")
    assert cold.returncode == warm.returncode == bypass.returncode == 0, (
        cold.stderr + warm.stderr + bypass.stderr
    )
    assert cold.stdout == warm.stdout == bypass.stdout
    assert "tokenizers" in cold_imports and "tokenizers" in bypass_imports
    assert (
        "tokenizers" not in warm_imports and "safetensors" not in warm_imports
    )  # every text came from the cache
    assert not (tmp_path / "unused").exists()  # --no-cache neither reads nor writes it
    with sqlite3.connect(shipped) as db:  # the cache is the user's, never the registry
        assert db.execute("select count(*) from text_embeddings").fetchone()[0] == 0


def test_damaged_cache_is_rebuilt_not_a_traceback(shipped, tmp_path):
    args = ["--registry", str(shipped), "recommend", str(ROOT / "examples" / "pets.txt"), "--json"]
    expected, _ = run([*args, "--no-cache"], tmp_path / "unused")
    (tmp_path / "embeddings-cache.db").write_bytes(b"not a database at all" * 200)
    done, _ = run(args, tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == expected.stdout
    assert "embedding cache" in done.stderr and "damaged" in done.stderr
    with sqlite3.connect(tmp_path / "embeddings-cache.db") as db:  # rebuilt, and filled
        assert db.execute("select count(*) from embeddings").fetchone()[0] > 0


def test_concurrent_processes_share_the_cache(shipped, tmp_path):
    lists = [
        ROOT / "benchmarks" / "data" / "mll-classnames" / f"{name}.txt"
        for name in ["CIFAR100", "Food101", "DTD", "Flowers102"]
    ]
    env = {**os.environ, "MLLZOO_CACHE_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mllzoo",
                "--registry",
                str(shipped),
                "recommend",
                str(path),
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for path in lists
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    assert not any("cache" in err for _, err in outputs), [err for _, err in outputs]
    with sqlite3.connect(tmp_path / "embeddings-cache.db") as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        cached = {text for (text,) in db.execute("select text from embeddings")}
    first_of_each = {
        "a photo of a apple.",
        "a photo of a apple pie.",
        "a photo of a banded.",
        "a photo of a pink primrose.",
    }
    assert first_of_each <= cached


@pytest.mark.parametrize("bad", ["missing-image", "bad-class-file"])
def test_predict_refuses_bad_input_before_loading_models(shipped, tmp_path, bad):
    classes = tmp_path / "classes.txt"
    classes.write_bytes(b"dog\ncat\n" if bad == "missing-image" else b"dog\n\xff\xfe cat\n")
    image = tmp_path / ("missing.png" if bad == "missing-image" else "present.png")
    if bad == "bad-class-file":
        image.write_bytes(b"")
    done, imported = run(
        ["--registry", str(shipped), "predict", str(image), "--classes", str(classes)], tmp_path
    )
    assert done.returncode == 2 and done.stderr.startswith("Error: "), done.stderr
    assert (
        ("no such file" in done.stderr) if bad == "missing-image" else ("not UTF-8" in done.stderr)
    )
    assert not imported & {*HEAVY, "tokenizers"}  # refused before selection, let alone a model load
