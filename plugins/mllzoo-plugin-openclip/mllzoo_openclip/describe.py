"""``mllzoo models add open_clip/ARCH.TAG --checkpoint PATH [--config FILE]``: check and describe a checkpoint.

The weights are read on the CPU the way loading reads them (open_clip's own reader: safetensors, or
``torch.load(weights_only=True)``, which refuses any pickled object other than tensors and plain
containers without running it) and loaded strictly into the architecture: open_clip's own by name,
or the user's model config (``--config``, or ``open_clip_config.json`` of a ``local-dir:`` folder).
Params and GFLOPs are measured as the catalogue's are (:func:`mllzoo_openclip.make_catalog.measure`).
Each problem is one :class:`~mllzoo.MllzooError` line. Imports torch: the hook imports this lazily.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.factory import _find_checkpoint_in_dir, load_state_dict

from mllzoo import MllzooError, ModelSpec

from .loading import LOCAL_DIR, open_clip_name
from .make_catalog import measure

MODEL_CFG_KEYS = ("embed_dim", "vision_cfg", "text_cfg")
SHOWN_KEYS = 3  # key names a mismatch message lists
PLACES = 4  # a lab's small architecture would round to 0 GFLOPs at the catalogue's 2 decimals


def describe(model_id: str, checkpoint: str, config: str | None) -> ModelSpec:
    """The spec of a user's checkpoint, once it is known to load into its architecture."""
    family, name = model_id.split("/", 1)  # an id the core checked: family/arch.tag
    arch, tag = name.split(".", 1)
    weights, model_cfg, preprocess_cfg = architecture(arch, checkpoint, config)
    read_weights(weights)
    model = built(arch, model_cfg, preprocess_cfg)
    fit(model, weights, arch)
    facts = measure(arch, model_cfg, places=PLACES)
    extra: dict[str, Any] = {"checkpoint": weights, "context_length": facts["context_length"]}
    if model_cfg is not None:  # the architecture travels with the spec, to Ray workers too
        extra["model_cfg"] = model_cfg
        if preprocess_cfg:
            extra["preprocess_cfg"] = preprocess_cfg
    if "measure_error" in facts:
        extra["size_source"] = f"not measured: {facts['measure_error']}"
    return ModelSpec(
        family=family,
        arch=arch,
        tag=tag,
        params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, PLACES),
        gflops=facts.get("gflops"),
        image_size=facts["image_size"],
        license="unknown",  # the user's own weights: only they know
        source=weights,
        extra=extra,
    )


def architecture(
    arch: str, checkpoint: str, config: str | None
) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """``(weights file, model config or None for open_clip's own arch, preprocess config)``."""
    folder = Path(checkpoint.removeprefix(LOCAL_DIR))
    if checkpoint.startswith(LOCAL_DIR) or folder.is_dir():
        if config is not None:
            raise MllzooError(
                f"{folder} is a local-dir: folder, whose open_clip_config.json is the config; "
                f"give --config only with a weights file"
            )
        if not (folder / "open_clip_config.json").is_file():
            raise MllzooError(f"local-dir: folder {folder} has no open_clip_config.json")
        found = _find_checkpoint_in_dir(folder)
        if found is None:
            raise MllzooError(
                f"local-dir: folder {folder} has no weights (.safetensors, .bin or .pth)"
            )
        model_cfg, preprocess_cfg = read_config(folder / "open_clip_config.json")
        return found, model_cfg, preprocess_cfg
    if config is not None:
        return checkpoint, *read_config(Path(config))
    if open_clip.get_model_config(arch) is None:
        raise MllzooError(
            f"open_clip {open_clip.__version__} has no architecture {arch!r}: give its model config "
            f"with --config FILE (a JSON like open_clip's model_configs/{arch}.json), or a "
            f"local-dir: folder holding open_clip_config.json and the weights"
        )
    return checkpoint, None, None


def read_config(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A model config file: open_clip's ``model_configs/*.json`` layout, or ``open_clip_config.json``'s
    (``model_cfg`` and ``preprocess_cfg``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MllzooError(f"cannot read config {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("model_cfg"), dict):
        data, preprocess = data["model_cfg"], data.get("preprocess_cfg")
    else:
        preprocess = None
    missing = [key for key in MODEL_CFG_KEYS if not isinstance(data, dict) or key not in data]
    if missing:
        raise MllzooError(
            f"config {path} is not an open_clip model config: it lacks {', '.join(missing)}"
        )
    return data, preprocess if isinstance(preprocess, dict) else None


def read_weights(path: str) -> None:
    """Read the file as loading will; a damaged or unsafe one is one line, and nothing is unpickled."""
    try:
        with warnings.catch_warnings():  # torch's remarks on the pickle protocol are not the user's
            warnings.simplefilter("ignore")
            state = load_state_dict(path, device="cpu", weights_only=True)
    except Exception as exc:  # a truncated zip, a damaged safetensors header, an empty file
        if "weights only" in str(exc).lower():  # torch's refusal of a pickled object
            raise MllzooError(
                f"checkpoint {path} holds Python objects other than tensors, which are never "
                f"unpickled (torch.load with weights_only=True refused it); save the model's "
                f"state_dict (safetensors, or torch.save(model.state_dict()))"
            ) from None
        raise MllzooError(
            f"checkpoint {path} cannot be read as weights (truncated or damaged?): {_first_line(exc)}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MllzooError(f"checkpoint {path} holds no state dict of tensors")


def built(
    arch: str, model_cfg: dict[str, Any] | None, preprocess_cfg: dict[str, Any] | None
) -> torch.nn.Module:
    """The architecture with random weights on the CPU; a config open_clip cannot build is one line."""
    try:
        with open_clip_name(arch, model_cfg, preprocess_cfg) as name:
            return open_clip.create_model(name, pretrained=None, device="cpu")
    except Exception as exc:
        raise MllzooError(
            f"open_clip cannot build {arch} from its config: {_first_line(exc)}"
        ) from None


def fit(model: torch.nn.Module, path: str, arch: str) -> None:
    """Load the weights into the model as open_clip's loader does; keys or shapes that do not fit
    the architecture are one line naming the first few."""
    try:
        missing, unexpected = open_clip.load_checkpoint(model, path, strict=False)
    except RuntimeError as exc:  # torch raises on a shape mismatch even when not strict
        detail = next(
            (line.strip() for line in str(exc).splitlines() if "size mismatch" in line),
            _first_line(exc),
        )
        raise MllzooError(f"checkpoint {path} does not fit architecture {arch}: {detail}") from None
    if missing or unexpected:
        parts = [
            f"{len(keys)} {what} key(s) ({', '.join(keys[:SHOWN_KEYS])}"
            f"{', ...' if len(keys) > SHOWN_KEYS else ''})"
            for what, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        ]
        raise MllzooError(f"checkpoint {path} does not fit architecture {arch}: {'; '.join(parts)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
