"""The EVA plugin: its catalogue, its discovery, and a tiny EVA-02 tower end to end, offline."""

from __future__ import annotations

import time
from importlib.metadata import entry_points

import huggingface_hub.constants
import open_clip
import pytest

import mllzoo_eva
from mllzoo import ModelLoadError, ModelSpec, read_catalog
from mllzoo.testing import check_plugin, registered_specs
from mllzoo_openclip.catalog import is_eva
from mllzoo_openclip.testing import TINY_TEXT, cut_off_hub, tiny_checkpoint

ARCH = "EVA02-mllzoo-tiny"
# open_clip's EVA configs put a timm EVA tower beside an open_clip text tower; this is timm's smallest
# EVA-02 (open_clip does not pass image_size to timm towers, so it keeps its 224 pixels).
TINY_EVA = {
    "embed_dim": 32,
    "custom_text": True,
    "text_cfg": TINY_TEXT,
    "vision_cfg": {
        "image_size": 224,
        "timm_model_name": "eva02_tiny_patch14_224",
        "timm_model_pretrained": False,
        "timm_pool": "token",
        "timm_proj": "linear",
    },
}


@pytest.fixture
def weights(tmp_path):
    with tiny_checkpoint(tmp_path, ARCH, TINY_EVA) as path:
        yield path


def test_conformance(weights):
    spec = ModelSpec(family="eva", arch=ARCH, tag="local", image_size=224, source=str(weights))
    check_plugin(mllzoo_eva, family="eva", loadable=[spec])


def test_catalogue_matches_installed_open_clip():
    """Regenerate with `python -m mllzoo_eva.make_catalog` when open_clip's list changes."""
    shipped = {(spec.arch, spec.tag) for spec in read_catalog("mllzoo_eva")}
    assert shipped == {(arch, tag) for arch, tag in open_clip.list_pretrained() if is_eva(arch)}


def test_issue_models_are_registered_and_the_hub_ones_marked():
    specs = {spec.id: spec for spec in registered_specs(mllzoo_eva)}
    hub = {
        "eva/EVA01-g-14.laion400m_s11b_b41k",
        "eva/EVA02-B-16.merged2b_s8b_b131k",
        "eva/EVA02-L-14-336.merged2b_s6b_b61k",
        "eva/EVA02-E-14.laion2b_s4b_b115k",
    }
    assert {model_id for model_id, spec in specs.items() if "mll49" in spec.hubs} == hub
    base = specs["eva/EVA02-B-16.merged2b_s8b_b131k"]
    assert (base.params_m, base.gflops, base.image_size, base.imagenet_top1) == (
        149.69,
        41.09,
        224,
        0.7472,
    )


def test_discovered_through_its_entry_point():
    assert "mllzoo_eva" in {ep.value for ep in entry_points(group="mllzoo")}


def test_eva_checkpoint_named_in_env_belongs_to_eva(weights, monkeypatch):
    monkeypatch.setenv("MLLZOO_OPENCLIP_CHECKPOINTS", f"{ARCH}.mine={weights}")
    assert f"eva/{ARCH}.mine" in {spec.id for spec in registered_specs(mllzoo_eva)}


@pytest.mark.parametrize("offline_mode", [True, False], ids=["offline mode", "unreachable hub"])
def test_missing_weights_offline_is_one_clear_line_at_once(tmp_path, monkeypatch, offline_mode):
    cut_off_hub(monkeypatch, tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline_mode)
    from mllzoo_openclip.loading import load

    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load(ModelSpec(family="eva", arch="EVA02-B-16", tag="merged2b_s8b_b131k"), "cpu", "float32")
    assert time.perf_counter() - started < 10
    assert "\n" not in str(info.value) and "not cached" in str(info.value)
    assert "eva/EVA02-B-16.merged2b_s8b_b131k" in str(info.value)
    assert "hf-hub:timm/eva02_base_patch16_clip_224.merged2b_s8b_b131k" in str(info.value)
