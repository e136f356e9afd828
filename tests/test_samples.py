"""The sample set's identity: `graph check`, register's refusal of missing or altered samples, safe reads.

Every CLI test runs the real `mllzoo` in a subprocess on real files and a real SQLite registry.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli
from mllzoo.errors import MllzooError
from mllzoo.graph.images import decode_rgb
from mllzoo.graph.samples import (
    MISSING,
    UnavailableSample,
    inside,
    read_regular,
    refuse_beyond_tolerance,
)


@pytest.fixture
def built(tmp_path, sample_folder, tinyclip_site):
    """A registry whose graph was built from ``sample_folder``; the env runs the tiny family only."""
    env = {
        "PYTHONPATH": str(tinyclip_site),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
    }
    result = run_cli("graph", "build", "--samples", str(sample_folder), "--json", env=env)
    assert result.returncode == 0, result.stderr
    return env, json.loads(result.stdout)


def query(env: dict, sql: str) -> list[tuple]:
    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as db:
        return db.execute(sql).fetchall()


def image_paths(env: dict) -> list[str]:
    return [path for (path,) in query(env, "select path from images order by idx")]


def check(env: dict, *args: str):
    result = run_cli("graph", "check", "--json", *args, env=env)
    return result.returncode, json.loads(result.stdout)


def test_graph_check_complete_missing_and_altered(built, sample_folder, tmp_path):
    env, info = built
    code, report = check(env)  # default folder: the one the graph was built from
    assert code == 0 and report["ok"] and report["present"] == report["images"] == info["images"]
    assert report["missing"] == report["different"] == 0 and report["samples"] == str(
        sample_folder.resolve()
    )

    paths = sorted(image_paths(env))
    (sample_folder / paths[0]).unlink()
    (sample_folder / paths[1]).write_bytes((sample_folder / paths[1]).read_bytes() + b"\0")
    code, report = check(env, "--samples", str(sample_folder))
    assert code == 1 and not report["ok"]
    assert (report["present"], report["missing"], report["different"]) == (info["images"] - 2, 1, 1)
    assert report["missing_paths"] == [paths[0]] and report["different_paths"] == [paths[1]]

    text = run_cli("graph", "check", "--samples", str(sample_folder), env=env)
    assert (
        text.returncode == 1 and text.stderr.count("\n") == 1 and text.stderr.startswith("Error: ")
    )
    assert f"missing: {paths[0]}" in text.stdout and "1 missing, 1 different" in text.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    code, report = check(env, "--samples", str(empty))
    assert code == 1 and report["missing"] == info["images"] and len(report["missing_paths"]) == 5
    absent = run_cli("graph", "check", "--samples", str(tmp_path / "nope"), env=env)
    assert absent.returncode == 2 and "sample folder not found" in absent.stderr


def labels_stored(env: dict) -> int:
    return (
        query(env, "select count(*) from labels")[0][0]
        + query(env, "select count(*) from label_parts")[0][0]
    )


@pytest.mark.parametrize("damage", ["empty", "partial", "altered"])
def test_register_refuses_missing_or_altered_samples_and_stores_nothing(
    built, sample_folder, tmp_path, damage
):
    env, _ = built
    folder = tmp_path / "copy"
    if damage == "empty":
        folder.mkdir()
    else:
        shutil.copytree(sample_folder, folder)
        victim = folder / sorted(image_paths(env))[3]
        victim.unlink() if damage == "partial" else victim.write_bytes(b"\x89PNG other bytes")
    result = run_cli("register", "--samples", str(folder), env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "no label is stored from images it did not see" in result.stderr
    assert labels_stored(env) == 0
    assert query(env, "select count(*) from runs")[0][0] == 0  # refused before any model ran


def test_tolerance_boundary():
    refuse_beyond_tolerance(1, 0, 1000, 0.001, "s")  # 0.1% of 1,000 images: one may be missing
    with pytest.raises(MllzooError, match="1 missing and 1 different of 1000"):
        refuse_beyond_tolerance(1, 1, 1000, 0.001, "s")
    with pytest.raises(MllzooError):
        refuse_beyond_tolerance(0, 1, 999, 0.001, "s")
    refuse_beyond_tolerance(9, 0, 10, 1.0, "s")
    with pytest.raises(MllzooError, match="or all"):  # no override makes a label from no images
        refuse_beyond_tolerance(10, 0, 10, 1.0, "s")


def bomb_png(path: Path) -> None:
    """A small PNG whose pixel count exceeds Pillow's decompression-bomb warning limit."""
    side = int(Image.MAX_IMAGE_PIXELS**0.5) + 100
    Image.new("1", (side, side)).save(path)


