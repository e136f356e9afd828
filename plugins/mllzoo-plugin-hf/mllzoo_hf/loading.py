"""Load and run transformers dual encoders (CLIP, SigLIP, ...) with transformers' own classes.

``AutoModel``/``AutoProcessor.from_pretrained`` read a Hub repository (cached by huggingface_hub) or a
local folder. The image processor is the model's own, so ``preprocess`` turns one PIL image into the
``[3, H, W]`` tensor the model was trained on. The Hub is used only while it is reachable
(:mod:`mllzoo.models.weights`): otherwise the cache answers at once, so an offline load fails in milliseconds.
Imports torch: plugin modules import it lazily.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub import try_to_load_from_cache

from mllzoo import (
    LoadedModel,
    ModelLoadError,
    ModelSpec,
    hub_unreachable_reason,
    offline_unless_reachable,
    weights_unavailable,
)


class ImageTransform:
    """One PIL image to the model's pixel tensor through its image processor."""

    def __init__(self, image_processor: Any) -> None:
        self.image_processor = image_processor

    def __call__(self, image: Any) -> torch.Tensor:
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]


def location(spec: ModelSpec) -> tuple[str, str | None]:
    """Where ``from_pretrained`` reads the model: a local folder (no revision), or a Hub repo at a
    revision."""
    if spec.extra.get("checkpoint"):
        return str(spec.extra["checkpoint"]), None
    return str(spec.extra["repo"]), str(spec.extra.get("revision", "main"))


def is_cached(repo: str, revision: str) -> bool:
    """Whether an earlier download left ``repo``'s config at ``revision`` in the Hugging Face cache."""
    return isinstance(try_to_load_from_cache(repo, "config.json", revision=revision), str)


def available(spec: ModelSpec) -> bool:
    """Whether the model is here without a download: a local folder, or a repository the cache holds."""
    where, revision = location(spec)
    return Path(where).is_dir() if revision is None else is_cached(where, revision)


def load(spec: ModelSpec, device: str, dtype: str) -> LoadedModel:
    """The model and its processor on ``device`` in ``dtype``; one clear line when unavailable."""
    from transformers import AutoModel, AutoProcessor

    where, revision = location(spec)
    if revision is not None and not is_cached(where, revision):
        unreachable = hub_unreachable_reason()
        if unreachable:
            raise weights_unavailable(
                spec.id, spec.source or where, f"not cached here and {unreachable}"
            )
    try:
        with (
            offline_unless_reachable()
        ):  # a partly cached model fails at once rather than after retries
            processor = AutoProcessor.from_pretrained(where, revision=revision)
            module = AutoModel.from_pretrained(where, revision=revision)
    except Exception as exc:
        raise weights_unavailable(
            spec.id, where if revision is None else (spec.source or where), exc
        ) from None
    if not (hasattr(module, "get_image_features") and hasattr(module, "get_text_features")):
        raise ModelLoadError(
            f"cannot load {spec.id}: {type(module).__name__} is not an image-text dual encoder"
        )
    module = module.to(device=device, dtype=getattr(torch, dtype)).eval()
    image_processor = processor.image_processor
    return LoadedModel(
        spec=spec,
        module=module,
        preprocess=ImageTransform(image_processor),
        preprocess_key=preprocess_key(image_processor),
        tokenizer=processor.tokenizer,
        context_length=int(module.config.text_config.max_position_embeddings),
        device=device,
        dtype=dtype,
    )


def preprocess_key(image_processor: Any) -> str:
    """Name the transform by the image processor's settings (class, size, crop, resample, mean/std)."""
    settings = {
        key: value
        for key, value in image_processor.to_dict().items()
        if not key.startswith("_") and key != "processor_class"
    }
    return "hf:" + json.dumps(settings, sort_keys=True, default=str)


def encode_images(model: LoadedModel, images: Any) -> np.ndarray:
    """Image features in float32; the core batches the calls and L2-normalises."""
    pixels = images.to(model.device, getattr(torch, model.dtype))
    with torch.inference_mode():
        return _pooled(model.module.get_image_features(pixel_values=pixels)).float().cpu().numpy()


def encode_texts(model: LoadedModel, texts: list[str]) -> np.ndarray:
    """Text features in float32. SigLIP was trained on texts padded to full length, so pad that way."""
    padding = "max_length" if "siglip" in model.module.config.model_type else True
    batch = model.tokenizer(
        texts,
        padding=padding,
        truncation=True,
        max_length=model.context_length,
        return_tensors="pt",
    )
    with torch.inference_mode():
        return (
            _pooled(model.module.get_text_features(**batch.to(model.device))).float().cpu().numpy()
        )


def _pooled(output: Any) -> torch.Tensor:
    """transformers 4 returns the projected features, transformers 5 an output whose pooler_output they are."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output
