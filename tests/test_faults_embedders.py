"""Fault injection on text embedders (issue 21): an embedder plugin's answers are checked like encode
answers, a failure is one line naming the plugin, and no bad vector is ever cached, in the registry or
in the user's embedding cache. Real plugin distributions, real ``mllzoo recommend`` subprocesses."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from helpers import FAULTY, assert_one_line, faulty_env
from mllzoo.store import blobs


def recommend(root: Path, db: Path, site: Path, mode: str = "", cache: Path | None = None):
    env = faulty_env(site, db, mode, MLLZOO_CACHE_DIR=str(cache or db.parent / "cache"))
    return run_cli(
        "recommend", str(root / "classes.txt"), "--embedder", "faulty-hash", "--json", env=env
    )


def caption_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "select count(*) from node_embeddings where embedder = 'faulty-hash'"
        ).fetchone()[0]


@pytest.fixture
def labeled_copy(bad_labeled, tmp_path) -> tuple[Path, Path]:
    root, db = bad_labeled
    shutil.copyfile(db, tmp_path / "r.db")
    return root, tmp_path / "r.db"


@pytest.mark.parametrize(
    "mode, message",
    [
        ("nan-embed", "returned NaN text features"),
        ("rows-embed", "returned text features of shape [38, 16] for 39 inputs"),
        ("list-embed", "returned list text features, not a numpy array"),
        ("none-embed", "returned NoneType text features, not a numpy array"),
        ("raise-embed", "failed: RuntimeError: boom in embed"),
        ("exit-embed", "failed: SystemExit: 4"),
    ],
)
def test_a_bad_embedder_answer_is_one_line_and_nothing_is_cached(
    mode, message, faulty_site, labeled_copy, tmp_path
):
    root, db = labeled_copy
    clean = recommend(root, db, faulty_site, cache=tmp_path / "clean-cache")
    assert clean.returncode == 0, clean.stderr
    shutil.copyfile(root / "r.db", db)  # back to no cached captions
    result = recommend(root, db, faulty_site, mode)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert_one_line(result.stderr, f"plugin {FAULTY}: embedder faulty-hash {message}")
    assert caption_rows(db) == 0  # the bad caption matrix was not kept
    fixed = recommend(root, db, faulty_site)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout == clean.stdout


def test_a_class_vector_of_another_width_than_the_captions_is_refused(faulty_site, labeled_copy):
    root, db = labeled_copy
    assert recommend(root, db, faulty_site).returncode == 0  # captions cached at width 16
    (root / "other.txt").write_text("a class no cache has seen\n")
    env = faulty_env(faulty_site, db, "dim-embed", MLLZOO_CACHE_DIR=str(db.parent / "cache"))
    result = run_cli("recommend", str(root / "other.txt"), "--embedder", "faulty-hash", env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert_one_line(
        result.stderr,
        f"plugin {FAULTY}: embedder faulty-hash returned text features of dim 8, earlier 16",
    )


def test_nan_rows_already_cached_are_treated_as_missing(faulty_site, labeled_copy, tmp_path):
    root, db = labeled_copy
    clean = recommend(root, db, faulty_site, cache=tmp_path / "clean-cache")
    assert clean.returncode == 0, clean.stderr
    cache = tmp_path / "clean-cache" / "embeddings-cache.db"
    nan = blobs.pack(np.full(16, np.nan, np.float32))
    with sqlite3.connect(cache) as conn:  # a cache an earlier, broken embedder filled
        assert (
            conn.execute(
                "update embeddings set data = ?, checksum = ? where embedder = 'faulty-hash'",
                [nan["data"], nan["checksum"]],
            ).rowcount
            > 0
        )
        nan_matrix = blobs.pack(np.full((caption_count(db), 16), np.nan, np.float32))
        assert nan_matrix
    with sqlite3.connect(db) as conn:
        conn.execute(
            "update node_embeddings set data = ?, checksum = ? where embedder = 'faulty-hash'",
            [nan_matrix["data"], nan_matrix["checksum"]],
        )
    again = recommend(root, db, faulty_site, cache=tmp_path / "clean-cache")
    assert again.returncode == 0, again.stderr
    assert again.stdout == clean.stdout
    with sqlite3.connect(cache) as conn:
        rows = conn.execute(
            "select dtype, shape, data, checksum from embeddings where embedder = 'faulty-hash'"
        )
        assert all(
            np.isfinite(blobs.array(*row)).all() for row in rows
        )  # the NaN rows were replaced


def caption_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from nodes").fetchone()[0]
