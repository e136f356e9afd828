"""The open_clip plugin end to end on a tiny random-init architecture, offline."""

from __future__ import annotations

import os

import huggingface_hub.constants
import pytest

import mllzoo_openclip
from mllzoo.errors import ModelLoadError
from mllzoo.testing import check_model, check_plugin, registered_specs
from mllzoo.vlm import ModelSpec
from mllzoo_openclip.testing import TINY_VIT, tiny_checkpoint

ARCH = "mllzoo-tiny-ViT"


@pytest.fixture
def weights(tmp_path):
    with tiny_checkpoint(tmp_path, ARCH, TINY_VIT) as path:
        yield path


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """No network and an empty cache, so a tag's weights cannot be found (and nothing downloads)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_conformance(weights):
    spec = ModelSpec(family="open_clip", arch=ARCH, tag="local", image_size=32, source=str(weights))
    check_plugin(mllzoo_openclip, family="open_clip", loadable=[spec])


def test_checkpoint_named_in_env_registers_and_loads(weights, monkeypatch):
    monkeypatch.setenv("MLLZOO_OPENCLIP_CHECKPOINTS", f"{ARCH}.mine={weights}{os.pathsep}EVA02-B-16.x={weights}")
    specs = {spec.id: spec for spec in registered_specs(mllzoo_openclip)}
    spec = specs[f"open_clip/{ARCH}.mine"]
    assert spec.extra["checkpoint"] == str(weights)
    assert "open_clip/EVA02-B-16.x" not in specs  # EVA archs belong to the EVA plugin
    model = check_model(mllzoo_openclip, spec)
    assert model.context_length == TINY_VIT["text_cfg"]["context_length"]


def test_malformed_env_entry_is_skipped_with_a_warning(monkeypatch, capsys):
    monkeypatch.setenv("MLLZOO_OPENCLIP_CHECKPOINTS", "no-tag-here")
    assert any(spec.arch == "ViT-B-32" for spec in registered_specs(mllzoo_openclip))
    assert "no-tag-here" in capsys.readouterr().err


def test_local_copy_of_a_catalogued_tag_keeps_its_preprocessing(tmp_path):
    """ViT-H-14.dfn5b squashes instead of cropping; its weights loaded from a file must too."""
    from mllzoo_openclip.loading import load

    with tiny_checkpoint(tmp_path, "ViT-H-14", TINY_VIT) as path:  # a tiny stand-in for the real arch
        dfn = load(ModelSpec(family="open_clip", arch="ViT-H-14", tag="dfn5b", extra={"checkpoint": str(path)}),
                   "cpu", "float32")
        plain = load(ModelSpec(family="open_clip", arch="ViT-H-14", tag="mine", extra={"checkpoint": str(path)}),
                     "cpu", "float32")
    assert '"resize_mode": "squash"' in dfn.preprocess_key
    assert '"resize_mode": "shortest"' in plain.preprocess_key


def test_missing_weights_offline_is_one_clear_line(offline_hub):
    from mllzoo_openclip.loading import load

    spec = ModelSpec(family="open_clip", arch="RN50", tag="openai")
    with pytest.raises(ModelLoadError) as info:
        load(spec, "cpu", "float32")
    message = str(info.value)
    assert "\n" not in message
    assert "open_clip/RN50.openai" in message and "hf-hub:timm/resnet50_clip.openai" in message


def test_missing_checkpoint_file_names_it(tmp_path):
    from mllzoo_openclip.loading import load

    missing = tmp_path / "nowhere.pt"
    spec = ModelSpec(family="open_clip", arch=ARCH, tag="gone", extra={"checkpoint": str(missing)})
    with pytest.raises(ModelLoadError, match="nowhere.pt"):
        load(spec, "cpu", "float32")
