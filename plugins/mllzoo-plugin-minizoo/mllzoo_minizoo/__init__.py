"""mllzoo plugin: the minizoo, small VLMs trained offline (LiT-style) on the rendered concept world.

Each model pairs a small timm image tower with the frozen all-MiniLM-L6-v2 text tower. Importing
this module reads a JSON table only; torch and timm are imported inside the load/encode hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mllzoo import ModelSpec, family_hooks, hookimpl

from .zoo import WEIGHTS_DIR, trained_models

__version__ = "0.1.0"
FAMILY = "minizoo"


def specs() -> list[ModelSpec]:
    """One spec per shipped model, with the metadata measured when it was trained."""
    out = []
    for m in trained_models():
        out.append(
            ModelSpec(
                family=FAMILY,
                arch=m["arch"],
                tag=m["tag"],
                params_m=m["params_m"],
                gflops=m["gflops"],
                image_size=m["image_size"],
                license="Apache-2.0",
                source=f"mllzoo_minizoo/weights/{m['weights']}",
                extra={
                    k: m[k]
                    for k in (
                        "training_mix",
                        "mix_parts",
                        "timm_model",
                        "train_images",
                        "images_seen",
                        "epochs",
                        "train_seconds",
                        "text_tower",
                    )
                    if k in m
                },
            )
        )
    return out


@hookimpl
def mllzoo_register_models(register: Callable[[ModelSpec], None]) -> None:
    for spec in specs():
        register(spec)


mllzoo_load_model, mllzoo_encode_images, mllzoo_encode_texts = family_hooks(
    FAMILY, "mllzoo_minizoo.model"
)


@hookimpl
def mllzoo_model_available(spec: ModelSpec) -> bool | None:
    """The weights ship with the plugin: a registered model is always here."""
    return (WEIGHTS_DIR / Path(spec.source or "").name).is_file() if spec.family == FAMILY else None


__all__ = [
    "mllzoo_register_models",
    "mllzoo_load_model",
    "mllzoo_encode_images",
    "mllzoo_encode_texts",
    "mllzoo_model_available",
    "specs",
    "WEIGHTS_DIR",
]
