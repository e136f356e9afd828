"""Image towers (timm architectures with a 384-d head) and their preprocessing. Imports torch.

The text tower is the frozen all-MiniLM-L6-v2 (:mod:`mllzoo.text.minilm_numpy`), so a tower's job is to map
images into MiniLM's sentence space. Weights are stored as float16 safetensors (the recipe rides in
the file's metadata) and loaded back as float32.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .zoo import Recipe

EMBED_DIM = 384
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


class ImageTower(nn.Module):
    """A timm backbone whose classifier is the 384-d projection into MiniLM space."""

    def __init__(self, recipe: Recipe):
        super().__init__()
        import timm

        self.trunk = timm.create_model(
            recipe.timm_name, pretrained=False, num_classes=EMBED_DIM, **recipe.timm_kwargs
        )
        self.image_size = recipe.image_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.trunk(images), dim=-1)


def preprocess_key(image_size: int) -> str:
    return f"resize{image_size}-bicubic-norm(0.5,0.5)"


def make_preprocess(image_size: int) -> Callable[[Any], torch.Tensor]:
    """RGB PIL image -> float tensor [3, S, S]: a plain resize (the world's images are square)."""
    from PIL import Image

    def preprocess(image: Any) -> torch.Tensor:
        image = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BICUBIC)
        return normalize(
            torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        )

    return preprocess


def normalize(uint8_chw: torch.Tensor) -> torch.Tensor:
    """uint8 [.., 3, H, W] -> float in [-1, 1]."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (uint8_chw.float() / 255.0 - mean) / std


def save_tower(tower: ImageTower, recipe: Recipe, path: Path) -> None:
    from safetensors.torch import save_file

    state = {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in tower.state_dict().items()
        if v.dtype.is_floating_point
    }
    state.update(
        {
            k: v.detach().contiguous()
            for k, v in tower.state_dict().items()
            if not v.dtype.is_floating_point
        }
    )
    meta = {
        "recipe": json.dumps(
            {
                "arch": recipe.arch,
                "tag": recipe.tag,
                "timm_name": recipe.timm_name,
                "image_size": recipe.image_size,
                "timm_kwargs": recipe.timm_kwargs,
            }
        )
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=meta)


def load_tower(
    recipe: Recipe, path: Path, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> ImageTower:
    from safetensors.torch import load_file

    tower = ImageTower(recipe)
    state = load_file(str(path))
    reference = tower.state_dict()
    tower.load_state_dict({k: v.to(reference[k].dtype) for k, v in state.items()})
    return tower.to(device=device, dtype=dtype).eval()
