"""mllzoo plugin for EVA-CLIP: the EVA archs open_clip offers, as ids ``eva/ARCH.TAG``.

Only the ids are this plugin's own: loading and encoding are the open_clip plugin's code (EVA-CLIP
runs through open_clip's EVA configs, whose image towers are timm's EVA models).
"""

from __future__ import annotations

from collections.abc import Callable

from mllzoo import ModelSpec, family_available, family_hooks, hookimpl, read_catalog
from mllzoo_openclip.catalog import is_eva, local_checkpoint_specs

FAMILY = "eva"


@hookimpl
def mllzoo_register_models(register: Callable[[ModelSpec], None]) -> None:
    # EVA entries of MLLZOO_OPENCLIP_CHECKPOINTS first: the first registration of an id wins.
    for spec in local_checkpoint_specs(FAMILY, owns=is_eva):
        register(spec)
    for spec in read_catalog(__name__):
        register(spec)


mllzoo_load_model, mllzoo_encode_images, mllzoo_encode_texts = family_hooks(
    FAMILY, "mllzoo_openclip.loading"
)
mllzoo_model_available = family_available(FAMILY, "mllzoo_openclip.loading")
