"""mllzoo.testing has teeth: a small honest family passes it, and the usual mistakes fail it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from conftest import run_cli
from mllzoo import hookimpl
from mllzoo.models.vlm import LoadedModel, ModelSpec
from mllzoo.testing import check_model, check_registration

SPEC = ModelSpec(
    family="pixels", arch="mean-colour", tag="v1", image_size=8, source="builtin", license="MIT"
)


def pixels_family(fault: str | None = None, any_family: bool = False) -> SimpleNamespace:
    """A family whose 'model' is colour layout (images) and letter counts (texts), both 12-dimensional."""
    import torch

    def owns(spec: ModelSpec) -> bool:
        return any_family or spec.family == "pixels"

    def preprocess(image: Any) -> Any:
        return torch.from_numpy(
            np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32).transpose(2, 0, 1)
            / 255
        )

    def finish(features: np.ndarray) -> Any:
        """Raw float32 features (the core normalises), or the answer a faulty plugin gives."""
        features = features.astype(np.float32)
        return {
            None: features,
            "nan": features * np.nan,
            "tensor": torch.from_numpy(features),
            "ints": features.astype(np.int32),
            "rows": features[1:],
        }[fault]

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

    return SimpleNamespace(
        **{name: value for name, value in locals().items() if name.startswith("mllzoo_")}
    )


def test_an_honest_family_passes():
    assert check_registration(pixels_family(), family="pixels") == [SPEC]
    check_model(pixels_family(), SPEC)


@pytest.mark.parametrize(
    "fault, message",
    [
        ("nan", "returned NaN image features"),
        ("tensor", "returned torch.Tensor image features, not a numpy array"),
        ("ints", "returned int32 image features, not floats"),
        ("rows", "returned image features of shape"),
    ],
)
def test_features_the_core_would_refuse_fail(fault, message):
    with pytest.raises(AssertionError, match=message):
        check_model(pixels_family(fault), SPEC)


def test_answering_for_other_families_fails():
    with pytest.raises(AssertionError, match="another family"):
        check_model(pixels_family(any_family=True), SPEC)


def test_a_family_mismatch_in_registration_fails():
    with pytest.raises(AssertionError, match="family 'pixels', expected 'open_clip'"):
        check_registration(pixels_family(), family="open_clip")


def test_a_model_without_a_licence_fails():
    from dataclasses import replace

    family = pixels_family()
    family.mllzoo_register_models = hookimpl(lambda register: register(replace(SPEC, license=None)))
    with pytest.raises(AssertionError, match="no licence"):
        check_registration(family, family="pixels")


@pytest.mark.parametrize(
    "family, arch, tag",
    [
        ("f", "tiny.vit", "t"),
        ("f", "tiny", "v.t"),
        ("f", "a b", "t"),
        ("f/g", "a", "t"),
        ("f", "", "t"),
        ("f", "a", "t\n"),
    ],
)
def test_ambiguous_or_malformed_ids_are_refused_at_construction(family, arch, tag):
    with pytest.raises(ValueError, match="malformed model id .*only letters, digits, '_' and '-'"):
        ModelSpec(family=family, arch=arch, tag=tag)


def test_every_catalogued_id_fits_the_grammar():
    """The shipped plugins' tables (open_clip, EVA, Hugging Face, minizoo) all construct."""
    import mllzoo_eva
    import mllzoo_hf
    import mllzoo_minizoo
    import mllzoo_openclip
    from mllzoo.testing import registered_specs

    counts = [
        len(registered_specs(plugin))
        for plugin in (mllzoo_openclip, mllzoo_eva, mllzoo_hf, mllzoo_minizoo)
    ]
    assert all(counts) and sum(counts) >= 200


def test_hf_repository_names_with_dots_become_valid_ids():
    from mllzoo_hf.catalog import hub_spec

    spec = hub_spec("Qwen/Qwen2.5-VL-3B", "v1.0")
    assert spec.id == "hf/Qwen--Qwen2_5-VL-3B.v1_0" and spec.extra == {
        "repo": "Qwen/Qwen2.5-VL-3B",
        "revision": "v1.0",
    }


def test_a_plugin_registering_a_dotted_id_is_one_warning_line(tmp_path, tinyclip_site):
    (tmp_path / "dotted.py").write_text(
        "from mllzoo import ModelSpec, hookimpl\n\n@hookimpl\ndef mllzoo_register_models(register):\n"
        "    register(ModelSpec(family='f', arch='tiny.vit', tag='t', license='MIT', source='x'))\n"
    )
    info = tmp_path / "mllzoo_plugin_dotted-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mllzoo-plugin-dotted\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[mllzoo]\ndotted = dotted\n")
    env = {
        "PYTHONPATH": f"{tmp_path}:{tinyclip_site}",
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-dotted,mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
    }
    listed = run_cli("models", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "tinyclip/tiny-a.seed0" in listed.stdout  # the other plugin's models are still offered
    warning = [line for line in listed.stderr.splitlines() if "dotted" in line]
    assert len(warning) == 1 and "malformed model id 'f/tiny.vit.t'" in warning[0]
    refused = run_cli("register", "f/tiny.vit.t", env=env)
    assert refused.returncode == 2 and "malformed model id 'f/tiny.vit.t'" in refused.stderr


def describing_family(fault: str | None = None) -> SimpleNamespace:
    """The pixels family with a describe hook: a checkpoint is a file starting with ``PIXELS``."""
    from pathlib import Path

    from mllzoo import MllzooError

    family = pixels_family()

    @hookimpl
    def mllzoo_describe_model(model_id, checkpoint, config):
        if not model_id.startswith("pixels/") and fault != "any family":
            return None
        if fault != "accepts anything" and not Path(checkpoint).read_bytes().startswith(b"PIXELS"):
            raise MllzooError(
                f"{checkpoint} is no pixels checkpoint"
                + ("\nsee the docs" if fault == "lines" else "")
            )
        arch, tag = model_id.split("/")[1].split(".")
        return ModelSpec(family="pixels", arch=arch, tag=tag, gflops=1e-6)

    family.mllzoo_describe_model = mllzoo_describe_model
    return family


@pytest.mark.parametrize(
    "fault, message",
    [
        (None, None),
        ("accepts anything", "random bytes was accepted"),
        ("any family", "another family"),
        ("lines", "in several lines"),
    ],
)
def test_the_describe_hook_is_checked(tmp_path, fault, message):
    from mllzoo.testing import check_describe

    checkpoint = tmp_path / "mine.px"
    checkpoint.write_bytes(b"PIXELS v1")
    if message is None:
        assert check_describe(
            describing_family(), "pixels/mean-colour.mine", str(checkpoint)
        ).id == ("pixels/mean-colour.mine")
        return
    with pytest.raises(AssertionError, match=message):
        check_describe(describing_family(fault), "pixels/mean-colour.mine", str(checkpoint))


def test_a_family_without_the_describe_hook_fails_the_describe_check(tmp_path):
    from mllzoo.testing import check_describe

    with pytest.raises(AssertionError, match="does not implement mllzoo_describe_model"):
        check_describe(pixels_family(), "pixels/mean-colour.mine", str(tmp_path / "x"))
