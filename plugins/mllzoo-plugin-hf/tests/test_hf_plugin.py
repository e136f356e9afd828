"""The Hugging Face plugin on tiny random-init CLIP and SigLIP models saved to folders, offline."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub.constants
import pytest
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizer,
    SiglipConfig,
    SiglipImageProcessor,
    SiglipModel,
    SiglipProcessor,
)
from transformers.convert_slow_tokenizer import bytes_to_unicode

import mllzoo_hf
from mllzoo import ModelLoadError, read_catalog
from mllzoo.testing import check_plugin, check_registration, registered_specs, registry_with_graph
from mllzoo_hf.catalog import hub_spec

TOWER = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}


def tiny_tokenizer() -> CLIPTokenizer:
    """CLIP's byte-level BPE with a character vocabulary and no merges: a real tokenizer, no download."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={token: i for i, token in enumerate(tokens)}, merges=[])


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """A tiny CLIP and a tiny SigLIP, each saved with its processor as a user's folder would be."""
    import torch

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    text = {**TOWER, "vocab_size": len(tokenizer), "max_position_embeddings": 24}
    vision = {**TOWER, "hidden_size": 64, "image_size": 32, "patch_size": 8}
    clip_dir = tmp_path_factory.mktemp("tiny-clip")
    CLIPModel(
        CLIPConfig(
            text_config={**text, "bos_token_id": 512, "eos_token_id": 513, "pad_token_id": 513},
            vision_config=vision,
            projection_dim=16,
        )
    ).save_pretrained(clip_dir)
    CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
    ).save_pretrained(clip_dir)
    siglip_dir = tmp_path_factory.mktemp("tiny-siglip")
    SiglipModel(
        SiglipConfig(text_config={**text, "projection_size": 64}, vision_config=vision)
    ).save_pretrained(siglip_dir)
    SiglipProcessor(
        image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    ).save_pretrained(siglip_dir)
    return clip_dir, siglip_dir


@pytest.fixture
def user_models(tiny_folders, monkeypatch):
    clip_dir, siglip_dir = tiny_folders
    monkeypatch.setenv("MLLZOO_HF_MODELS", f"{clip_dir},hf:someone/their-clip@v1.2")
    specs = {spec.id: spec for spec in registered_specs(mllzoo_hf)}
    return specs, clip_dir, siglip_dir


def test_conformance(user_models, tiny_folders):
    specs, clip_dir, siglip_dir = user_models
    clip = specs[f"hf/local--{clip_dir.name}.local"]
    siglip = mllzoo_hf.catalog.folder_spec(siglip_dir)
    check_plugin(mllzoo_hf, family="hf", loadable=[clip, siglip])


def test_hf_ids_named_by_the_user_register_with_their_revision(user_models):
    specs, _, _ = user_models
    spec = specs["hf/someone--their-clip.v1_2"]
    assert (spec.extra["repo"], spec.extra["revision"], spec.source) == (
        "someone/their-clip",
        "v1.2",
        "hf-hub:someone/their-clip@v1.2",
    )


def test_curated_catalogue_cites_its_open_clip_twins():
    specs = {spec.id: spec for spec in check_registration(mllzoo_hf, family="hf")}
    base = specs["hf/openai--clip-vit-base-patch32.main"]
    assert (base.params_m, base.gflops, base.image_size, base.license, base.imagenet_top1) == (
        151.28,
        14.78,
        224,
        "MIT",
        0.6332,
    )
    assert specs["hf/google--siglip-so400m-patch14-384.main"].image_size == 384


def test_siglip_texts_are_padded_to_full_length(tiny_folders):
    """SigLIP pools its last position and saw only full-length padded texts in training."""
    import numpy as np
    import torch

    from mllzoo_hf.loading import encode_texts, load

    model = load(mllzoo_hf.catalog.folder_spec(tiny_folders[1]), "cpu", "float32")
    assert model.context_length == 24

    def reference(padding: bool | str) -> np.ndarray:
        batch = model.tokenizer(
            ["a cat"], padding=padding, max_length=24, truncation=True, return_tensors="pt"
        )
        with torch.inference_mode():
            return model.module.get_text_features(**batch).pooler_output.numpy()

    encoded = encode_texts(model, ["a cat"])
    assert np.allclose(encoded, reference("max_length"), atol=1e-5)
    assert not np.allclose(encoded, reference(True), atol=1e-3)


