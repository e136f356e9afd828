"""Load and run open_clip models: shared by the open_clip and EVA plugins.

Imports torch and open_clip, so plugin modules import it inside their hook bodies only.
Weights come through open_clip's own code: ``pretrained=tag`` (Hugging Face Hub or URL, cached by
open_clip) or ``pretrained=/local/file`` (open_clip 3.x reads it with ``weights_only=True``, or with
safetensors). Any failure becomes one :class:`~mllzoo.errors.ModelLoadError` line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch

from mllzoo.errors import ModelLoadError
from mllzoo.vlm import LoadedModel, ModelSpec

BATCH_SIZE = 256  # the largest chunk sent through a tower at once; callers may pass bigger batches


def checkpoint_path(spec: ModelSpec) -> str | None:
    """A local weights file named by ``extra["checkpoint"]`` or by ``source``, if any."""
    named = spec.extra.get("checkpoint")
    if named:
        return str(named)
    if spec.source and Path(spec.source).expanduser().exists():
        return str(Path(spec.source).expanduser())
    return None


def weights_origin(spec: ModelSpec) -> str:
    """Where open_clip would take this model's weights from, for error messages."""
    local = checkpoint_path(spec)
    if local:
        return local
    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.tag)
    if cfg.get("hf_hub"):
        return "hf-hub:" + cfg["hf_hub"].rstrip("/")
    return cfg.get("url") or f"open_clip tag {spec.tag!r} (unknown to open_clip {open_clip.__version__})"


def load(spec: ModelSpec, device: str, dtype: str) -> LoadedModel:
    """Build ``spec.arch`` with its weights on ``device`` in ``dtype``, ready to encode."""
    local = checkpoint_path(spec)
    if local and not Path(local).is_file():
        raise ModelLoadError(f"cannot load {spec.id}: checkpoint {local} is not a file")
    # A local copy of a catalogued tag gets that tag's preprocessing, as pretrained=tag would.
    tag_cfg = open_clip.get_pretrained_cfg(spec.arch, spec.tag) if local else {}
    overrides = {f"image_{key}": tag_cfg[key] for key in ("mean", "std", "interpolation", "resize_mode")
                 if key in tag_cfg}
    try:
        module, _, preprocess = open_clip.create_model_and_transforms(
            spec.arch, pretrained=local or spec.tag, device=device, weights_only=True, **overrides)
        tokenizer = open_clip.get_tokenizer(spec.arch)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelLoadError(
            f"cannot load {spec.id}: weights from {weights_origin(spec)} are not available here "
            f"(connect to the hub once to cache them, or name a local checkpoint): {reason}") from None
    module = module.to(dtype=getattr(torch, dtype)).eval()
    return LoadedModel(spec=spec, module=module, preprocess=preprocess,
                       preprocess_key=preprocess_key(module.visual.preprocess_cfg), tokenizer=tokenizer,
                       context_length=int(tokenizer.context_length), device=device, dtype=dtype)


def preprocess_key(cfg: dict[str, Any]) -> str:
    """Name open_clip's eval transform by its config, so models sharing it share decoded images."""
    return "open_clip:" + json.dumps(cfg, sort_keys=True, default=list)


def encode_images(model: LoadedModel, images: Any) -> np.ndarray:
    """L2-normalised image features, ``BATCH_SIZE`` images at a time."""
    dtype = getattr(torch, model.dtype)
    with torch.inference_mode():
        chunks = [model.module.encode_image(chunk.to(model.device, dtype)) for chunk in images.split(BATCH_SIZE)]
    return normalised(chunks)


def encode_texts(model: LoadedModel, texts: list[str]) -> np.ndarray:
    """L2-normalised text features, ``BATCH_SIZE`` texts at a time."""
    with torch.inference_mode():
        chunks = [model.module.encode_text(model.tokenizer(texts[start:start + BATCH_SIZE]).to(model.device))
                  for start in range(0, len(texts), BATCH_SIZE)]
    return normalised(chunks)


def normalised(chunks: list[torch.Tensor]) -> np.ndarray:
    """Concatenate feature chunks and L2-normalise them in float32 (half precision stays on the GPU)."""
    features = torch.cat(chunks).float()
    return torch.nn.functional.normalize(features, dim=-1).cpu().numpy()
