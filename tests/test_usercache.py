"""The user's embedding cache: keyed by embedder and text, and never a reason for a command to fail."""

from __future__ import annotations

import sqlite3

import numpy as np

from mllzoo.usercache import EmbeddingCache, default_path


def test_keyed_by_embedder_and_exact_text(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.db")
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put("minilm", ["dog", "a photo of a dog."], vectors)
    assert cache.get("other", ["dog"]) == {}
    found = cache.get("minilm", ["dog", "Dog", "a photo of a dog.", "cat"])
    assert sorted(found) == ["a photo of a dog.", "dog"]
    assert np.array_equal(found["dog"], vectors[0]) and found["dog"].dtype == np.float32
    cache.close()
    assert EmbeddingCache(tmp_path / "c.db").get("minilm", ["a photo of a dog."])["a photo of a dog."][2] == 5


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
