"""The user's embedding cache: keyed by embedder and text, and never a reason for a command to fail."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli
from mllzoo.store.usercache import EmbeddingCache, default_path


def test_keyed_by_embedder_and_exact_text(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.db")
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put("minilm", ["dog", "a photo of a dog."], vectors)
    assert cache.get("other", ["dog"]) == {}
    found = cache.get("minilm", ["dog", "Dog", "a photo of a dog.", "cat"])
    assert sorted(found) == ["a photo of a dog.", "dog"]
    assert np.array_equal(found["dog"], vectors[0]) and found["dog"].dtype == np.float32
    cache.close()
    assert (
        EmbeddingCache(tmp_path / "c.db").get("minilm", ["a photo of a dog."])["a photo of a dog."][
            2
        ]
        == 5
    )


def test_env_var_chooses_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MLLZOO_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_path() == tmp_path / "elsewhere" / "embeddings-cache.db"


def test_damaged_row_is_a_miss_and_replaced(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.db")
    cache.put("minilm", ["dog"], np.ones((1, 3), np.float32))
    with sqlite3.connect(tmp_path / "c.db") as db:
        db.execute("update embeddings set shape = '[7]'")
    assert cache.get("minilm", ["dog"]) == {}
    cache.put("minilm", ["dog"], np.ones((1, 3), np.float32))
    assert cache.get("minilm", ["dog"])["dog"].shape == (3,)


def test_foreign_table_is_set_aside(tmp_path, capsys):
    with sqlite3.connect(tmp_path / "c.db") as db:
        db.execute("create table embeddings (x int)")
    cache = EmbeddingCache(tmp_path / "c.db")
    assert cache.get("minilm", ["dog"]) == {}
    cache.put("minilm", ["dog"], np.ones((1, 3), np.float32))
    assert "dog" in cache.get("minilm", ["dog"])
    assert (tmp_path / "c.db.damaged").exists() and "damaged" in capsys.readouterr().err


def test_unusable_location_gives_up_quietly(tmp_path, capsys):
    (tmp_path / "file").write_text("a file where the cache folder should be")
    cache = EmbeddingCache(tmp_path / "file" / "c.db")
    cache.put("minilm", ["dog"], np.ones((1, 3), np.float32))
    assert cache.get("minilm", ["dog"]) == {}
    assert capsys.readouterr().err.count("not used") == 1  # one warning, not one per call


class CountingEmbedder:
    """A local embedder that records what it was asked to embed."""

    id = "counting"

    def __init__(self):
        self.asked: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.asked.append(list(texts))
        return np.array([[len(t), 1.0, 0.0] for t in texts], np.float32)


def test_embed_reads_known_captions_then_cache_and_computes_each_text_once(tmp_path):
    from mllzoo.text.embedders import embed

    embedder, cache = CountingEmbedder(), EmbeddingCache(tmp_path / "c.db")
    caption = np.array([9.0, 9.0, 9.0], np.float32)
    texts = ["dog", "dog which is a canine", "dog", "cat"]
    first = embed(None, embedder, texts, cache, {"dog which is a canine": caption})
    assert embedder.asked == [["dog", "cat"]]  # the caption's vector is the registry's; "dog" once
    assert np.array_equal(first[1], caption) and np.array_equal(first[0], first[2])
    again = embed(None, embedder, ["cat", "dog"], cache)
    assert embedder.asked == [["dog", "cat"]] and np.array_equal(again, first[[3, 0]])
    embed(None, embedder, ["cat"], None)
    assert embedder.asked[-1] == ["cat"]  # no cache: computed again


def test_cached_vectors_of_another_shape_are_recomputed(tmp_path):
    from mllzoo.text.embedders import embed

    embedder, cache = CountingEmbedder(), EmbeddingCache(tmp_path / "c.db")
    cache.put("counting", ["dog"], np.ones((1, 5), np.float32))
    out = embed(None, embedder, ["dog", "cat"], cache, {"cat": np.zeros(3, np.float32)})
    # the graph's caption vectors set the width: the cached one of another width is a miss, cat is reused
    assert out.shape == (2, 3) and embedder.asked == [["dog"]]


# the bound -----------------------------------------------------------------------------------------

VECTOR = np.ones((1, 100), np.float32)  # 400 bytes: a row counts 400 + its text + embedder + 64


def counted(path) -> tuple[int, int]:
    """The byte count the triggers keep, and the same sum computed afresh over the rows."""
    with sqlite3.connect(path) as db:
        kept = db.execute("select bytes from usage").fetchone()[0]
        recount = db.execute(
            "select coalesce(sum(length(data) + length(cast(text as blob)) "
            "+ length(cast(embedder as blob)) + 64), 0) from embeddings"
        ).fetchone()[0]
    return kept, recount


def keys(path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("select text from embeddings order by text")]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_filling_past_the_bound_evicts_the_least_recently_used(tmp_path):
    row = 400 + 1 + 1 + 64  # a one-letter text of embedder "m"
    clock = Clock()
    cache = EmbeddingCache(tmp_path / "c.db", limit_bytes=3 * row, clock=clock)
    for when, text in [(0, "a"), (1000, "b"), (2000, "c")]:
        clock.now = when
        cache.put("m", [text], VECTOR)
    assert keys(tmp_path / "c.db") == ["a", "b", "c"]
    clock.now = 3000
    assert "a" in cache.get("m", ["a"])  # a hit: a is now the most recently used
    clock.now = 4000
    cache.put("m", ["d"], VECTOR)
    assert keys(tmp_path / "c.db") == ["a", "c", "d"]  # b, least recently used, went
    cache.put("m", ["e", "f"], np.ones((2, 100), np.float32))
    assert keys(tmp_path / "c.db") == ["d", "e", "f"]
    assert counted(tmp_path / "c.db") == (3 * row, 3 * row) == (cache.held_bytes(),) * 2
    cache.put("m", ["long text " * 100], VECTOR)  # one row larger than the bound: not kept
    assert keys(tmp_path / "c.db") == [] and cache.held_bytes() == 0


def test_a_replaced_row_is_counted_once(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.db", limit_bytes=10**6)
    cache.put("m", ["a"], VECTOR)
    cache.put("m", ["a"], np.ones((1, 300), np.float32))
    assert counted(tmp_path / "c.db") == (1200 + 66, 1200 + 66)


def test_a_warm_hit_writes_nothing_so_readers_never_wait_for_a_writer(tmp_path, capsys):
    clock = Clock()
    cache = EmbeddingCache(tmp_path / "c.db", limit_bytes=10**6, clock=clock)
    cache.put("m", ["a"], VECTOR)
    writer = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        clock.now = 299  # within the resolution: the last use is not rewritten
        assert "a" in cache.get("m", ["a"])
    finally:
        writer.execute("ROLLBACK")
    assert capsys.readouterr().err == ""
    clock.now = 400
    assert "a" in cache.get("m", ["a"])
    with sqlite3.connect(tmp_path / "c.db") as db:
        assert db.execute("select used from embeddings").fetchone()[0] == 400


WRITER = """
import sys
import numpy as np
from mllzoo.store.usercache import EmbeddingCache
cache = EmbeddingCache(sys.argv[1], limit_bytes=int(sys.argv[2]))
for i in range(60):
    cache.put("m", [f"{sys.argv[3]}-{i}-{j}" for j in range(5)], np.ones((5, 384), np.float32))
