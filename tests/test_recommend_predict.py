"""recommend and predict as a user runs them: real CLI subprocesses over a registry labeled with tiny models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import run_cli, write_images


def test_recommend_json_shape(world):
    root, env = world
    result = run_cli("recommend", str(root / "classes.txt"), "-k", "2", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [c["name"] for c in data["classes"]] == ["dog", "cat", "banana"]
    for row in data["classes"]:
        assert len(row["models"]) == 2 and {"id", "score"} <= set(row["models"][0])
        assert len(row["nodes"]) == 5 and sum(n["weight"] for n in row["nodes"]) == pytest.approx(
            1, abs=1e-4
        )
    assert data["classes"][0]["nodes"][0]["synset"] == "dog.n.01"
    assert set(data["models"]) == {"tinyclip/tiny-a.seed0", "tinyclip/tiny-b.seed0"}
    table = run_cli("recommend", str(root / "classes.txt"), env=env)
    assert table.returncode == 0 and "model(s) to load" in table.stdout and "dog" in table.stdout


def test_predict_folder_prints_accuracy(world):
    root, env = world
    result = run_cli(
        "predict", str(root / "task"), "--classes", str(root / "classes.txt"), "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["predictions"]) == 12 and 0 <= data["accuracy"] <= 1
    truth = [p["path"].split("/")[-2] for p in data["predictions"]]
    assert data["accuracy"] == pytest.approx(
        np.mean([p["label"] == t for p, t in zip(data["predictions"], truth)])
    )
    text = run_cli(
        "predict",
        str(root / "task" / "dog" / "000.png"),
        "--classes",
        str(root / "classes.txt"),
        env=env,
    )
    assert text.returncode == 0 and "accuracy" not in text.stdout and "000.png" in text.stdout


def test_predict_reports_per_class_and_warns_about_folders_of_no_class(world, tmp_path):
    import shutil

    root, env = world
    task = tmp_path / "task"
    shutil.copytree(root / "task", task)
    write_images(task / "zebra", (10, 10, 10), 3, 7)  # a sub-folder not in the class list
    result = run_cli(
        "predict", str(task), "--classes", str(root / "classes.txt"), "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "named like no class" in line]
    assert (
        len(warning) == 1
        and "3 image(s) in 1 sub-folder(s)" in warning[0]
        and "zebra (3)" in warning[0]
    )
    data = json.loads(result.stdout)
    assert data["unmatched_folders"] == {"zebra": 3} and len(data["predictions"]) == 15
    truth = {p["path"]: p["path"].split("/")[-2] for p in data["predictions"]}
    for entry in data["per_class"]:  # every figure recomputed from the predictions
        own = [p["label"] for p in data["predictions"] if truth[p["path"]] == entry["class"]]
        assert entry["images"] == len(own) == 4
        assert entry["accuracy"] == round(sum(label == entry["class"] for label in own) / 4, 6)
        wrong = [label for label in own if label != entry["class"]]
        assert sum(c["images"] for c in entry["confused_with"]) == len(wrong)
    assert {e["class"] for e in data["per_class"]} == {"dog", "cat", "banana"}
    text = run_cli("predict", str(task), "--classes", str(root / "classes.txt"), env=env).stdout
    assert sum("confused with:" in line for line in text.splitlines()) == 3


def test_ensemble_follows_inverse_entropy_rule(world, tinyclip_plugin, monkeypatch):
    import mllzoo
    from mllzoo.reuse.ensemble import inverse_entropy_weights

    root, env = world
    monkeypatch.setenv("MLLZOO_REGISTRY", env["MLLZOO_REGISTRY"])
    rec = mllzoo.recommend(root / "classes.txt", k=1, registry=env["MLLZOO_REGISTRY"])
    ensemble = rec.ensemble(device="cpu")
    paths = sorted((root / "task").rglob("*.png"))
    per_model, readable = ensemble.model_probabilities(paths)
    expected = np.zeros((len(paths), 3))
    for model_id, p in per_model.items():
        entropy = -(p * np.log(p)).sum(axis=1)
        assert inverse_entropy_weights(p) == pytest.approx(1 / entropy)
        expected += (1 / entropy)[:, None] * p * ensemble.members[model_id][None, :]
    proba, _ = ensemble.predict_proba(paths)
    assert proba == pytest.approx(expected / expected.sum(axis=1, keepdims=True))
    assert ensemble.predict(paths) == [ensemble.classes[i] for i in expected.argmax(axis=1)]


def test_entropy_guards():
    from mllzoo.reuse.ensemble import inverse_entropy_weights

    weights = inverse_entropy_weights(np.array([[1.0, 0.0], [0.5, 0.5], [np.nan, 0.5]]))
    assert (
        weights[0] == pytest.approx(1e6)
        and weights[1] == pytest.approx(1 / np.log(2))
        and weights[2] == 0
    )


def test_unreadable_images_are_skipped_and_counted(world, tmp_path):
    root, env = world
    task = tmp_path / "task"
    shutil.copytree(root / "task", task)
    (task / "dog" / "broken.png").write_bytes(b"junk")
    result = run_cli(
        "predict", str(task), "--classes", str(root / "classes.txt"), "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["unreadable"] == 1 and "Warning: 1 unreadable image(s) skipped" in result.stderr
    assert [p["label"] for p in data["predictions"] if p["path"].endswith("broken.png")] == [None]


def test_a_folder_of_only_unreadable_images_is_an_error_before_any_model_loads(
    world, tmp_path, monkeypatch
):
    """As an empty folder is, and found before selection loads a model (seconds, and GPU memory, for
    a large one): a truncated file decodes its header, so the check decodes whole images."""
    from mllzoo.reuse import ensemble

    loads: list[str] = []
    load = ensemble.load_model
    monkeypatch.setattr(
        ensemble, "load_model", lambda spec, *a, **kw: loads.append(spec) or load(spec, *a, **kw)
    )
    root, env = world
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"junk")
    sample = next((root / "task" / "dog").iterdir())
    good = sample.read_bytes()
    (folder / "b.png").write_bytes(good[: len(good) // 2])  # truncated: its header reads
    result = run_cli("predict", str(folder), "--classes", str(root / "classes.txt"), env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert "Error: none of the 2 image(s) could be read: nothing predicted" in result.stderr
    assert "Traceback" not in result.stderr and loads == []

    shutil.copy(sample, folder / "c.png")  # one readable: predicted
    result = run_cli("predict", str(folder), "--classes", str(root / "classes.txt"), env=env)
    assert result.returncode == 0, result.stderr
    assert loads and "2 unreadable image(s) skipped" in result.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "class file not found"),
        (b"", "lists no classes"),
        (b"# only a comment\n\n", "lists no classes"),
        (b"dog\ncat\ndog\n", "duplicate classes: dog"),
        (b"caf\xe9\n", "is not UTF-8"),
        ("dog\ncat\n".encode("utf-16-le"), "looks like UTF-16"),  # no BOM
        ("dog\ncat\n".encode("utf-16"), "looks like UTF-16"),
        ("folder", "is a folder"),
        ("".join(f"class {i}\n" for i in range(10_000)).encode(), "at most 5000"),
    ],
)
def test_bad_class_files(world, tmp_path, content, message):
    root, env = world
    path = tmp_path / "classes.txt"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    for command in (
        ["recommend", str(path)],
        ["predict", str(root / "task"), "--classes", str(path)],
    ):
        result = run_cli(*command, env=env)
        assert result.returncode == 2 and message in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_words_warn_but_work(world, tmp_path):
    root, env = world
    path = tmp_path / "c.txt"
    path.write_text("xqzzv blorft\ndog\n")
    result = run_cli("recommend", str(path), "--json", env=env)
    assert (
        result.returncode == 0
        and "match no concept of the graph well: xqzzv blorft" in result.stderr
    )


def test_empty_registry_and_unknown_model(world, tmp_path, sample_folder):
    root, env = world
    empty = {**env, "MLLZOO_REGISTRY": str(tmp_path / "empty.db")}
    result = run_cli("recommend", str(root / "classes.txt"), env=empty)
    assert result.returncode == 2 and "registry not found" in result.stderr
    assert run_cli("graph", "build", "--samples", str(sample_folder), env=empty).returncode == 0
    result = run_cli("recommend", str(root / "classes.txt"), env=empty)
    assert result.returncode == 2 and "no labeled models" in result.stderr
    result = run_cli("register", "nope/not.there", env=empty)
    assert result.returncode == 2 and "unknown model id: nope/not.there" in result.stderr
    missing = run_cli(
        "predict", str(tmp_path / "nothing"), "--classes", str(root / "classes.txt"), env=env
    )
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr


def test_node_caption_embeddings_are_cached_per_embedder(world):
    from mllzoo.graph.concept_graph import load_graph
    from mllzoo.store.registry import Registry

    root, env = world
    assert run_cli("recommend", str(root / "classes.txt"), env=env).returncode == 0
    registry = Registry(env["MLLZOO_REGISTRY"])
    graph = load_graph(registry)
    vectors = registry.node_embeddings(graph.id, "minilm")
    assert vectors.shape == (len(graph.nodes), 384)
    assert (
        registry.db["text_embeddings"].count_where("embedder = ?", ["minilm"]) == 0
    )  # local: nothing per text
    # a second run reads the kept matrix instead of embedding again: a planted row shows through
    planted = vectors.copy()
    planted[:] = planted[::-1]
    registry.save_node_embeddings(graph.id, "minilm", planted)
    second = run_cli("recommend", str(root / "classes.txt"), "--json", env=env)
    registry.save_node_embeddings(graph.id, "minilm", vectors)
    first = run_cli("recommend", str(root / "classes.txt"), "--json", env=env)
    assert second.returncode == first.returncode == 0
    assert (
        json.loads(second.stdout)["classes"][0]["nodes"]
        != json.loads(first.stdout)["classes"][0]["nodes"]
    )


@pytest.mark.slow  # real processes
def test_classes_from_standard_input(world):
    import subprocess
    import sys

    root, env = world
    result = subprocess.run(
        [sys.executable, "-m", "mllzoo", "recommend", "-", "--json"],
        input="dog\ncat\n",
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env},
    )
    assert result.returncode == 0, result.stderr
    assert [c["name"] for c in json.loads(result.stdout)["classes"]] == ["dog", "cat"]


def test_a_label_published_while_a_selector_is_open_is_left_out(world, tmp_path):
    import sqlite3

    from mllzoo.selection.recommend import Selector
    from mllzoo.store.registry import Registry

    root, env = world
    with (
        sqlite3.connect(env["MLLZOO_REGISTRY"]) as source,
        sqlite3.connect(tmp_path / "r.db") as copy,
    ):
        source.backup(copy)
    registry = Registry(tmp_path / "r.db")
    selector = Selector(registry, captioner="templates")
    before = selector.recommend(["dog", "cat"])
    fmt, arrays, meta = registry.load_label(selector.model_ids[0], selector.graph.id)
    registry.save_label(
        "tinyclip/late.copy", selector.graph.id, fmt, arrays, meta
    )  # as a concurrent register would
    after = selector.recommend(["dog", "cat"])
    assert after.model_ids == before.model_ids and "tinyclip/late.copy" not in after.model_ids
    assert np.array_equal(after.selection.scores, before.selection.scores)
    assert "tinyclip/late.copy" in Selector(registry, captioner="templates").model_ids
