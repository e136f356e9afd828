"""The open_clip plugin end to end on a tiny random-init architecture, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub.constants
import pytest

import mllzoo_openclip
from mllzoo import ModelLoadError, ModelSpec
from mllzoo.testing import check_model, check_plugin, registered_specs, registry_with_graph
from mllzoo_openclip.testing import (
    TINY_VIT,
    custom_checkpoint,
    cut_off_hub,
    put_in_hub_cache,
    tiny_checkpoint,
)

ARCH = "mllzoo-tiny-ViT"


@pytest.fixture
def weights(tmp_path):
    with tiny_checkpoint(tmp_path, ARCH, TINY_VIT) as path:
        yield path


@pytest.fixture(params=["offline mode", "unreachable hub"])
def offline_hub(request, tmp_path, monkeypatch):
    """An empty cache and no Hub: either offline mode is on or the endpoint refuses connections."""
    cut_off_hub(monkeypatch, tmp_path / "hub")
    if request.param == "offline mode":
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_conformance(weights, tmp_path):
    spec = ModelSpec(family="open_clip", arch=ARCH, tag="local", image_size=32, source=str(weights))
    (tmp_path / "lab").mkdir()
    lab_weights, lab_config = custom_checkpoint(tmp_path / "lab", "labvit", TINY_VIT)
    check_plugin(
        mllzoo_openclip,
        family="open_clip",
        loadable=[spec],
        describable=[("open_clip/labvit.epoch3", str(lab_weights), str(lab_config))],
    )


def test_checkpoint_named_in_env_registers_and_loads(weights, monkeypatch):
    monkeypatch.setenv(
        "MLLZOO_OPENCLIP_CHECKPOINTS", f"{ARCH}.mine={weights}{os.pathsep}EVA02-B-16.x={weights}"
    )
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

    with tiny_checkpoint(
        tmp_path, "ViT-H-14", TINY_VIT
    ) as path:  # a tiny stand-in for the real arch
        dfn = load(
            ModelSpec(
                family="open_clip", arch="ViT-H-14", tag="dfn5b", extra={"checkpoint": str(path)}
            ),
            "cpu",
            "float32",
        )
        plain = load(
            ModelSpec(
                family="open_clip", arch="ViT-H-14", tag="mine", extra={"checkpoint": str(path)}
            ),
            "cpu",
            "float32",
        )
    assert '"resize_mode": "squash"' in dfn.preprocess_key
    assert '"resize_mode": "shortest"' in plain.preprocess_key


def test_missing_weights_offline_is_one_clear_line_at_once(offline_hub):
    """Before the probe, huggingface_hub retried each file for about half a minute (46 s for this model)."""
    from mllzoo_openclip.loading import load

    spec = ModelSpec(family="open_clip", arch="ViT-B-32", tag="openai")
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load(spec, "cpu", "float32")
    assert time.perf_counter() - started < 10
    message = str(info.value)
    assert "\n" not in message and "not cached" in message
    assert (
        "open_clip/ViT-B-32.openai" in message
        and "hf-hub:timm/vit_base_patch32_clip_224.openai" in message
    )


def test_cached_weights_load_while_the_hub_is_unreachable(tmp_path, monkeypatch):
    """A tag downloaded once loads from the cache, with the tag's preprocessing, and without retries."""
    from mllzoo_openclip.loading import available, load

    cut_off_hub(monkeypatch, tmp_path / "hub")
    spec = ModelSpec(family="open_clip", arch="ViT-H-14", tag="dfn5b")
    assert not available(spec)
    with tiny_checkpoint(
        tmp_path, "ViT-H-14", TINY_VIT
    ) as path:  # a tiny stand-in for the real arch
        put_in_hub_cache(
            tmp_path / "hub", "apple/DFN5B-CLIP-ViT-H-14", {"open_clip_model.safetensors": path}
        )
        assert available(spec)  # what a plain `mllzoo register` asks before it runs a model
        started = time.perf_counter()
        model = load(spec, "cpu", "float32")
    assert time.perf_counter() - started < 10
    assert '"resize_mode": "squash"' in model.preprocess_key


@pytest.mark.slow
def test_register_download_offline_fails_each_model_at_once(tmp_path, monkeypatch):
    """``mllzoo register --download`` tries every open_clip and EVA model; offline it must end quickly.
    A plain ``mllzoo register`` tries none of them: their weights are not cached."""
    cut_off_hub(monkeypatch, tmp_path / "hub")
    env = registry_with_graph(
        tmp_path,
        "mllzoo-plugin-openclip,mllzoo-plugin-eva",
        HF_HOME=str(tmp_path / "hf"),
        NLTK_DATA=os.environ.get(
            "NLTK_DATA", str(Path(__file__).resolve().parents[3] / ".nltk_data")
        ),
    )
    mllzoo = [sys.executable, "-m", "mllzoo"]
    plain = subprocess.run(
        [*mllzoo, "register", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert plain.returncode == 0, plain.stderr
    skipped = json.loads(plain.stdout)
    assert (
        len(skipped["not_here"]) > 150
        and not skipped["failed"]
        and "was not labeled" not in plain.stderr
    )
    assert "open_clip/ViT-B-32.openai" in skipped["not_here"]
    started = time.perf_counter()
    result = subprocess.run(
        [*mllzoo, "register", "--download", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert time.perf_counter() - started < 120
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert not report["labeled"] and len(report["failed"]) > 150
    assert all("not cached" in message for message in report["failed"].values())
    assert (
        "open_clip/ViT-B-32.openai" in report["failed"]
        and "eva/EVA02-B-16.merged2b_s8b_b131k" in report["failed"]
    )


def test_missing_checkpoint_file_names_it(tmp_path):
    from mllzoo_openclip.loading import load

    missing = tmp_path / "nowhere.pt"
    spec = ModelSpec(family="open_clip", arch=ARCH, tag="gone", extra={"checkpoint": str(missing)})
    with pytest.raises(ModelLoadError, match="nowhere.pt"):
        load(spec, "cpu", "float32")
