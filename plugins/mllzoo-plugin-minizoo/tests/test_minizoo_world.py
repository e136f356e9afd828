"""The concept world: layout, task sizes, determinism, and disjoint pools (by content hash)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from mllzoo_minizoo.world.build import build, pixel_hash

pytestmark = pytest.mark.slow  # world builds: `make test-fast` leaves this module out

SYNSET = re.compile(r"^[a-z0-9_.'\-]+\.n\.\d\d$")


def hashes(root: Path) -> set[str]:
    return {pixel_hash(Image.open(p)) for p in root.rglob("*.png")}


def test_pools_are_disjoint_by_content_hash(tiny_world):
    train, samples, tasks = (hashes(tiny_world / pool) for pool in ("train", "samples", "tasks"))
    assert train and samples and tasks
    assert not train & tasks, "a target-task image is in the training pool"
    assert not samples & tasks, "a target-task image is in the sample set"
    assert not train & samples


def test_layout_uses_synset_folders_and_rgb_images(tiny_world):
    for pool in ("train", "samples"):
        folders = [p.name for p in (tiny_world / pool).iterdir() if p.is_dir()]
        assert folders and all(SYNSET.match(name) for name in folders), folders
    image = Image.open(next((tiny_world / "samples").rglob("*.png")))
    assert image.mode == "RGB" and image.size == (64, 64)
    index = (tiny_world / "train" / "index.csv").read_text().splitlines()
    assert index[0] == "path,synset,source,name,domain" and len(index) > 100


def test_tasks_have_cards_and_enough_images(tiny_world):
    tasks = [p for p in (tiny_world / "tasks").iterdir() if p.is_dir()]
    assert {t.name for t in tasks} >= {"digits", "words", "textures"}
    for task in tasks:
        meta = json.loads((task / "task.json").read_text())
        assert set(meta) == {"domain", "task", "source", "card"} and all(meta.values())
        classes = [c for c in task.iterdir() if c.is_dir()]
        assert len(classes) >= 5
        assert all(len(list(c.glob("*.png"))) >= 20 for c in classes)


def test_manifest_counts_match_files(tiny_world):
    manifest = json.loads((tiny_world / "manifest.json").read_text())
    assert manifest["train"]["images"] == len(list((tiny_world / "train").rglob("*.png")))
    assert manifest["samples"]["images"] == len(list((tiny_world / "samples").rglob("*.png")))
    for name, info in manifest["tasks"].items():
        assert info["images"] == len(list((tiny_world / "tasks" / name).rglob("*.png")))


def test_builder_is_deterministic(tiny_world, tmp_path):
    again = json.loads(json.dumps(build(tmp_path / "again", seed=0, tiny=True)))
    first = json.loads((tiny_world / "manifest.json").read_text())
    assert again["digests"] == first["digests"]
