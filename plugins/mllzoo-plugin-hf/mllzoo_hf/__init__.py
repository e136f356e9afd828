"""mllzoo plugin for Hugging Face transformers CLIP and SigLIP checkpoints (family ``hf``).

Importing this module stays light (no torch, no transformers): registration reads the shipped
catalogue and ``MLLZOO_HF_MODELS``; the load/encode hooks import :mod:`mllzoo_hf.loading` when called.
"""

from __future__ import annotations

from typing import Any, Callable

from mllzoo import hookimpl
from mllzoo.vlm import LoadedModel, ModelSpec

from .catalog import FAMILY, read_catalog, user_specs


@hookimpl
def mllzoo_register_models(register: Callable[[ModelSpec], None]) -> None:
    for spec in user_specs() + read_catalog():
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
