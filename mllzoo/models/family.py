"""The load and encode hooks of one model family, so a plugin module does not write them again.

Every family plugin needs the same three hooks: answer for its own specs, return ``None`` for the
others (the hooks are firstresult), and import its heavy code only when first called so that
importing the plugin stays torch-free. A plugin module binds them with::

    mllzoo_load_model, mllzoo_encode_images, mllzoo_encode_texts = family_hooks("myclip", "mllzoo_myclip.model")

where module ``mllzoo_myclip.model`` defines ``load(spec, device, dtype)``, ``encode_images(model,
images)`` and ``encode_texts(model, texts)``. A module that can tell whether a model's weights are
already here defines ``available(spec)`` too, bound by :func:`family_available`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mllzoo.hookspecs import hookimpl
from mllzoo.models.vlm import LoadedModel, ModelSpec


def family_hooks(family: str, implementation: str) -> tuple[Callable[..., Any], ...]:
    """``(mllzoo_load_model, mllzoo_encode_images, mllzoo_encode_texts)`` for ``family``."""

    def code() -> Any:
        return importlib.import_module(implementation)

    @hookimpl
    def mllzoo_load_model(spec: ModelSpec, device: str, dtype: str) -> LoadedModel | None:
        return code().load(spec, device, dtype) if spec.family == family else None

    @hookimpl
    def mllzoo_encode_images(model: LoadedModel, images: Any) -> Any:
        return code().encode_images(model, images) if model.spec.family == family else None

    @hookimpl
    def mllzoo_encode_texts(model: LoadedModel, texts: list[str]) -> Any:
        return code().encode_texts(model, texts) if model.spec.family == family else None

    return mllzoo_load_model, mllzoo_encode_images, mllzoo_encode_texts


def family_available(family: str, implementation: str) -> Callable[..., Any]:
    """The ``mllzoo_model_available`` hook of ``family``: ``implementation.available(spec)`` for its own specs."""

    @hookimpl
    def mllzoo_model_available(spec: ModelSpec) -> bool | None:
        return (
            bool(importlib.import_module(implementation).available(spec))
            if spec.family == family
            else None
        )

    return mllzoo_model_available
