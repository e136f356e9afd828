"""Labels stored as node blocks: whole labels come back exactly, a query reads only its nodes' blocks and
answers as the whole-label replay does, and damage is one error naming the model, wherever it lies."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlite_utils

import reference
from conftest import ROOT
from helpers import save_plain_graph
from mllzoo import labels
from mllzoo.errors import DamagedLabelError
from mllzoo.store.registry import Registry, migrations

N_NODES = 40


def shared_image_graph(seed: int = 0, n_nodes: int = N_NODES, n_images: int = 150):
    """Leaves own their images; every node also samples images of others, as hypernyms do."""
    rng = np.random.default_rng(seed)
    pairs = {(int(rng.integers(n_nodes)), i) for i in range(n_images)}
    pairs |= {
        (int(n), int(i))
        for n, i in zip(rng.integers(0, n_nodes, 200), rng.integers(0, n_images, 200))
    }
    samples = np.array(sorted(pairs), np.int32)
    return samples, n_images


def random_label(
    samples: np.ndarray, n_images: int, rng: np.random.Generator, m: int
) -> labels.Label:
    similarity = rng.normal(size=(n_images, N_NODES)).astype(np.float32)
    similarity[samples[:, 1], samples[:, 0]] += rng.normal(1.0, 1.0, len(samples))
    rank = labels.own_ranks(similarity, samples[:, 0], samples[:, 1])
    unreadable = np.isin(samples[:, 1], rng.choice(n_images, 5, replace=False))
    rank[unreadable] = -1
    return reference.label_from_ranking(labels.rank_images(similarity, m), samples, rank, N_NODES)


def save_graph(registry: Registry, samples: np.ndarray, n_images: int) -> str:
    return save_plain_graph(registry, samples, N_NODES, n_images)


@pytest.fixture
def stocked(tmp_path):
    """A registry with a shared-image graph and three labels of different depths."""
    samples, n_images = shared_image_graph()
    registry = Registry(tmp_path / "r.db")
    graph_id = save_graph(registry, samples, n_images)
    rng = np.random.default_rng(1)
    whole = {}
    for i, m in enumerate((3, 12, N_NODES)):
        label = random_label(samples, n_images, rng, m)
        labels.validate(label, n_images, samples, N_NODES)
        registry.save_label(
            f"f/m{i}.t", graph_id, labels.FORMAT, label.arrays(), {"n_nodes": N_NODES}
        )
        whole[f"f/m{i}.t"] = label
    yield registry, graph_id, samples, whole
    registry.close()


def test_whole_labels_come_back_exactly(stocked):
    registry, graph_id, _, whole = stocked
    for model_id, label in whole.items():
        fmt, arrays, meta = registry.load_label(model_id, graph_id)
        assert fmt == labels.FORMAT and meta == {"n_nodes": N_NODES}
        for name, array in label.arrays().items():
            assert arrays[name].dtype == array.dtype and np.array_equal(arrays[name], array), name


def test_a_query_of_random_node_subsets_answers_as_whole_labels_do(stocked):
    registry, graph_id, samples, whole = stocked
    rng = np.random.default_rng(2)
    for _ in range(25):
        subset = np.unique(rng.choice(N_NODES, rng.integers(1, N_NODES), replace=False))
        in_subset = np.isin(np.arange(N_NODES), subset)
        views = list(registry.label_views(graph_id, sorted(whole), subset, labels.FORMAT))
        assert [model_id for model_id, _ in views] == sorted(whole)
        for model_id, (own, view) in views:
            got = labels.predict(view, own, in_subset, N_NODES)
            want = labels.restricted_predictions(whole[model_id], samples, subset)
            for g, w in zip(got, want):
                assert g.tolist() == w.tolist()


def test_only_candidate_labels_and_matched_nodes_are_read(stocked):
    """A damaged block outside the query cannot matter; one inside it is one error naming the model."""
    registry, graph_id, _, whole = stocked
    registry.db.execute(
        "update label_blocks set lengths = substr(lengths, 2) where model_id = 'f/m1.t' and node = 7"
    )
    registry.db.conn.commit()
    untouched = [n for n in range(N_NODES) if n != 7]
    assert (
        len(list(registry.label_views(graph_id, sorted(whole), np.array(untouched), labels.FORMAT)))
        == 3
    )
    assert [
        m
        for m, _ in registry.label_views(
            graph_id, ["f/m0.t", "f/m2.t"], np.arange(N_NODES), labels.FORMAT
        )
    ] == ["f/m0.t", "f/m2.t"]
    with pytest.raises(DamagedLabelError, match="f/m1.t.*node 7"):
        list(registry.label_views(graph_id, sorted(whole), np.array([3, 7]), labels.FORMAT))
    found = dict(
        registry.label_views(
            graph_id, sorted(whole), np.array([3, 7]), labels.FORMAT, skip_damaged=True
        )
    )
    assert isinstance(found["f/m1.t"], DamagedLabelError) and not isinstance(
        found["f/m0.t"], DamagedLabelError
    )
    with pytest.raises(DamagedLabelError, match="f/m1.t"):
        registry.load_label("f/m1.t", graph_id)


def test_a_block_of_a_node_the_graph_lacks_is_named_not_counted_as_minus_one(stocked):
    registry, graph_id, _, _ = stocked
    registry.db.execute(
        "insert into label_blocks select model_id, graph_id, node + 100000, dtype, ranks, lengths, "
        "entries, checksum from label_blocks where model_id = 'f/m0.t' and node = 5"
    )
    registry.db.conn.commit()
    with pytest.raises(DamagedLabelError, match="1 block.s. of nodes the graph does not have"):
        registry.load_label("f/m0.t", graph_id)


@pytest.mark.parametrize(
    "damage",
    [
        "update label_blocks set checksum = 'crc32:00000000' where model_id = 'f/m0.t' and node = 5",
        "delete from label_blocks where model_id = 'f/m0.t' and node = 5",
        "update label_blocks set entries = substr(entries, 3) where model_id = 'f/m0.t' and node = 5",
        "update label_blocks set ranks = substr(ranks, 2) where model_id = 'f/m0.t' and node = 5",
        "update label_blocks set dtype = '<i4' where model_id = 'f/m0.t' and node = 5",
    ],
)
def test_every_kind_of_block_damage_is_caught(stocked, damage):
    registry, graph_id, _, _ = stocked
    registry.db.execute(damage)
    registry.db.conn.commit()
    with pytest.raises(DamagedLabelError, match="f/m0.t"):
        list(registry.label_views(graph_id, ["f/m0.t"], np.array([5, 6]), labels.FORMAT))
    with pytest.raises(DamagedLabelError, match="f/m0.t"):
        registry.load_label("f/m0.t", graph_id)


def test_samples_that_disagree_on_their_image_list_are_refused():
    samples = np.array([[0, 0], [1, 0]], np.int32)  # one image, two nodes
    view = labels.SampleLists(
        np.array([1, 1], np.int16), np.array([1, 2], np.int16), np.array([1, 0], np.int16)
    )
    with pytest.raises(labels.InvalidLabel):
        labels.whole_label(view, samples[:, 1], 1, 3)


def test_a_registry_of_the_whole_array_layout_is_migrated_in_place(tmp_path):
    """Labels the previous schema wrote (one blob per array) read the same after the upgrade, and one
    already damaged still reads as damaged."""
    from mllzoo.store import blobs

    samples, n_images = shared_image_graph(seed=3)
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="m004_label_blocks")
    old["graphs"].insert({"id": "g", "name": "g", "created": "now", "meta": "{}"})
    old["samples"].insert_all(
        {"graph_id": "g", "node_idx": int(n), "image_idx": int(i)} for n, i in samples
    )
    old["images"].insert_all(
        {"graph_id": "g", "idx": i, "hash": f"{i:040x}", "path": ""} for i in range(n_images)
    )
    old["nodes"].insert_all(
        {"graph_id": "g", "idx": i, "synset": f"n{i}.n.01", "parents": "[]"} for i in range(N_NODES)
    )
    rng = np.random.default_rng(4)
    whole = {
        model_id: random_label(samples, n_images, rng, 6) for model_id in ("f/old.t", "f/bad.t")
    }
    for model_id, label in whole.items():
        old["labels"].insert(
            {
                "model_id": model_id,
                "graph_id": "g",
                "format": labels.FORMAT,
                "created": "now",
                "meta": json.dumps({"n_nodes": N_NODES}),
            }
        )
        old["label_arrays"].insert_all(
            {"model_id": model_id, "graph_id": "g", "name": name, **blobs.pack(a)}
            for name, a in label.arrays().items()
        )
    old.execute(
        "update label_arrays set checksum = 'crc32:00000000' where model_id = 'f/bad.t' and name = 'rank'"
    )
    old.conn.commit()
    old.close()

    registry = Registry(path)
    assert "label_arrays" not in registry.db.table_names()
    _, arrays, _ = registry.load_label("f/old.t", "g")
    assert all(np.array_equal(arrays[name], a) for name, a in whole["f/old.t"].arrays().items())
    with pytest.raises(DamagedLabelError, match="f/bad.t"):
        registry.load_label("f/bad.t", "g")
    registry.close()


@pytest.mark.slow  # 17 class lists, each selected twice
def test_the_shipped_registry_answers_as_whole_labels_do_for_every_mll_class_list():
    """Node-block reading against replaying whole labels, on the real graph and the real class lists."""
    from mllzoo.classes import read_classes
    from mllzoo.selection.recommend import Selector

    registry = Registry(ROOT / "registry.db", create=False, write=False)
    by_blocks = Selector(registry)
    whole = Selector(registry, keep_labels=True)
    for path in sorted((ROOT / "benchmarks" / "data" / "mll-classnames").glob("*.txt")):
        names = read_classes(path)
        for k in (1, 3):
            got = by_blocks.recommend(names, k=k).to_dict()
            want = whole.recommend(names, k=k).to_dict()
            assert json.dumps(got) == json.dumps(want), (path.name, k)
    registry.close()


def test_a_synthetic_registry_answers_as_whole_labels_do(stocked):
    """Random class vectors over a graph with shared and unreadable images, with and without a budget:
    scores and choices from node blocks equal those from whole labels, to the bit."""
    from mllzoo.selection.recommend import stored_replay
    from mllzoo.selection.scoring import select

    registry, graph_id, samples, whole = stocked
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(N_NODES, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    model_ids = sorted(whole)
    for _ in range(10):
        classes = rng.normal(size=(int(rng.integers(1, 12)), 8)).astype(np.float32)
        classes /= np.linalg.norm(classes, axis=1, keepdims=True)
        for top_nodes, max_models in ((1, None), (3, None), (5, 1)):
            options = {"k": 2, "top_nodes": top_nodes, "max_models": max_models}
            got = select(
                classes, vectors, stored_replay(registry, graph_id, N_NODES, model_ids), **options
            )
            want = select(
                classes,
                vectors,
                labels.replayer([whole[m] for m in model_ids], samples, N_NODES),
                **options,
            )
            assert np.array_equal(got.scores, want.scores) and got.chosen == want.chosen


def test_an_exported_label_names_no_absolute_path_of_this_machine(stocked, tmp_path):
    """A model the user named by a local folder: the file carries the folder's name, not its path."""
    import zipfile

    from mllzoo.labeling.transfer import export_labels

    registry, graph_id, _, _ = stocked
    with registry.transaction():
        registry._write_models(
            [
                {
                    "id": "f/m0.t",
                    "family": "f",
                    "arch": "m0",
                    "tag": "t",
                    "plugin": "p",
                    "plugin_version": "1",
                    "metadata": {"source": "/home/alice/models/my-clip"},
                }
            ],
            update=True,
        )
    export_labels(registry, ["f/m0.t"], tmp_path / "out.mllzoo-labels")
    with zipfile.ZipFile(tmp_path / "out.mllzoo-labels") as archive:
        text = b"".join(
            archive.read(name) for name in archive.namelist() if name.endswith(".json")
        ).decode()
    assert "/home/alice" not in text and "my-clip" in text


@pytest.mark.parametrize("chunk", [1, 3, 7, 10**9])
def test_the_bounded_ragged_gather_equals_the_whole_one(monkeypatch, chunk):
    """Gathering a few entries at a time (chunks that split, skip and swallow rows, empty rows and
    an empty gather) gives what one gather over all positions gives."""
    monkeypatch.setattr(labels, "RAGGED_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    values = rng.integers(0, 1000, 60).astype(np.int16)
    counts = rng.integers(0, 6, 25)
    counts[[0, 7, 8]] = 0
    starts = rng.integers(0, 60 - counts.max(initial=0), 25)
    got = labels.ragged_take(values, starts, counts)
    assert got.dtype == values.dtype
    assert np.array_equal(got, values[labels.ragged_index(starts, counts)])
    assert len(labels.ragged_take(values, starts[:0], counts[:0])) == 0
