"""mllzoo plugin for the open_clip family: every ``(arch, tag)`` open_clip offers, except EVA-CLIP.

Importing this module stays light (no torch): registration reads the shipped catalogue, and the
load/encode hooks import :mod:`mllzoo_openclip.loading` when first called.
"""

from __future__ import annotations

from typing import Any, Callable

from mllzoo import hookimpl
from mllzoo.vlm import LoadedModel, ModelSpec

from .catalog import is_eva, local_checkpoint_specs, read_catalog

FAMILY = "open_clip"


@hookimpl
def mllzoo_register_models(register: Callable[[ModelSpec], None]) -> None:
    # User-named checkpoints first: the first registration of an id wins.
    for spec in local_checkpoint_specs(FAMILY, owns=lambda arch: not is_eva(arch)):
        register(spec)
    for spec in read_catalog(__name__):
        register(spec)


@hookimpl
def mllzoo_load_model(spec: ModelSpec, device: str, dtype: str) -> LoadedModel | None:
    if spec.family != FAMILY:
        return None
    from .loading import load

    return load(spec, device, dtype)


@hookimpl
def mllzoo_encode_images(model: LoadedModel, images: Any) -> Any:
    if model.spec.family != FAMILY:
        return None
    from .loading import encode_images

    return encode_images(model, images)


@hookimpl
def mllzoo_encode_texts(model: LoadedModel, texts: list[str]) -> Any:
    if model.spec.family != FAMILY:
        return None
    from .loading import encode_texts

    return encode_texts(model, texts)