"""


@pytest.mark.slow  # real processes
def test_the_bound_holds_across_processes_writing_at_once(tmp_path):
    path, limit = tmp_path / "c.db", 200_000
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(limit), name])
        for name in "pqrs"
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * 4
    kept, recount = counted(path)
    assert kept == recount and limit - 5 * 1700 < kept <= limit  # 4 x 0.5 MB written
    assert path.stat().st_size < 2 * limit  # freed pages are reused: the file does not grow on
    with sqlite3.connect(path) as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_a_bound_of_0_turns_the_cache_off_and_never_opens_the_file(tmp_path, user_config):

    env = {"XDG_CONFIG_HOME": str(user_config)}
    assert run_cli("config", "set", "embedding-cache-mb", "0", env=env).returncode == 0
    cache = EmbeddingCache(tmp_path / "c.db")  # the setting
    cache.put("m", ["a"], VECTOR)
    assert cache.get("m", ["a"]) == {} and cache.held_bytes() is None
    assert not (tmp_path / "c.db").exists()
    assert run_cli("config", "set", "embedding-cache-mb", "0.5", env=env).returncode == 0
    cache = EmbeddingCache(tmp_path / "c.db")
    cache.put("m", [f"t{i}" for i in range(2000)], np.ones((2000, 100), np.float32))
    assert 499_000 < cache.held_bytes() <= 500_000


def test_bad_bounds_are_one_line(user_config, tmp_path, capsys):

    env = {"XDG_CONFIG_HOME": str(user_config)}
    for value in ("-1", "nan", "inf", "lots"):
        result = run_cli("config", "set", "embedding-cache-mb", "--", value, env=env)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert "embedding-cache-mb must be a number of megabytes" in result.stderr
    (user_config / "mllzoo").mkdir(parents=True)
    (user_config / "mllzoo" / "config.json").write_text('{"embedding-cache-mb": "-3"}')
    cache = EmbeddingCache(tmp_path / "c.db")  # a hand edit: the cache is skipped, with one warning
    cache.put("m", ["a"], VECTOR)
    assert cache.get("m", ["a"]) == {}
    assert capsys.readouterr().err.count("embedding-cache-mb must be") == 1


def test_a_cache_written_before_bounds_is_bounded_keeping_its_rows(tmp_path):
    from mllzoo.store import blobs

    packed = blobs.pack(VECTOR[0])
    with sqlite3.connect(tmp_path / "c.db") as db:  # what the previous release wrote
        db.execute(
            "create table embeddings (embedder text not null, text text not null, dtype text not "
            "null, shape text not null, data blob not null, checksum text not null, primary key "
            "(embedder, text)) without rowid"
        )
        db.execute(
            "insert into embeddings values ('m', 'old', ?, ?, ?, ?)",
            [packed["dtype"], packed["shape"], packed["data"], packed["checksum"]],
        )
    cache = EmbeddingCache(tmp_path / "c.db", limit_bytes=2 * 468, clock=lambda: 10**9)
    assert cache.held_bytes() == 468 and counted(tmp_path / "c.db") == (468, 468)
    assert keys(tmp_path / "c.db") == ["old"]  # kept, last used long ago
    cache.put("m", ["new", "nex"], np.ones((2, 100), np.float32))
    assert keys(tmp_path / "c.db") == ["new", "nex"]
