"""mllzoo plugin for the open_clip family: every ``(arch, tag)`` open_clip offers, except EVA-CLIP.

Importing this module stays light (no torch): registration reads the shipped catalogue, and the
load/encode hooks import :mod:`mllzoo_openclip.loading` when first called.
"""

from __future__ import annotations

from collections.abc import Callable

from mllzoo import ModelSpec, family_available, family_hooks, hookimpl, read_catalog

from .catalog import is_eva, local_checkpoint_specs

FAMILY = "open_clip"


@hookimpl
def mllzoo_register_models(register: Callable[[ModelSpec], None]) -> None:
    # User-named checkpoints first: the first registration of an id wins.
    for spec in local_checkpoint_specs(FAMILY, owns=lambda arch: not is_eva(arch)):
        register(spec)
    for spec in read_catalog(__name__):
        register(spec)


@hookimpl
def mllzoo_describe_model(model_id: str, checkpoint: str, config: str | None) -> ModelSpec | None:
    """Check and describe a user's open_clip checkpoint (``mllzoo models add``)."""
    if not model_id.startswith(f"{FAMILY}/"):
        return None
    from .describe import describe

    return describe(model_id, checkpoint, config)


mllzoo_load_model, mllzoo_encode_images, mllzoo_encode_texts = family_hooks(
    FAMILY, "mllzoo_openclip.loading"
)
mllzoo_model_available = family_available(FAMILY, "mllzoo_openclip.loading")
