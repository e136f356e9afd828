"""The sample sets people have (issue 28): several ``--samples`` roots drawn in turn, ImageNet-1k
class-index folders (ImageNet-V2's layout) read as wnids, and a build that reports what it left out,
fails without leaving a file, and says which labels its new graph leaves behind. Real image folders in
the real layouts, real WordNet, real registries."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import run_cli, write_images
from mllzoo.cli.main import cli
from mllzoo.graph.concept_graph import build_graph
from mllzoo.graph.layouts import TABLE_SOURCE, imagenet1k_wnids

TENCH, GOLDFISH = "n01440764", "n01443537"  # ImageNet-1k classes 0 and 1


def build(registry: Path, *args: str):
    return CliRunner().invoke(cli, ["--registry", str(registry), "graph", "build", *args])


@pytest.fixture
def datasets(tmp_path) -> Path:
    """ImageNet's layout (wnid folders) and ImageNet-V2's (class indices), side by side."""
    data = tmp_path / "data"
    write_images(data / "imagenet" / TENCH, (200, 60, 60), 6, 1)
    write_images(data / "imagenet" / GOLDFISH, (60, 200, 60), 6, 2)
    write_images(data / "imagenetv2" / "0", (210, 70, 70), 6, 3)
    write_images(data / "imagenetv2" / "1", (70, 210, 70), 6, 4)
    write_images(data / "sketch" / TENCH, (90, 90, 90), 1, 5)
    return data


def test_the_class_index_table_is_imagenet_1k_in_its_standard_order():
    wnids = imagenet1k_wnids()
    assert len(wnids) == 1000 == len(set(wnids)) and list(wnids) == sorted(wnids)
    assert (wnids[0], wnids[1], wnids[207], wnids[999]) == (
        TENCH,
        GOLDFISH,
        "n02099601",  # golden retriever, class 207
        "n15075141",  # toilet tissue, the last class
    )
    assert "timm" in TABLE_SOURCE


def sources_per_node(graph, synset: str) -> Counter:
    node = next(n.idx for n in graph.nodes if n.synset == synset)
    images = graph.samples[graph.samples[:, 0] == node, 1]
    return Counter(graph.image_paths[i].split("/")[0] for i in images)


def test_several_roots_contribute_to_a_node_in_turn_up_to_its_cap(datasets):
    roots = [datasets / "imagenet", datasets / "imagenetv2", datasets / "sketch"]
    graph = build_graph(roots, max_per_node=7)
    assert sources_per_node(graph, "tench.n.01") == {"imagenet": 3, "imagenetv2": 3, "sketch": 1}
    assert sources_per_node(graph, "goldfish.n.01") == {"imagenet": 4, "imagenetv2": 3}
    # a hypernym of both draws from each root in turn too, never more than the cap
    assert sum(sources_per_node(graph, "cyprinid.n.01").values()) == 7
    assert sources_per_node(graph, "cyprinid.n.01")["sketch"] <= 1
    assert graph.source == str(datasets.resolve())  # paths are relative to the common folder
    assert all((datasets / path).is_file() for path in graph.image_paths)
    again = build_graph(roots, max_per_node=7)
    assert again.id == graph.id  # seeded: the same roots give the same graph
    assert build_graph(roots[::-1], max_per_node=7).id != graph.id  # the order given matters


def test_a_second_samples_root_no_longer_replaces_the_first(datasets, tmp_path):
    db = tmp_path / "r.db"
    result = build(
        db, "--samples", str(datasets / "imagenet"), "--samples", str(datasets / "imagenetv2"),
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert [(s["layout"], s["folders"], s["images"]) for s in info["sources"]] == [
        ("wordnet", 2, 12),
        ("imagenet-1k class index", 2, 12),
    ]
    assert info["images"] == 24
    check = CliRunner().invoke(cli, ["--registry", str(db), "graph", "check", "--json"])
    assert check.exit_code == 0 and json.loads(check.stdout)["missing"] == 0


def test_class_index_folders_are_read_as_their_wnids_and_the_layout_is_named(datasets, tmp_path):
    result = build(tmp_path / "r.db", "--samples", str(datasets / "imagenetv2"))
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("Note:")]
    assert notes == [
        f"Note: {datasets / 'imagenetv2'}: 2 ImageNet-1k class-index folders (0..999, the "
        f"ImageNet-V2 layout), read as wnids by the class-index table of {TABLE_SOURCE}"
    ]
    graph = build_graph(datasets / "imagenetv2")
    assert {"tench.n.01", "goldfish.n.01"} <= {node.synset for node in graph.nodes}
    assert graph.unknown_folders == []


def test_a_folder_that_only_looks_like_an_index_is_not_one(tmp_path):
    write_images(tmp_path / "s" / "1000", (1, 2, 3), 2, 0)  # no ImageNet-1k class
    write_images(tmp_path / "s" / "007", (1, 2, 3), 2, 1)  # ImageNet-V2 writes no leading zeros
    write_images(tmp_path / "s" / TENCH, (1, 2, 3), 2, 2)
    graph = build_graph(tmp_path / "s")
    assert graph.unknown_folders == ["007", "1000"]
    assert {node.synset for node in graph.nodes} >= {"tench.n.01"}


def test_what_a_build_leaves_out_is_counted_and_named(tmp_path):
    root = tmp_path / "s"
    write_images(root / "dog.n.01", (200, 60, 60), 3, 0)
    (root / "dog.n.01" / "scan.ppm").write_bytes(b"P3 1 1 255 0 0 0")
    (root / "dog.n.01" / "README").write_text("no extension")
    (root / "dog.n.01" / "nested").mkdir()
    (root / "cat.n.01").mkdir()  # empty
    (root / "n99999999").mkdir()  # a wnid WordNet does not have: NLTK warns about it
    (root / "labels.csv").write_text("stray file in the root")
    db = tmp_path / "r.db"
    result = build(db, "--samples", str(root), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["ignored"] == [
        "labels.csv",
        "dog.n.01/README",
        "dog.n.01/nested",
        "dog.n.01/scan.ppm",
    ]
    assert info["empty_folders"] == ["cat.n.01"] and info["unknown_folders"] == ["n99999999"]
    text = build(db, "--samples", str(root))
    assert "Traceback" not in text.output and "UserWarning" not in text.output
    assert "warnings.warn" not in text.output  # NLTK's own warning never reaches the user
    lines = text.stderr.splitlines()
    assert "Warning: 1 folder(s) hold no image and were skipped: cat.n.01" in lines
    assert "Warning: 1 folder(s) are not WordNet noun synsets and were skipped: n99999999" in lines
    assert any(
        line.startswith("Warning: 4 file(s) are not images by their name")
        and line.endswith("labels.csv, dog.n.01/README, dog.n.01/nested, dog.n.01/scan.ppm")
        for line in lines
    ), lines


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_build_leaves_no_file_and_changes_nothing(tmp_path, datasets, existing):
    db = tmp_path / "r.db"
    if existing:
        assert build(db, "--samples", str(datasets / "imagenet")).exit_code == 0
        before = db.read_bytes()
    (tmp_path / "empty").mkdir()
    for samples in (tmp_path / "empty", tmp_path / "missing"):
        failed = build(db, "--samples", str(samples))
        assert failed.exit_code == 2 and failed.output.count("\n") == 1, failed.output
        assert failed.output.startswith("Error: ")
    if existing:
        assert db.read_bytes() == before
    else:
        assert not [name for name in os.listdir(tmp_path) if name.startswith("r.db")]


def test_overlapping_roots_are_refused(datasets, tmp_path):
    result = build(
        tmp_path / "r.db", "--samples", str(datasets), "--samples", str(datasets / "sketch")
    )
    assert result.exit_code == 2 and "overlap" in result.output
    assert not (tmp_path / "r.db").exists()


@pytest.mark.slow
def test_a_new_graph_says_how_many_labels_stop_applying(world, tmp_path):
    import sqlite3

    root, env = world
    db = tmp_path / "r.db"
    shutil.copyfile(env["MLLZOO_REGISTRY"], db)
    with sqlite3.connect(db) as conn:
        labeled_models = sorted(m for (m,) in conn.execute("select model_id from labels"))
    assert labeled_models
    write_images(tmp_path / "other" / "dog.n.01", (1, 2, 3), 2, 0)
    same = build(db, "--samples", str(root / "samples"), "--json")
    assert same.exit_code == 0 and json.loads(same.stdout)["labels_not_applying"] == []
    changed = build(db, "--samples", str(tmp_path / "other"))
    assert changed.exit_code == 0, changed.output
    labeled = json.loads(same.stdout)["id"]
    notes = [line for line in changed.stderr.splitlines() if "stop applying" in line]
    assert len(notes) == 1 and notes[0].startswith(
        f"Note: the registry's graph changed from {labeled} to "
    )
    assert f"{len(labeled_models)} label(s) made on" in notes[0]
    assert "they stay stored under that graph" in notes[0]
    with sqlite3.connect(db) as conn:  # kept, under their own graph
        assert sorted(m for (m,) in conn.execute("select model_id from labels")) == labeled_models
    rebuilt = build(db, "--samples", str(root / "samples"), "--json")
    assert json.loads(rebuilt.stdout)["labels_not_applying"] == []  # back: they apply again


def test_without_nltk_the_graph_extra_is_named(tmp_path, datasets):
    hidden = tmp_path / "no_nltk"
    (hidden / "nltk").mkdir(parents=True)
    (hidden / "nltk" / "__init__.py").write_text("raise ImportError('No module named nltk')\n")
    env = {
        "PYTHONPATH": os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")]),
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
    }
    result = run_cli("graph", "build", "--samples", str(datasets / "imagenet"), env=env)
    assert result.returncode == 2 and not (tmp_path / "r.db").exists()
    assert result.stderr.strip() == (
        "Error: building a graph needs nltk, which mllzoo's graph extra installs: "
        "pip install 'mllzoo[graph]'"
    )
