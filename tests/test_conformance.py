"""mllzoo.testing has teeth: a small honest family passes it, and the usual mistakes fail it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from mllzoo import hookimpl
from mllzoo.testing import check_model, check_registration
from mllzoo.vlm import LoadedModel, ModelSpec

SPEC = ModelSpec(family="pixels", arch="mean-colour", tag="v1", image_size=8, source="builtin")


def pixels_family(normalise: bool = True, any_family: bool = False) -> SimpleNamespace:
    """A family whose 'model' is colour layout (images) and letter counts (texts), both 12-dimensional."""
    import torch

    def owns(spec: ModelSpec) -> bool:
        return any_family or spec.family == "pixels"

    def preprocess(image: Any) -> Any:
        return torch.from_numpy(np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32).transpose(2, 0, 1) / 255)

    def finish(features: np.ndarray) -> np.ndarray:
        features = features.astype(np.float32)
        return features / np.linalg.norm(features, axis=1, keepdims=True) if normalise else features

    @hookimpl
    def mllzoo_register_models(register):
        register(SPEC)

    @hookimpl
    def mllzoo_load_model(spec, device, dtype):
        if not owns(spec):
            return None
        return LoadedModel(spec, None, preprocess, "pixels:8", None, 64, device, dtype)

    @hookimpl
    def mllzoo_encode_images(model, images):
        if not owns(model.spec):
            return None
        return finish(torch.nn.functional.avg_pool2d(images, 4).flatten(1).numpy() + 1e-3)

    @hookimpl
    def mllzoo_encode_texts(model: Any, texts: list[str]):
        if not owns(model.spec):
            return None
        return finish(np.array([[1 + text.count(c) for c in "abcdefghijkl"] for text in texts]))

    return SimpleNamespace(**{name: value for name, value in locals().items() if name.startswith("mllzoo_")})


def test_an_honest_family_passes():
    assert check_registration(pixels_family(), family="pixels") == [SPEC]
    check_model(pixels_family(), SPEC)


def test_unnormalised_features_fail():
    with pytest.raises(AssertionError, match="not L2-normalised"):
        check_model(pixels_family(normalise=False), SPEC)


def test_answering_for_other_families_fails():
    with pytest.raises(AssertionError, match="another family"):
        check_model(pixels_family(any_family=True), SPEC)


def test_a_family_mismatch_in_registration_fails():
    with pytest.raises(AssertionError, match="family 'pixels', expected 'open_clip'"):
        check_registration(pixels_family(), family="open_clip")
