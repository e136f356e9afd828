"""The world builder's preflight: every missing source is named, with its install command, before
anything is written."""

from __future__ import annotations

import json

import pytest

from mllzoo_minizoo.world import build as world_build
from mllzoo_minizoo.world import sources


@pytest.fixture
def no_npm(monkeypatch, tmp_path):
    """No npm on PATH and an empty cache: the Twemoji tarball cannot be had."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    return tmp_path / "cache"


def test_missing_sources_are_named_before_anything_is_written(monkeypatch, tmp_path, no_npm):
    monkeypatch.setattr(sources, "CLIPART_ROOT", tmp_path / "no-openclipart")
    out = tmp_path / "world"
    out.mkdir()
    (out / "kept.txt").write_text("an earlier world")
    with pytest.raises(SystemExit) as stopped:
        world_build.build(out, cache=no_npm)
    message = str(stopped.value)
    assert "source(s) missing (nothing was written)" in message
    assert "apt-get install openclipart-png" in message
    assert f"npm pack {sources.TWEMOJI_PACKAGE}" in message
    assert (out / "kept.txt").read_text() == "an earlier world"


def test_a_cached_twemoji_tarball_with_another_checksum_is_refused(tmp_path, no_npm):
    tarball = no_npm / "npm" / sources.TWEMOJI_TARBALL
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(b"not the pinned package")
    with pytest.raises(SystemExit, match=f"not {sources.TWEMOJI_SHA1}"):
        sources.twemoji_tarball(no_npm)


def test_the_tiny_world_needs_only_fonts_and_python_packages(tmp_path, no_npm, monkeypatch, capsys):
    monkeypatch.setattr(sources, "CLIPART_ROOT", tmp_path / "no-openclipart")
    if not all(s.present() for s in sources.sources(no_npm) if s.tiny):
        pytest.skip("the tiny world's fonts are not installed")
    world_build.main(["--check", "--tiny", "--cache", str(no_npm)])
    report = json.loads(capsys.readouterr().out)
    assert report["sources"] == "all present" and report["environment"]["pillow"]


def test_the_manifest_records_the_environment(tiny_world):
    manifest = json.loads((tiny_world / "manifest.json").read_text())
    assert set(manifest["environment"]) >= {"pillow", "freetype2", "zlib", "fonts-noto-color-emoji"}
