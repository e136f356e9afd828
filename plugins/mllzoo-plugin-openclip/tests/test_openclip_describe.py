"""``mllzoo models add`` as the open_clip plugin answers it: a lab's own architecture (a tiny model
config open_clip does not ship), saved as .pt and .safetensors, checked, measured and loaded; damaged,
unsafe and mismatched checkpoints refused in one line, and nothing unpickled."""

from __future__ import annotations

import json
import shutil

import open_clip
import pytest
import torch

import mllzoo_openclip
from mllzoo import MllzooError, ModelLoadError, ModelSpec, read_catalog, weights_unavailable
from mllzoo.testing import check_describe
from mllzoo_openclip.describe import describe
from mllzoo_openclip.loading import load
from mllzoo_openclip.make_catalog import measure
from mllzoo_openclip.testing import TINY_VIT, custom_checkpoint, planted_checkpoint, tiny_checkpoint

ARCH = "labvit"  # no architecture open_clip ships
WIDER = {**TINY_VIT, "vision_cfg": {**TINY_VIT["vision_cfg"], "width": 96}}


@pytest.fixture(params=[".pt", ".safetensors"])
def lab_checkpoint(request, tmp_path):
    return custom_checkpoint(tmp_path, ARCH, TINY_VIT, suffix=request.param)


def test_conformance_of_describing_a_labs_architecture(lab_checkpoint):
    weights, config = lab_checkpoint
    assert open_clip.get_model_config(ARCH) is None  # built from the user's config, not registered
    spec = check_describe(mllzoo_openclip, f"open_clip/{ARCH}.epoch3", str(weights), str(config))
    assert spec.extra["model_cfg"] == TINY_VIT and spec.extra["checkpoint"] == str(weights)
    assert spec.image_size == 32 and spec.extra["context_length"] == 16
    assert open_clip.get_model_config(ARCH) is None  # and open_clip's registry is left as it was


def test_costs_are_measured_as_the_catalogue_measures_them(tmp_path):
    from safetensors.torch import load_file

    weights, config = custom_checkpoint(tmp_path, ARCH, TINY_VIT)
    (tmp_path / "wide").mkdir()
    wide_weights, wide_config = custom_checkpoint(tmp_path / "wide", "widevit", WIDER)
    spec = describe(f"open_clip/{ARCH}.a", str(weights), str(config))
    wide = describe("open_clip/widevit.a", str(wide_weights), str(wide_config))
    saved = sum(tensor.numel() for tensor in load_file(weights).values())
    assert spec.params_m == round(saved / 1e6, 4)  # every tensor of the checkpoint counted
    assert spec.gflops == measure(ARCH, TINY_VIT, places=4)["gflops"] and spec.gflops > 0
    assert wide.gflops > spec.gflops and wide.params_m > spec.params_m
    # A user's config is counted as the catalogue counts a shipped arch: ViT-B-32 given as a config
    # measures what the shipped catalogue says.
    shipped = next(s for s in read_catalog("mllzoo_openclip") if s.arch == "ViT-B-32")
    as_config = measure("ViT-B-32", open_clip.get_model_config("ViT-B-32"))
    assert (as_config["params_m"], as_config["gflops"]) == (shipped.params_m, shipped.gflops)


def test_a_shipped_architecture_needs_no_config(tmp_path):
    with tiny_checkpoint(tmp_path, "mllzoo-tiny-ViT", TINY_VIT) as weights:
        spec = describe("open_clip/mllzoo-tiny-ViT.mine", str(weights), None)
        assert "model_cfg" not in spec.extra and spec.params_m and spec.gflops
        assert load(spec, "cpu", "float32").context_length == 16


def test_a_local_dir_folder_is_config_and_weights(tmp_path):
    weights, _ = custom_checkpoint(tmp_path, ARCH, TINY_VIT)
    folder = tmp_path / "run7"
    folder.mkdir()
    shutil.copyfile(weights, folder / "open_clip_model.safetensors")
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_VIT, "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3}})
    )
    spec = check_describe(mllzoo_openclip, f"open_clip/{ARCH}.run7", f"local-dir:{folder}")
    assert spec.extra["checkpoint"] == str(folder / "open_clip_model.safetensors")
    assert spec.extra["preprocess_cfg"]["mean"] == [0.5] * 3
    assert '"mean": [0.5, 0.5, 0.5]' in load(spec, "cpu", "float32").preprocess_key
    with pytest.raises(MllzooError, match="give --config only with a weights file"):
        describe(f"open_clip/{ARCH}.x", f"local-dir:{folder}", str(tmp_path / f"{ARCH}.json"))
    (folder / "open_clip_config.json").unlink()
    with pytest.raises(MllzooError, match="has no open_clip_config.json"):
        describe(f"open_clip/{ARCH}.x", f"local-dir:{folder}", None)


