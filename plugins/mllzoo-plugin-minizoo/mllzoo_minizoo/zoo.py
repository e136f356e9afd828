"""The minizoo's recipes: which timm tower, resolution and training mix each model gets.

Pure Python (no torch), so that registering the models stays cheap. ``train.py`` turns a recipe into
weights and writes the measured metadata (params, GFLOPs, images seen, time) to ``models.json``;
registration reads that file, so a model is offered only once its weights exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"
MODELS_JSON = PACKAGE_DIR / "models.json"

# Training mixes: which parts of the training pool a model sees. A part is an emoji category, a
# clip-art folder prefix ("clipart/animals") or one of the builder's domains (digits, words, textures).
MIXES: dict[str, tuple[str, ...]] = {
    "broad": (),  # everything
    "nature": (
        "Animals & Nature",
        "Food & Drink",
        "clipart/animals",
        "clipart/food",
        "clipart/plants",
    ),
    "travel": (
        "Travel & Places",
        "Objects",
        "clipart/transportation",
        "clipart/tools",
        "clipart/buildings",
        "clipart/office",
        "clipart/electronics",
        "clipart/recreation/music",
        "clipart/people",
    ),
    "people": (
        "Smileys & Emotion",
        "People & Body",
        "Activities",
        "clipart/recreation/sports",
        "clipart/recreation/toys",
    ),
    "flags": ("Flags", "clipart/signs_and_symbols/flags", "digits"),
    "patterns": ("textures", "digits"),
}


@dataclass(frozen=True)
class Recipe:
    """One minizoo model: a timm image tower trained LiT-style against frozen MiniLM text embeddings."""

    arch: str
    tag: str
    timm_name: str
    image_size: int
    mix: str
    timm_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    budget: int = (
        60_000  # training images seen (steps x batch); a specialist spends it on fewer images
    )
    lr: float = 2e-3
    seed: int = 0

    @property
    def id(self) -> str:
        return f"minizoo/{self.arch}.{self.tag}"

    @property
    def weights_file(self) -> Path:
        return WEIGHTS_DIR / f"{self.arch}.{self.tag}.safetensors"


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "resnet18-s",
        "broad",
        "resnet18",
        48,
        "broad",
        {"channels": (16, 32, 64, 128)},
        budget=150_000,
    ),
    Recipe("mobilenetv3-s050", "broad", "mobilenetv3_small_050", 64, "broad", budget=120_000),
    Recipe(
        "convnext-xs",
        "nature",
        "convnext_atto",
        64,
        "nature",
        {"dims": (24, 48, 96, 192), "depths": (2, 2, 4, 2)},
        budget=100_000,
    ),
    Recipe(
        "convnext-xs",
        "travel",
        "convnext_atto",
        64,
        "travel",
        {"dims": (24, 48, 96, 192), "depths": (2, 2, 4, 2)},
        budget=100_000,
    ),
    Recipe(
        "resnet18-s",
        "people",
        "resnet18",
        48,
        "people",
        {"channels": (16, 32, 64, 128)},
        budget=80_000,
    ),
    Recipe(
        "resnet10t-s",
        "flags",
        "resnet10t",
        48,
        "flags",
        {"channels": (24, 48, 96, 192)},
        budget=80_000,
    ),
    Recipe(
        "vit-t4",
        "patterns",
        "vit_tiny_patch16_224",
        32,
        "patterns",
        {"img_size": 32, "patch_size": 4, "embed_dim": 128, "depth": 4, "num_heads": 4},
        budget=30_000,
        lr=1e-3,
    ),
    Recipe(
        "resnet10t-s",
        "broad32",
        "resnet10t",
        32,
        "broad",
        {"channels": (24, 48, 96, 192)},
        budget=120_000,
    ),
)


def recipe(arch: str, tag: str) -> Recipe:
    for r in RECIPES:
        if (r.arch, r.tag) == (arch, tag):
            return r
    raise KeyError(f"no minizoo recipe {arch}.{tag}")


def trained_models() -> list[dict[str, Any]]:
    """The metadata ``train.py`` measured, for the models whose weights are shipped."""
    if not MODELS_JSON.exists():
        return []
    models = json.loads(MODELS_JSON.read_text())
    return [m for m in models if (WEIGHTS_DIR / m["weights"]).exists()]
