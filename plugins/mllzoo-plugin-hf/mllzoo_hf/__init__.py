"""mllzoo plugin for Hugging Face transformers CLIP and SigLIP checkpoints (family ``hf``).

Importing this module stays light (no torch, no transformers): registration reads the shipped
catalogue and ``MLLZOO_HF_MODELS``; the load/encode hooks import :mod:`mllzoo_hf.loading` when called.
"""

from __future__ import annotations

from collections.abc import Callable

from mllzoo import ModelSpec, family_available, family_hooks, hookimpl, read_catalog

from .catalog import FAMILY, user_specs


@hookimpl
def mllzoo_register_models(register: Callable[[ModelSpec], None]) -> None:
    for spec in user_specs() + read_catalog(__name__):
        register(spec)


mllzoo_load_model, mllzoo_encode_images, mllzoo_encode_texts = family_hooks(
    FAMILY, "mllzoo_hf.loading"
)
mllzoo_model_available = family_available(FAMILY, "mllzoo_hf.loading")
