"""The plugin: light import, registration, and a shipped model through the load/encode hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mllzoo_minizoo
from mllzoo import ModelSpec
from mllzoo.testing import check_light_import, check_plugin, registered_specs


def test_import_pulls_in_no_torch():
    check_light_import("mllzoo_minizoo")


def test_conformance_with_a_shipped_model():
    specs = {spec.id: spec for spec in registered_specs(mllzoo_minizoo)}
    check_plugin(mllzoo_minizoo, family="minizoo", loadable=[specs["minizoo/resnet18-s.broad"]])


def test_registers_at_least_eight_models_with_metadata():
    found: list[ModelSpec] = []
    mllzoo_minizoo.mllzoo_register_models(found.append)
    assert len(found) >= 8
    assert len({s.arch for s in found}) >= 5 and len({s.image_size for s in found}) >= 3
    for spec in found:
        assert (
            spec.id.startswith("minizoo/")
            and spec.params_m
            and spec.gflops
            and spec.license == "Apache-2.0"
        )
        assert spec.extra["training_mix"]


def test_other_families_are_left_alone():
    other = ModelSpec(family="open_clip", arch="ViT-B-32", tag="openai")
    assert mllzoo_minizoo.mllzoo_load_model(other, "cpu", "float32") is None


def test_weights_fit_the_size_cap():
    files = list(mllzoo_minizoo.WEIGHTS_DIR.glob("*.safetensors"))
    assert len(files) >= 8 and all(f.stat().st_size <= 3 * 1024 * 1024 for f in files)


def test_shipped_model_loads_and_encodes():
    pytest.importorskip("torch")
    from PIL import Image

    from mllzoo import discover_models, encode_images, encode_texts, load_model

    catalog = discover_models()
    spec = catalog["minizoo/resnet18-s.broad"].spec
    model = load_model(spec, device="cpu")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(3)]
    batch = __import__("torch").stack([model.preprocess(im) for im in images])
    assert tuple(batch.shape) == (3, 3, spec.image_size, spec.image_size)
    feats = encode_images(model, batch)
    texts = encode_texts(model, ["a photo of a dog.", "dog which is a domestic animal"])
    assert feats.shape == (3, 384) and texts.shape == (2, 384)
    assert feats.dtype == np.float32 and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(feats, encode_images(model, batch))
    assert model.preprocess_key == f"resize{spec.image_size}-bicubic-norm(0.5,0.5)"


@pytest.mark.slow
def test_models_sharing_the_text_tower_encode_captions_once(tiny_world, tmp_path):
    """Through the CLI, as a user labels: the plugin API has no labeling entry point to call."""
    env = {
        **os.environ,
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-minizoo",
    }

    def mllzoo(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "mllzoo", *args], capture_output=True, text=True, env=env
        )
        assert result.returncode == 0, result.stderr
        return result

    mllzoo("graph", "build", "--samples", str(tiny_world / "samples"), "--max-per-node", "2")
    two = [spec.id for spec in mllzoo_minizoo.specs()[:2]]
    report = json.loads(mllzoo("register", *two, "--device", "cpu", "--json").stdout)
    assert sorted(report["labeled"]) == sorted(two) and report["caption_encodings"] == 1


def test_shipped_weights_are_always_available():
    """A plain `mllzoo register` runs the minizoo's models: their weights ship with the plugin."""
    specs = registered_specs(mllzoo_minizoo)
    assert specs and all(mllzoo_minizoo.mllzoo_model_available(spec) for spec in specs)
    assert (
        mllzoo_minizoo.mllzoo_model_available(
            ModelSpec(family="open_clip", arch="ViT-B-32", tag="openai")
        )
        is None
    )
