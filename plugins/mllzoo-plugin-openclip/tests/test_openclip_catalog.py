"""The shipped catalogue: in sync with the installed open_clip, with the metadata the hub needs."""

from __future__ import annotations

import open_clip

import mllzoo_openclip
from mllzoo import read_catalog
from mllzoo.testing import check_registration
from mllzoo_openclip.catalog import is_eva


def test_catalogue_matches_installed_open_clip():
    """Regenerate with `python -m mllzoo_openclip.make_catalog` when open_clip's list changes."""
    shipped = {(spec.arch, spec.tag) for spec in read_catalog("mllzoo_openclip")}
    offered = {(arch, tag) for arch, tag in open_clip.list_pretrained() if not is_eva(arch)}
    assert shipped == offered


def test_registration_conforms_and_skips_eva():
    specs = check_registration(mllzoo_openclip, family="open_clip")
    assert not [spec.id for spec in specs if is_eva(spec.arch)]


def test_mll49_hub_models_carry_full_metadata():
    hub = [spec for spec in read_catalog("mllzoo_openclip") if "mll49" in spec.hubs]
    assert (
        len(hub) == 45
    )  # the other 4 of the 49 are EVA-CLIP models, registered by mllzoo-plugin-eva
    for spec in hub:
        assert None not in (
            spec.params_m,
            spec.gflops,
            spec.image_size,
            spec.license,
            spec.imagenet_top1,
        ), spec
        published = spec.extra["mll49"]
        assert spec.imagenet_top1 == published["imagenet_top1"], spec.id
        assert abs(spec.params_m - published["params_m"]) < 0.01, spec.id


def test_metadata_of_a_well_known_model():
    spec = {s.id: s for s in read_catalog("mllzoo_openclip")}[
        "open_clip/ViT-B-32.laion2b_s34b_b79k"
    ]
    assert (spec.params_m, spec.gflops, spec.image_size) == (151.28, 14.78, 224)
    assert (spec.license, spec.imagenet_top1) == ("MIT", 0.6656)
    assert spec.source == "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
