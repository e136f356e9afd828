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


def pixels_family(fault: str | None = None, any_family: bool = False) -> SimpleNamespace:
    """A family whose 'model' is colour layout (images) and letter counts (texts), both 12-dimensional."""
    import torch

    def owns(spec: ModelSpec) -> bool:
        return any_family or spec.family == "pixels"

    def preprocess(image: Any) -> Any:
        return torch.from_numpy(np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32).transpose(2, 0, 1) / 255)

    def finish(features: np.ndarray) -> Any:
        """Raw float32 features (the core normalises), or the answer a faulty plugin gives."""
        features = features.astype(np.float32)
        return {None: features, "nan": features * np.nan, "tensor": torch.from_numpy(features),
                "ints": features.astype(np.int32), "rows": features[1:]}[fault]

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


@pytest.mark.parametrize("fault, message", [("nan", "returned NaN image features"),
                                            ("tensor", "returned torch.Tensor image features, not a numpy array"),
                                            ("ints", "returned int32 image features, not floats"),
                                            ("rows", "returned image features of shape")])
def test_features_the_core_would_refuse_fail(fault, message):
    with pytest.raises(AssertionError, match=message):
        check_model(pixels_family(fault), SPEC)


def test_answering_for_other_families_fails():
    with pytest.raises(AssertionError, match="another family"):
        check_model(pixels_family(any_family=True), SPEC)


def test_a_family_mismatch_in_registration_fails():
    with pytest.raises(AssertionError, match="family 'pixels', expected 'open_clip'"):
        check_registration(pixels_family(), family="open_clip")
