"""Labeling minizoo models through the core: models that share a text tower encode the captions once.
(Here, not in the plugin's tests: it drives core internals, which plugins may not import.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from mllzoo.catalog import CatalogEntry
from mllzoo.graph import build_graph, save_graph
from mllzoo.labeling import label_models
from mllzoo.registry import Registry

pytestmark = pytest.mark.slow  # a world build and real labeling: `make test-fast` leaves this module out

mllzoo_minizoo = pytest.importorskip("mllzoo_minizoo")


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> Path:
    from mllzoo_minizoo.world import render

    if not (render.NOTO.exists() and render.SYMBOLA.exists() and (render.DEJAVU / "DejaVuSans.ttf").exists()):
        pytest.skip("fonts-noto-color-emoji, fonts-symbola and fonts-dejavu-core are needed to build a world")
    from mllzoo_minizoo.world.build import build

    out = tmp_path_factory.mktemp("world") / "world"
    build(out, seed=0, tiny=True)
    return out


def test_models_sharing_the_text_tower_encode_captions_once(tiny_world, tmp_path):
    registry = Registry(tmp_path / "r.db")
    graph = build_graph(tiny_world / "samples", max_per_node=2)
    save_graph(registry, graph, str(tiny_world / "samples"))
    entries = [CatalogEntry(spec, "mllzoo-plugin-minizoo", None) for spec in mllzoo_minizoo.specs()[:2]]
    report = label_models(registry, graph, tiny_world / "samples", entries, device="cpu", progress=False)
    assert len(report.labeled) == 2 and report.caption_encodings == 1
