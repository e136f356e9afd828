"""mllzoo plugin: the minizoo, small VLMs trained offline (LiT-style) on the rendered concept world.

Each model pairs a small timm image tower with the frozen all-MiniLM-L6-v2 text tower. Importing
this module reads a JSON table only; torch and timm are imported inside the load/encode hooks.
"""

from __future__ import annotations

from typing import Any, Callable

from mllzoo import hookimpl
from mllzoo.errors import ModelLoadError
from mllzoo.vlm import LoadedModel, ModelSpec

from .zoo import WEIGHTS_DIR, recipe, trained_models

__version__ = "0.1.0"
FAMILY = "minizoo"
BATCH_SIZE = 256


def specs() -> list[ModelSpec]:
    """One spec per shipped model, with the metadata measured when it was trained."""
    out = []
    for m in trained_models():
        out.append(ModelSpec(
            family=FAMILY, arch=m["arch"], tag=m["tag"], params_m=m["params_m"], gflops=m["gflops"],
            image_size=m["image_size"], license="Apache-2.0", source=f"mllzoo_minizoo/weights/{m['weights']}",
            extra={k: m[k] for k in ("training_mix", "mix_parts", "timm_model", "train_images", "images_seen",
                                     "epochs", "train_seconds", "text_tower") if k in m},
        ))
    return out


@hookimpl
def mllzoo_register_models(register: Callable[[ModelSpec], None]) -> None:
    for spec in specs():
        register(spec)


@hookimpl
def mllzoo_load_model(spec: ModelSpec, device: str, dtype: str) -> LoadedModel | None:
    if spec.family != FAMILY:
        return None
    import torch

    from .towers import load_tower, make_preprocess, preprocess_key

    try:
        rec = recipe(spec.arch, spec.tag)
    except KeyError as exc:
        raise ModelLoadError(f"{spec.id}: unknown minizoo model") from exc
    if not rec.weights_file.exists():
        raise ModelLoadError(f"{spec.id}: weights missing at {rec.weights_file} (run `make minizoo`)")
    # small towers gain nothing from half precision on the CPU; honour it elsewhere
    torch_dtype = getattr(torch, dtype) if device != "cpu" else torch.float32
    tower = load_tower(rec, rec.weights_file, device=device, dtype=torch_dtype)
    return LoadedModel(spec=spec, module=tower, preprocess=make_preprocess(rec.image_size),
                       preprocess_key=preprocess_key(rec.image_size), tokenizer=None, context_length=128,
                       device=device, dtype=str(torch_dtype).replace("torch.", ""))


@hookimpl
def mllzoo_encode_images(model: LoadedModel, images: Any) -> Any:
    if model.spec.family != FAMILY:
        return None
    import numpy as np
    import torch

    tower = model.module
    param = next(tower.parameters())
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), BATCH_SIZE):
            batch = images[start:start + BATCH_SIZE].to(device=param.device, dtype=param.dtype)
            out.append(tower(batch).float().cpu().numpy())
    feats = np.concatenate(out) if out else np.zeros((0, 384), np.float32)
    return _l2(feats)


@hookimpl
def mllzoo_encode_texts(model: LoadedModel, texts: list[str]) -> Any:
    if model.spec.family != FAMILY:
        return None
    from mllzoo import minilm

    return _l2(minilm.embed(list(texts)))


def _l2(x: Any) -> Any:
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


__all__ = ["mllzoo_register_models", "mllzoo_load_model", "mllzoo_encode_images", "mllzoo_encode_texts",
           "specs", "WEIGHTS_DIR"]
