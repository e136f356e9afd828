"""Load and run open_clip models: shared by the open_clip and EVA plugins.

Imports torch and open_clip, so plugin modules import it inside their hook bodies only.
Weights come through open_clip's own code: ``pretrained=/local/file`` (a user's checkpoint, or a tag's
weights already in the cache; open_clip 3.x reads it with ``weights_only=True``, or with safetensors) or
``pretrained=tag`` (downloaded by open_clip) when the source answers. Hub access happens only while
the Hub is reachable (:mod:`mllzoo.models.weights`), so an offline load fails in milliseconds, not minutes.
Any failure becomes one :class:`~mllzoo.errors.ModelLoadError` line.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import open_clip
import torch
from huggingface_hub import try_to_load_from_cache
from open_clip.constants import HF_WEIGHTS_NAME
from open_clip.pretrained import (
    _get_safe_alternatives,
)  # open_clip's own safetensors-first file order

from mllzoo import (
    LoadedModel,
    ModelLoadError,
    ModelSpec,
    hub_unreachable_reason,
    offline_unless_reachable,
    reachable,
    weights_unavailable,
)


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
    return (
        cfg.get("url")
        or f"open_clip tag {spec.tag!r} (unknown to open_clip {open_clip.__version__})"
    )


def cached_weights(spec: ModelSpec) -> str | None:
    """The local file of a catalogued tag's weights if an earlier download left it in the cache.

    Looks where open_clip downloads (the Hugging Face cache for ``hf_hub`` sources, ``~/.cache/clip``
    for URLs), for the names it would fetch, in its order, without touching the network.
    """
    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.tag)
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        for name in (*_get_safe_alternatives(filename), filename):
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str):
                return found
        return None
    if cfg.get("url"):
        found = Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"])
        return str(found) if found.is_file() else None
    return None


def available(spec: ModelSpec) -> bool:
    """Whether the weights are here without a download: a local checkpoint file, or a tag's cached weights."""
    local = checkpoint_path(spec)
    return Path(local).is_file() if local else cached_weights(spec) is not None


def pretrained_weights(spec: ModelSpec) -> str:
    """What to pass open_clip as ``pretrained``: a local file, else the tag when its source answers.

    Raises one :class:`ModelLoadError` line, without waiting on retries, when the weights are neither
    local nor cached and their source cannot be reached.
    """
    local = checkpoint_path(spec)
    if local:
        if not Path(local).is_file():
            raise ModelLoadError(f"cannot load {spec.id}: checkpoint {local} is not a file")
        return local
    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.tag)
    if not cfg:
        return spec.tag  # not a tag open_clip knows: its own error says so
    cached = cached_weights(spec)
    if cached:
        return cached
    if cfg.get("hf_hub"):
        unreachable = hub_unreachable_reason()
    else:
        unreachable = (
            None if reachable(cfg["url"]) else f"{urlsplit(cfg['url']).netloc} cannot be reached"
        )
    if unreachable:
        raise weights_unavailable(
            spec.id, weights_origin(spec), f"not cached here and {unreachable}"
        )
    return spec.tag


LOCAL_DIR = "local-dir:"


@contextmanager
def open_clip_name(
    arch: str, model_cfg: dict[str, Any] | None = None, preprocess_cfg: dict[str, Any] | None = None
) -> Iterator[str]:
    """The name open_clip builds ``arch`` by: the arch itself when open_clip ships it and no config of
    the user's is given, else a ``local-dir:`` folder holding that config (open_clip's own layout), so
    a user's architecture is built by open_clip's factory without touching its global registry.
    open_clip's warning that the folder holds no weights is kept quiet: they are loaded apart."""
    if model_cfg is None:
        yield arch
        return
    saved = logging.root.manager.disable
    with tempfile.TemporaryDirectory(prefix="mllzoo-open_clip-") as folder:
        config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg or {}}
        (Path(folder) / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
        logging.disable(logging.WARNING)
        try:
            yield LOCAL_DIR + folder
        finally:
            logging.disable(saved)


def unknown_architecture(spec: ModelSpec) -> ModelLoadError | None:
    """The real cause when ``spec.arch`` is no architecture open_clip ships and the spec gives none."""
    if spec.extra.get("model_cfg") is not None or open_clip.get_model_config(spec.arch) is not None:
        return None
    return ModelLoadError(
        f"cannot load {spec.id}: open_clip {open_clip.__version__} has no architecture "
        f"{spec.arch!r} and the model gives none; add a checkpoint of your own architecture with "
        f"its config: `mllzoo models add open_clip/ARCH.TAG --checkpoint PATH --config ARCH.json`"
    )


def load(spec: ModelSpec, device: str, dtype: str) -> LoadedModel:
    """Build ``spec.arch`` (or the architecture ``extra["model_cfg"]`` describes) with its weights on
    ``device`` in ``dtype``, ready to encode."""
    unknown = unknown_architecture(spec)
    if unknown:
        raise unknown
    model_cfg = spec.extra.get("model_cfg")
    pretrained = pretrained_weights(spec)
    # A local copy of a catalogued tag gets that tag's preprocessing, as pretrained=tag would.
    tag_cfg = open_clip.get_pretrained_cfg(spec.arch, spec.tag) if pretrained != spec.tag else {}
    overrides = {
        f"image_{key}": tag_cfg[key]
        for key in ("mean", "std", "interpolation", "resize_mode")
        if key in tag_cfg
    }
    try:
        # Text towers and tokenizers from the Hub (SigLIP, XLM-R, ...) come from the cache when it is down.
        with (
            offline_unless_reachable(),
            open_clip_name(spec.arch, model_cfg, spec.extra.get("preprocess_cfg")) as name,
            warnings.catch_warnings(),
        ):
            # torch's remark on a checkpoint's pickle protocol is no warning for the user
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            module, _, preprocess = open_clip.create_model_and_transforms(
                name,
                pretrained=None if model_cfg else pretrained,
                device=device,
                weights_only=True,
                **overrides,
            )
            tokenizer = open_clip.get_tokenizer(name)
            if model_cfg is not None:  # the folder held only the config: load the weights strictly
                open_clip.load_checkpoint(module, pretrained, weights_only=True)
    except Exception as exc:
        raise weights_unavailable(spec.id, weights_origin(spec), exc) from None
    module = module.to(dtype=getattr(torch, dtype)).eval()
    return LoadedModel(
        spec=spec,
        module=module,
        preprocess=preprocess,
        preprocess_key=preprocess_key(module.visual.preprocess_cfg),
        tokenizer=tokenizer,
        context_length=int(tokenizer.context_length),
        device=device,
        dtype=dtype,
    )


def preprocess_key(cfg: dict[str, Any]) -> str:
    """Name open_clip's eval transform by its config, so models sharing it share decoded images."""
    return "open_clip:" + json.dumps(cfg, sort_keys=True, default=list)


def encode_images(model: LoadedModel, images: Any) -> np.ndarray:
    """Image features in float32; the core batches the calls and L2-normalises."""
    with torch.inference_mode():
        return (
            model.module.encode_image(images.to(model.device, getattr(torch, model.dtype)))
            .float()
            .cpu()
            .numpy()
        )


def encode_texts(model: LoadedModel, texts: list[str]) -> np.ndarray:
    """Text features in float32; the core batches the calls and L2-normalises."""
    with torch.inference_mode():
        return (
            model.module.encode_text(model.tokenizer(texts).to(model.device)).float().cpu().numpy()
        )
