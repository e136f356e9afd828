"""Loading and encoding the minizoo models: a timm image tower and the frozen MiniLM text tower.

Imported by the family hooks on first use (see ``mllzoo.models.family``), so importing the plugin stays
torch-free.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mllzoo import MINILM_MODEL_NAME, LoadedModel, ModelLoadError, ModelSpec, minilm_embed

from .towers import load_tower, make_preprocess, preprocess_key
from .zoo import recipe


def load(spec: ModelSpec, device: str, dtype: str) -> LoadedModel:
    try:
        rec = recipe(spec.arch, spec.tag)
    except KeyError as exc:
        raise ModelLoadError(f"{spec.id}: unknown minizoo model") from exc
    if not rec.weights_file.exists():
        raise ModelLoadError(
            f"{spec.id}: weights missing at {rec.weights_file} (run `make minizoo`)"
        )
    # small towers gain nothing from half precision on the CPU; honour it elsewhere
    torch_dtype = getattr(torch, dtype) if device != "cpu" else torch.float32
    tower = load_tower(rec, rec.weights_file, device=device, dtype=torch_dtype)
    return LoadedModel(
        spec=spec,
        module=tower,
        preprocess=make_preprocess(rec.image_size),
        preprocess_key=preprocess_key(rec.image_size),
        tokenizer=None,
        context_length=128,
        device=device,
        dtype=str(torch_dtype).replace("torch.", ""),
        text_key=MINILM_MODEL_NAME,
    )


def encode_images(model: LoadedModel, images: Any) -> np.ndarray:
    """Image features in float32; the core batches the calls and L2-normalises."""
    param = next(model.module.parameters())
    with torch.inference_mode():
        return model.module(images.to(device=param.device, dtype=param.dtype)).float().cpu().numpy()


def encode_texts(model: LoadedModel, texts: list[str]) -> np.ndarray:
    return minilm_embed(list(texts))