def one_line(call) -> str:
    with pytest.raises(MllzooError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message.strip(), message
    return message


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_truncated_checkpoint_is_refused(tmp_path, suffix):
    weights, config = custom_checkpoint(tmp_path, ARCH, TINY_VIT, suffix=suffix)
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    message = one_line(lambda: describe(f"open_clip/{ARCH}.t", str(weights), str(config)))
    assert "truncated or damaged" in message and weights.name in message


def test_weights_of_another_architecture_are_refused(tmp_path):
    weights, _ = custom_checkpoint(tmp_path, ARCH, TINY_VIT)
    config = tmp_path / "wider.json"
    config.write_text(json.dumps(WIDER))
    message = one_line(lambda: describe(f"open_clip/{ARCH}.w", str(weights), str(config)))
    assert f"does not fit architecture {ARCH}" in message and "size mismatch" in message
    fewer = tmp_path / "fewer.safetensors"
    from safetensors.torch import load_file, save_file

    state = load_file(weights)
    save_file({k: v for k, v in state.items() if not k.startswith("visual.transformer")}, fewer)
    message = one_line(
        lambda: describe(f"open_clip/{ARCH}.w", str(fewer), str(tmp_path / f"{ARCH}.json"))
    )
    assert "missing key(s) (visual.transformer." in message


@pytest.mark.parametrize("writer", ["legacy", "torch.save"])
def test_a_pickled_object_is_refused_and_never_unpickled(tmp_path, writer):
    _, config = custom_checkpoint(tmp_path, ARCH, TINY_VIT)
    marker = tmp_path / "ran"
    evil = planted_checkpoint(tmp_path / "ck.pt", marker, writer)
    message = one_line(lambda: describe(f"open_clip/{ARCH}.p", str(evil), str(config)))
    assert "never unpickled" in message and not marker.exists()
    with pytest.raises(ModelLoadError):  # nor by a spec naming it directly
        load(
            ModelSpec(
                family="open_clip",
                arch=ARCH,
                tag="p",
                extra={"checkpoint": str(evil), "model_cfg": TINY_VIT},
            ),
            "cpu",
            "float32",
        )
    assert not marker.exists()
    with pytest.raises(Exception, match="Unsupported global: GLOBAL io.open"):
        torch.load(evil, weights_only=True)  # the file would run code if unpickled: torch says so


def test_configs_that_are_missing_or_wrong_are_refused(tmp_path):
    weights, config = custom_checkpoint(tmp_path, ARCH, TINY_VIT)
    message = one_line(lambda: describe(f"open_clip/{ARCH}.c", str(weights), None))
    assert f"has no architecture '{ARCH}'" in message and "--config" in message
    config.write_text("{not json")
    assert "cannot read config" in one_line(
        lambda: describe(f"open_clip/{ARCH}.c", str(weights), str(config))
    )
    config.write_text(json.dumps({"vision_cfg": {}}))
    assert "lacks embed_dim, text_cfg" in one_line(
        lambda: describe(f"open_clip/{ARCH}.c", str(weights), str(config))
    )


def test_an_unknown_architecture_names_the_cause_not_the_weights(tmp_path):
    """What ``MLLZOO_OPENCLIP_CHECKPOINTS=labvit.e3=...`` used to end in: open_clip's list of every
    architecture, cut mid-word, behind "weights are not available"."""
    weights, _ = custom_checkpoint(tmp_path, ARCH, TINY_VIT)
    spec = ModelSpec(family="open_clip", arch=ARCH, tag="e3", extra={"checkpoint": str(weights)})
    with pytest.raises(ModelLoadError) as caught:
        load(spec, "cpu", "float32")
    message = str(caught.value)
    assert f"has no architecture '{ARCH}'" in message and "mllzoo models add" in message
    assert "weights are not available" not in message and "RN50" not in message


def test_a_long_library_error_is_cut_at_a_word():
    error = weights_unavailable("f/a.b", "somewhere", RuntimeError("word " * 100))
    inside = str(error).split("(", 1)[1].split(")", 1)[0]
    assert inside.endswith("word ...") and len(inside) < 220