def test_override_accepts_gaps_and_the_label_records_its_coverage(built, sample_folder, tmp_path):
    env, info = built
    folder = tmp_path / "copy"
    shutil.copytree(sample_folder, folder)
    paths = sorted(image_paths(env))
    (folder / paths[0]).unlink()
    refused = run_cli("register", "--samples", str(folder), env=env)
    assert refused.returncode == 2 and labels_stored(env) == 0

    # an undecodable image and a decompression bomb: part of the graph, skipped and counted, never fatal
    (sample_folder / "dog.n.01" / "broken.png").write_bytes(b"not a png")
    bomb_png(sample_folder / "cat.n.01" / "bomb.png")
    rebuilt = run_cli("graph", "build", "--samples", str(sample_folder), "--json", env=env)
    images = json.loads(rebuilt.stdout)["images"]
    assert images == info["images"] + 2
    folder_2 = tmp_path / "copy2"
    shutil.copytree(sample_folder, folder_2)
    (folder_2 / paths[0]).unlink()
    result = run_cli(
        "register", "--samples", str(folder_2), "--allow-missing", "0.05", "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["labeled"]) == 2
    assert (report["missing_images"], report["different_images"], report["undecodable_images"]) == (
        1,
        0,
        2,
    )
    assert "unreadable image" not in result.stderr  # no line per file
    assert sorted(report["undecodable_files"]) == ["cat.n.01/bomb.png", "dog.n.01/broken.png"]
    for (meta,) in query(env, "select meta from labels"):
        assert json.loads(meta)["coverage"] == {
            "images": images,
            "seen": images - 3,
            "missing": 1,
            "different": 0,
            "undecodable": 2,
        }


def test_default_tolerance_accepts_complete_samples_and_summarises_undecodable(
    built, sample_folder
):
    env, info = built
    (sample_folder / "dog.n.01" / "broken.png").write_bytes(b"not a png")
    assert run_cli("graph", "build", "--samples", str(sample_folder), env=env).returncode == 0
    result = run_cli("register", env=env)
    assert result.returncode == 0, result.stderr
    assert "labeled 2" in result.stdout
    assert "sample images skipped: 1 undecodable (dog.n.01/broken.png)" in result.stdout
    assert "Warning" not in result.stderr


def test_empty_sample_folder_with_everything_allowed_still_stores_no_label(built, tmp_path):
    env, _ = built
    (tmp_path / "empty").mkdir()
    result = run_cli(
        "register", "--samples", str(tmp_path / "empty"), "--allow-missing", "1", "--json", env=env
    )
    assert result.returncode == 2 and "or all" in result.stderr
    assert labels_stored(env) == 0 and query(env, "select count(*) from runs")[0][0] == 0


def test_graph_build_skips_a_fifo_and_a_device_promptly(tmp_path, sample_folder):
    os.mkfifo(sample_folder / "dog.n.01" / "x.png")
    (sample_folder / "cat.n.01" / "zero.png").symlink_to("/dev/zero")
    result = run_cli(
        "--registry",
        str(tmp_path / "r.db"),
        "graph",
        "build",
        "--samples",
        str(sample_folder),
        "--json",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["skipped_files"] == ["cat.n.01/zero.png", "dog.n.01/x.png"] and info["images"] == 30


def test_read_regular_refuses_special_and_oversized_files(tmp_path):
    os.mkfifo(tmp_path / "fifo.png")
    with pytest.raises(UnavailableSample) as fifo:
        read_regular(tmp_path / "fifo.png")
    assert fifo.value.kind == MISSING
    with pytest.raises(UnavailableSample, match="not a regular file"):
        read_regular(Path("/dev/zero"))
    (tmp_path / "big.png").write_bytes(b"x" * 101)
    with pytest.raises(UnavailableSample, match="larger than 100 bytes"):
        read_regular(tmp_path / "big.png", max_bytes=100)
    assert read_regular(tmp_path / "big.png", max_bytes=101) == b"x" * 101


@pytest.mark.parametrize("path", ["../outside.png", "a/../../outside.png", "/etc/passwd", ""])
def test_escaping_paths_are_refused(tmp_path, path):
    with pytest.raises(UnavailableSample, match="leaves the sample folder"):
        inside(tmp_path, path)


def test_escaping_image_paths_in_a_registry_are_never_read(built, sample_folder, tmp_path):
    env, info = built
    rel, absolute = sorted(image_paths(env))[:2]
    # the escaping targets hold the right bytes, so only confinement can keep them out
    shutil.copy(sample_folder / rel, sample_folder.parent / "outside.png")
    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as db:
        db.execute("update images set path = '../outside.png' where path = ?", [rel])
        db.execute(
            "update images set path = ? where path = ?", [str(sample_folder / absolute), absolute]
        )
    code, report = check(env)
    assert code == 1 and report["missing"] == 2
    assert sorted(report["missing_paths"]) == sorted(
        ["../outside.png", str(sample_folder / absolute)]
    )
    result = run_cli("register", env=env)
    assert result.returncode == 2 and "2 missing" in result.stderr and labels_stored(env) == 0


def test_decompression_bomb_is_undecodable(tmp_path, monkeypatch):
    image = tmp_path / "small.png"
    Image.new("RGB", (40, 40), (10, 20, 30)).save(image)
    assert decode_rgb(image.read_bytes()) is not None
    monkeypatch.setattr(
        Image, "MAX_IMAGE_PIXELS", 1000
    )  # 1,600 pixels: Pillow only warns below twice that
    assert decode_rgb(image.read_bytes()) is None


def test_a_graph_of_undecodable_images_gets_no_label(tmp_path, tinyclip_site):
    env = {
        "PYTHONPATH": str(tinyclip_site),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
    }
    folder = tmp_path / "samples" / "dog.n.01"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"not a png %d" % i)
    assert (
        run_cli("graph", "build", "--samples", str(tmp_path / "samples"), env=env).returncode == 0
    )
    result = run_cli("register", "--json", env=env)
    assert result.returncode == 1 and json.loads(result.stdout)["undecodable_images"] == 3
    assert "was seen (0 missing, 0 different, 3 undecodable)" in result.stderr
    assert query(env, "select count(*) from labels")[0][0] == 0


def test_a_file_changed_after_the_check_is_caught_as_it_is_read(sample_folder):
    import torch

    from mllzoo.graph.concept_graph import build_graph
    from mllzoo.graph.images import ImageCache

    graph = build_graph(sample_folder)
    changed, gone = graph.image_paths[2], graph.image_paths[5]
    (sample_folder / changed).write_bytes((sample_folder / changed).read_bytes() + b"\0")
    (sample_folder / gone).unlink()
    cache = ImageCache(sample_folder, graph.image_paths, hashes=graph.image_hashes)
    _, ok = cache.chunk("key", lambda image: torch.zeros(3, 2, 2), 0, len(graph.image_paths))
    assert cache.status == {2: "different", 5: "missing"}
    assert ok == [i for i in range(len(graph.image_paths)) if i not in (2, 5)]
