"""The user's embedding cache: keyed by embedder and text, and never a reason for a command to fail."""

from __future__ import annotations

import sqlite3

import numpy as np

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
