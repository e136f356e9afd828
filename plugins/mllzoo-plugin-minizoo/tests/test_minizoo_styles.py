"""The multi-style target benchmark: every task in every style, none of its images in the sample set."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from mllzoo_minizoo.world.build import pixel_hash
from mllzoo_minizoo.world.styles import STYLES, build_styles

pytestmark = pytest.mark.slow  # builds on the tiny world: `make test-fast` leaves this module out


def test_every_task_in_every_style_with_its_card(tiny_world, tmp_path):
    written = build_styles(tiny_world, tmp_path / "styles", per_class=3, seed=0)
    tasks = sorted(p.name for p in (tiny_world / "tasks").iterdir() if p.is_dir())
    assert len(STYLES) >= 3
    assert sorted(written) == sorted(f"{t}-{s}" for t in tasks for s in STYLES)
    for task in tasks:
        source = json.loads((tiny_world / "tasks" / task / "task.json").read_text())
        classes = sorted(p.name for p in (tiny_world / "tasks" / task).iterdir() if p.is_dir())
        for style in STYLES:
            folder = tmp_path / "styles" / f"{task}-{style}"
            card = json.loads((folder / "task.json").read_text())
            assert card["style"] == style and card["domain"] == source["domain"]
            assert card["task"] == source["task"] and "Restyled" in card["card"]
            assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == classes
            counts = [len(list((folder / c).glob("*.png"))) for c in classes]
            assert sum(counts) == written[folder.name] and min(counts) >= 2


def test_no_styled_image_is_a_sample_or_an_unstyled_task_image(tiny_world, tmp_path):
    build_styles(tiny_world, tmp_path / "styles", per_class=3, seed=0)
    styled = [pixel_hash(Image.open(p)) for p in (tmp_path / "styles").rglob("*.png")]
    assert len(set(styled)) == len(styled)
    for pool in ("samples", "tasks", "train"):
        assert not set(styled) & {
            pixel_hash(Image.open(p)) for p in (tiny_world / pool).rglob("*.png")
        }


def test_styles_are_deterministic_for_a_seed(tiny_world, tmp_path):
    def digest(seed: int, name: str) -> list[str]:
        build_styles(tiny_world, tmp_path / name, per_class=2, seed=seed)
        return [pixel_hash(Image.open(p)) for p in sorted((tmp_path / name).rglob("*.png"))]

    assert digest(0, "a") == digest(0, "b") != digest(1, "c")