@pytest.fixture
def cut_off_hub(tmp_path, monkeypatch):
    """An empty cache and the Hub on a closed local port: connections are refused, as with no network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


@pytest.mark.parametrize("offline_mode", [True, False], ids=["offline mode", "unreachable hub"])
def test_missing_weights_offline_is_one_clear_line_at_once(cut_off_hub, monkeypatch, offline_mode):
    """Before the probe, huggingface_hub retried each file for about half a minute (142 s for this model)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline_mode)
    from mllzoo_hf.loading import load

    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load(hub_spec("openai/clip-vit-base-patch32"), "cpu", "float32")
    assert time.perf_counter() - started < 10
    message = str(info.value)
    assert "\n" not in message and "not cached" in message
    assert (
        "hf/openai--clip-vit-base-patch32.main" in message
        and "hf-hub:openai/clip-vit-base-patch32" in message
    )


def test_cached_model_loads_while_the_hub_is_unreachable(cut_off_hub, tiny_folders):
    """A repository downloaded once loads from the cache without asking the Hub (no retries)."""
    from mllzoo_hf.loading import available, load

    spec = hub_spec("openai/clip-vit-base-patch32")
    assert not available(spec)
    snapshot = cut_off_hub / "models--openai--clip-vit-base-patch32" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_folders[0], snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    assert available(spec)  # what a plain `mllzoo register` asks before it runs a model
    started = time.perf_counter()
    model = load(hub_spec("openai/clip-vit-base-patch32"), "cpu", "float32")
    assert time.perf_counter() - started < 10
    assert model.context_length == 24 and not huggingface_hub.constants.HF_HUB_OFFLINE


@pytest.mark.slow
def test_plain_register_skips_uncached_models_without_trying_them(cut_off_hub, tmp_path):
    """``mllzoo register`` with no ids runs only models already in the cache: none here, and no load is tried."""
    env = registry_with_graph(
        tmp_path,
        "mllzoo-plugin-hf",
        HF_HOME=str(tmp_path / "hf"),
        NLTK_DATA=os.environ.get(
            "NLTK_DATA", str(Path(__file__).resolve().parents[3] / ".nltk_data")
        ),
    )
    result = subprocess.run(
        [sys.executable, "-m", "mllzoo", "register", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["not_here"]) == len(read_catalog("mllzoo_hf")) and not report["failed"]
    assert "was not labeled" not in result.stderr
    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as conn:
        assert (
            conn.execute("select count(*) from runs").fetchone()[0] == 0
        )  # no model load was attempted


@pytest.mark.slow
def test_register_download_offline_ends_quickly_with_status_1(cut_off_hub, tmp_path):
    """``mllzoo register --download`` tries every curated model; offline each must fail at once."""
    env = registry_with_graph(
        tmp_path,
        "mllzoo-plugin-hf",
        HF_HOME=str(tmp_path / "hf"),
        NLTK_DATA=os.environ.get(
            "NLTK_DATA", str(Path(__file__).resolve().parents[3] / ".nltk_data")
        ),
    )
    mllzoo = [sys.executable, "-m", "mllzoo"]
    started = time.perf_counter()
    result = subprocess.run(
        [*mllzoo, "register", "--download"], env=env, capture_output=True, text=True, timeout=300
    )
    assert time.perf_counter() - started < 60
    assert result.returncode == 1, result.stderr
    curated = len(read_catalog("mllzoo_hf"))
    assert f"labeled 0, already labeled 0, failed {curated}" in result.stdout
    assert "hf/openai--clip-vit-base-patch32.main was not labeled" in result.stderr
    assert "they would come from hf-hub:openai/clip-vit-base-patch32" in result.stderr
