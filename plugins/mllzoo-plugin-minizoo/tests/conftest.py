"""Shared fixtures: one tiny world (Debian sources only) built per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mllzoo_minizoo.world import render


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    if not (
        render.NOTO.exists()
        and render.SYMBOLA.exists()
        and (render.DEJAVU / "DejaVuSans.ttf").exists()
    ):
        pytest.skip(
            "fonts-noto-color-emoji, fonts-symbola and fonts-dejavu-core are needed to build a world"
        )
    from mllzoo_minizoo.world.build import build

    out = tmp_path_factory.mktemp("world") / "world"
    build(out, seed=0, tiny=True)
    return out
