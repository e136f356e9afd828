"""The model contract: what a plugin registers (a :class:`ModelSpec`) and what loading gives back.

Model ids read ``family/arch.tag`` (``open_clip/ViT-B-32.laion2b_s34b_b79k``), following timm's
``arch.tag`` names with the family in front so two plugins cannot claim the same id. Each of the three
parts holds only ASCII letters, digits, ``_`` and ``-`` (:data:`ID_PART`): no dot, so ``f/tiny.vit.t``
cannot be read two ways, and no ``/`` or space. Every catalogued model's id already fits.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from .errors import MllzooError

ID_PART = r"[A-Za-z0-9_\-]+"
MODEL_ID = re.compile(rf"^(?P<family>{ID_PART})/(?P<arch>{ID_PART})\.(?P<tag>{ID_PART})\Z")
ID_GRAMMAR = "family/arch.tag, each part only letters, digits, '_' and '-'"


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin can load, with the metadata selection and benchmarks report."""

    family: str
    arch: str
    tag: str
    params_m: float | None = None
    gflops: float | None = None
    image_size: int | None = None
    license: str | None = None
    source: str | None = None
    imagenet_top1: float | None = None
    hubs: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if not MODEL_ID.match(self.id):
            raise ValueError(f"malformed model id {self.id!r}: expected {ID_GRAMMAR}")

    @property
    def id(self) -> str:
        return f"{self.family}/{self.arch}.{self.tag}"

    def metadata(self) -> dict[str, Any]:
        """Everything but the id parts, as stored in the registry's ``models.metadata``."""
        data = asdict(self)
        for key in ("family", "arch", "tag"):
            data.pop(key)
        data["hubs"] = list(self.hubs)
        return data


def parse_model_id(model_id: str) -> tuple[str, str, str]:
    """Split ``family/arch.tag`` (one dot: no part may hold one)."""
    match = MODEL_ID.match(model_id)
    if not match:
        raise MllzooError(f"malformed model id {model_id!r}: expected {ID_GRAMMAR}")
    return match["family"], match["arch"], match["tag"]


@dataclass
class LoadedModel:
    """A model ready to encode, as returned by the ``mllzoo_load_model`` hook.

    ``preprocess`` turns one RGB PIL image into a ``[3, H, W]`` tensor. ``preprocess_key``
    names that transform (size, crop, normalisation) so that images are decoded and resized once
    per distinct transform, not once per model.
    """

    spec: ModelSpec
    module: Any
    preprocess: Callable[[Any], Any]
    preprocess_key: str
    tokenizer: Any
    context_length: int
    device: str
    dtype: str
    text_key: str | None = None


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks cuda, then mps, then cpu. Imports torch, so only call it when loading."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_dtype(device: str) -> str:
    """Half precision where it is fast and safe (bf16 on CUDA, fp16 on MPS), fp32 on the CPU."""
    return {"cuda": "bfloat16", "mps": "float16"}.get(device.split(":")[0], "float32")


def load_model(spec: ModelSpec, device: str = "auto", dtype: str | None = None) -> LoadedModel:
    """Ask the plugins to load ``spec``; the family's own plugin answers."""
    from .plugins import pm

    device = resolve_device(device)
    loaded = pm.hook.mllzoo_load_model(spec=spec, device=device, dtype=dtype or default_dtype(device))
    if loaded is None:
        raise MllzooError(f"no installed plugin can load {spec.id} (family {spec.family!r})")
    return loaded


def model_available(spec: ModelSpec) -> bool:
    """Whether ``spec`` loads here without a download: its plugin's ``mllzoo_model_available`` answer,
    else whether ``source`` is an existing local path (a plugin that does not say is not trusted to be
    offline). No network, no torch unless the plugin needs it to look at its cache."""
    from pathlib import Path

    from .plugins import pm

    answer = pm.hook.mllzoo_model_available(spec=spec)
    if answer is not None:
        return bool(answer)
    return bool(spec.source) and "://" not in spec.source and Path(spec.source).expanduser().exists()


def encode_images(model: LoadedModel, images: Any) -> Any:
    """L2-normalised image features ``[n, dim]`` (numpy float32) through the encode hook."""
    from .plugins import pm

    return _answered(pm.hook.mllzoo_encode_images(model=model, images=images), model, "images")


def encode_texts(model: LoadedModel, texts: list[str]) -> Any:
    """L2-normalised text features ``[n, dim]`` (numpy float32) through the encode hook."""
    from .plugins import pm

    return _answered(pm.hook.mllzoo_encode_texts(model=model, texts=list(texts)), model, "texts")


def _answered(features: Any, model: LoadedModel, what: str) -> Any:
    if features is None:
        raise MllzooError(f"no installed plugin encodes {what} for {model.spec.id}")
    return features
