"""Graph build from a synset-named folder: hypernyms, cap, seed, spellings, unknown names."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli, write_images
from mllzoo.errors import MllzooError
from mllzoo.graph.concept_graph import build_graph, load_graph, save_graph


def test_hypernyms_draw_samples_from_descendants(sample_folder):
    graph = build_graph(sample_folder)
    by_name = {node.synset: node for node in graph.nodes}
    assert {"dog.n.01", "cat.n.01", "car.n.01", "apple.n.01", "banana.n.02"} <= set(
        by_name
    )  # wnid n02958343 = car
    assert {"carnivore.n.01", "animal.n.01", "entity.n.01"} <= set(by_name)
    assert graph.unknown_folders == ["not_a_synset"]
    count = {node.idx: 0 for node in graph.nodes}
    for node_idx, _ in graph.samples:
        count[node_idx] += 1
    assert count[by_name["dog.n.01"].idx] == 6
    assert count[by_name["carnivore.n.01"].idx] == 12  # dog + cat images
    assert count[by_name["entity.n.01"].idx] == 30
    assert by_name["dog.n.01"].caption.startswith("dog which is a member of the genus Canis")
    carnivore = by_name["carnivore.n.01"].idx
    assert carnivore in by_name["dog.n.01"].parents or any(
        carnivore in graph.nodes[p].parents for p in by_name["dog.n.01"].parents
    )


def test_cap_and_seed(sample_folder):
    capped = build_graph(sample_folder, max_per_node=4, seed=1)
    again = build_graph(sample_folder, max_per_node=4, seed=1)
    other = build_graph(sample_folder, max_per_node=4, seed=2)
    per_node = {}
    for node_idx, image_idx in capped.samples:
        per_node.setdefault(int(node_idx), []).append(int(image_idx))
    assert max(len(v) for v in per_node.values()) == 4
    assert capped.samples.tolist() == again.samples.tolist() and capped.id == again.id
    assert capped.samples.tolist() != other.samples.tolist()


def test_star_spelling_and_wnid(tmp_path):
    write_images(tmp_path / "s" / "n02084071", (1, 2, 3), 2, 0)
    write_images(tmp_path / "s" / "read*write_head.n.01", (4, 5, 6), 2, 1)  # "read/write_head.n.01"
    names = {node.synset for node in build_graph(tmp_path / "s").nodes}
    assert {"dog.n.01", "read/write_head.n.01"} <= names


def test_no_valid_folder_is_a_user_error(tmp_path):
    write_images(tmp_path / "s" / "nonsense_word", (1, 2, 3), 2, 0)
    with pytest.raises(MllzooError, match="no synset-named folder"):
        build_graph(tmp_path / "s")


def test_graph_round_trips_through_registry(registry, sample_folder):
    graph = build_graph(sample_folder)
    save_graph(registry, graph, str(sample_folder))
    back = load_graph(registry)
    assert back.id == graph.id and back.captions == graph.captions
    assert (
        back.samples.tolist() == graph.samples.tolist() and back.image_hashes == graph.image_hashes
    )
    assert back.info() == graph.info()


@pytest.mark.slow
def test_graph_cli(tmp_path, sample_folder):
    db = str(tmp_path / "r.db")
    built = run_cli("--registry", db, "graph", "build", "--samples", str(sample_folder), "--json")
    assert built.returncode == 0, built.stderr
    info = json.loads(built.stdout)
    assert info["unknown_folders"] == ["not_a_synset"] and info["leaves"] == 5
    shown = json.loads(run_cli("--registry", db, "graph", "info", "--json").stdout)
    assert {k: shown[k] for k in ("nodes", "edges", "samples", "depth")} == {
        k: info[k] for k in ("nodes", "edges", "samples", "depth")
    }
    missing = run_cli("--registry", db, "graph", "build", "--samples", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "sample folder not found" in missing.stderr
