"""The model contract: what a plugin registers (a :class:`ModelSpec`) and what loading gives back.

Model ids read ``family/arch.tag`` (``open_clip/ViT-B-32.laion2b_s34b_b79k``), following timm's
``arch.tag`` names with the family in front so two plugins cannot claim the same id. Each of the three
parts holds only ASCII letters, digits, ``_`` and ``-`` (:data:`ID_PART`): no dot, so ``f/tiny.vit.t``
cannot be read two ways, and no ``/`` or space. Every catalogued model's id already fits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mllzoo.errors import MllzooError, PluginError, warn

if TYPE_CHECKING:
    import numpy as np

HOOK_BATCH = 256  # the most inputs one encode hook call gets, so that plugins need not batch
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
        problem = metadata_problem({key: getattr(self, key) for key in _CHECKED})
        if problem:
            raise ValueError(f"model {self.id}: {problem}")

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


def portable_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata as the registry keeps it and labels carry it: an absolute path of this machine
    (a user's checkpoint named by ``source`` or an ``extra`` entry such as ``checkpoint``) becomes
    its file name, so no exported label or colleague's ``models show`` names this machine's files."""
    extra = metadata.get("extra")
    return {
        **metadata,
        "source": _file_name(metadata.get("source")),
        **(
            {"extra": {key: _file_name(value) for key, value in extra.items()}}
            if isinstance(extra, dict)
            else {}
        ),
    }


def _file_name(value: Any) -> Any:
    from pathlib import Path, PureWindowsPath

    if isinstance(value, str) and (
        Path(value).is_absolute() or PureWindowsPath(value).is_absolute()
    ):
        return PureWindowsPath(value).name or Path(value).name
    return value


METADATA_KEYS = (
    "params_m",
    "gflops",
    "image_size",
    "license",
    "source",
    "imagenet_top1",
    "hubs",
    "extra",
)
_CHECKED = ("params_m", "gflops", "image_size", "imagenet_top1")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metadata_problem(metadata: dict[str, Any]) -> str | None:
    """What is wrong with a model's metadata (:meth:`ModelSpec.metadata`, as stored and as label files
    carry it), or ``None``: only its own keys (no ``id`` or other column to spoof), costs that are
    non-negative finite numbers, a top-1 accuracy in [0, 1], a positive image size, text where text goes."""
    unknown = sorted(str(key) for key in metadata if key not in METADATA_KEYS)
    if unknown:
        return f"unknown metadata key(s) {', '.join(map(repr, unknown))}"
    for key in ("params_m", "gflops"):
        value = metadata.get(key)
        if value is not None and not (_number(value) and value >= 0):
            return f"metadata {key} must be a non-negative finite number, not {value!r}"
    top1, size = metadata.get("imagenet_top1"), metadata.get("image_size")
    if top1 is not None and not (_number(top1) and 0 <= top1 <= 1):
        return f"metadata imagenet_top1 must be a number from 0 to 1, not {top1!r}"
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
        return f"metadata image_size must be a positive integer, not {size!r}"
    for key in ("license", "source"):
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            return f"metadata {key} must be text, not {metadata[key]!r}"
    hubs = metadata.get("hubs", [])
    if not (isinstance(hubs, (list, tuple)) and all(isinstance(hub, str) for hub in hubs)):
        return f"metadata hubs must be a list of names, not {hubs!r}"
    if not isinstance(metadata.get("extra", {}), dict):
        return "metadata extra must be an object"
    return None


def checked_metadata(metadata: Any) -> tuple[dict[str, Any], list[str]]:
    """``metadata`` as read from a registry, with each entry :func:`metadata_problem` refuses left out,
    and the problems found: rows stored before the checks existed (or edited since) are checked here,
    where they are read, so a string or negative cost never reaches a page, a sum or a budget."""
    if not isinstance(metadata, dict):
        return {}, [f"metadata must be an object, not {type(metadata).__name__}"]
    clean, problems = {}, []
    for key, value in metadata.items():
        problem = metadata_problem({key: value})
        if problem:
            problems.append(problem)
        else:
            clean[key] = value
    return clean, problems


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
    per distinct transform, not once per model. ``text_key`` (optional) names a text tower several
    models share, so captions are encoded once for all of them.
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
    plugin: str | None = (
        None  # the plugin that loaded it, asked first to encode (set by load_model)
    )
    dim: int | None = None  # the feature width its first encoding showed (set by the core)


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


def load_model(
    spec: ModelSpec, device: str = "auto", dtype: str | None = None, plugin: str | None = None
) -> LoadedModel:
    """Ask the plugins to load ``spec``; the family's own plugin answers (``plugin``, the one that
    registered the id, is asked first). Anything a plugin raises is one :class:`PluginError` line."""
    from mllzoo.plugins import call_first

    device = resolve_device(device)
    answered, loaded = call_first(
        "mllzoo_load_model",
        f"model {spec.id} failed to load",
        prefer=plugin,
        spec=spec,
        device=device,
        dtype=dtype or default_dtype(device),
    )
    if loaded is None:
        raise MllzooError(f"no installed plugin can load {spec.id} (family {spec.family!r})")
    if not isinstance(loaded, LoadedModel):
        raise _fault(answered, spec.id, f"load returned {_type_name(loaded)}, not a LoadedModel")
    loaded.plugin = answered
    return loaded


def model_available(spec: ModelSpec) -> bool:
    """Whether ``spec`` loads here without a download: its plugin's ``mllzoo_model_available`` answer,
    else whether ``source`` is an existing local path (a plugin that does not say is not trusted to be
    offline). No network, no torch unless the plugin needs it to look at its cache."""
    from pathlib import Path

    from mllzoo.plugins import call_first, mark_failed

    try:
        plugin, answer = call_first(
            "mllzoo_model_available", f"could not tell whether {spec.id} is available", spec=spec
        )
    except (
        PluginError
    ) as exc:  # one plugin failing must not stop a register of every plugin's models
        warn(f"{exc}; counted as not here")
        return False
    if plugin is not None and answer is not None and type(answer).__name__ not in ("bool", "bool_"):
        problem = f"answered {answer!r} for whether {spec.id} is available, not True or False"  # "no" is not here
        mark_failed(plugin, problem)
        warn(f"plugin {plugin} {problem}; counted as not here")
        return False
    if answer is not None:
        return bool(answer)
    return bool(
        spec.source and "://" not in spec.source and Path(spec.source).expanduser().exists()
    )


def encode_images(model: LoadedModel, images: Any) -> np.ndarray:
    """Unit-length image features ``[n, dim]`` (numpy float32) of preprocessed ``images``."""
    return _encode(model, "mllzoo_encode_images", "images", images, "image")


def encode_texts(model: LoadedModel, texts: list[str]) -> np.ndarray:
    """Unit-length text features ``[n, dim]`` (numpy float32), comparable with the image features."""
    return _encode(model, "mllzoo_encode_texts", "texts", list(texts), "text")


class CaptionFeatures:
    """Text embeddings of fixed captions per text tower: models sharing a ``text_key`` encode them once."""

    def __init__(self, captions: list[str]):
        self.captions = captions
        self.by_key: dict[str, np.ndarray] = {}
        self.encodings = 0

    def of(self, model: LoadedModel) -> np.ndarray:
        if model.text_key in self.by_key:
            return self.by_key[model.text_key]
        text = encode_texts(model, self.captions)  # the core batches the hook calls
        self.encodings += 1
        if model.text_key:
            self.by_key[model.text_key] = text
        return text


def _encode(model: LoadedModel, hook: str, argument: str, inputs: Any, what: str) -> np.ndarray:
    """The encode hook on at most :data:`HOOK_BATCH` inputs at a time, every answer checked by
    :func:`checked_features`: plugins need neither batch nor normalise."""
    import numpy as np

    from mllzoo.plugins import call_first, mark_failed

    batches = []
    for start in range(0, len(inputs), HOOK_BATCH):
        batch = inputs[start : start + HOOK_BATCH]
        plugin, features = call_first(
            hook,
            f"model {model.spec.id} failed to encode {what}s",
            prefer=model.plugin,
            model=model,
            **{argument: batch},
        )
        if plugin is None:
            raise MllzooError(f"no installed plugin encodes {argument} for {model.spec.id}")
        try:
            batches.append(checked_features(features, len(batch), what, model.dim))
        except ValueError as exc:
            mark_failed(plugin, f"model {model.spec.id} {exc}")
            raise _fault(plugin, model.spec.id, str(exc)) from None
        model.dim = batches[-1].shape[1]
    return np.concatenate(batches) if batches else np.zeros((0, model.dim or 0), np.float32)


def checked_features(features: Any, rows: int, what: str, dim: int | None = None) -> np.ndarray:
    """The boundary check of an encode hook's answer: a numpy float array ``[rows, dim]`` (the same
    ``dim`` as before when one is given), finite and nonzero, returned L2-normalised in float32.
    Raises ``ValueError`` saying what was returned wrong."""
    import numpy as np

    if not isinstance(features, np.ndarray):
        raise ValueError(f"returned {_type_name(features)} {what} features, not a numpy array")
    if not np.issubdtype(features.dtype, np.floating):
        raise ValueError(f"returned {features.dtype} {what} features, not floats")
    if features.ndim != 2 or features.shape[0] != rows or features.shape[1] == 0:
        raise ValueError(
            f"returned {what} features of shape {list(features.shape)} for {rows} inputs, "
            f"not [{rows}, dim]"
        )
    if dim is not None and features.shape[1] != dim:
        raise ValueError(f"returned {what} features of dim {features.shape[1]}, earlier {dim}")
    if not np.isfinite(features).all():
        raise ValueError(
            f"returned {'NaN' if np.isnan(features).any() else 'infinite'} {what} features"
        )
    wide = features.astype(np.float64)  # no overflow in the norm of large float32 values
    norms = np.linalg.norm(wide, axis=1, keepdims=True)
    if not (norms > 0).all():
        raise ValueError(f"returned all-zero {what} features")
    return (wide / norms).astype(np.float32)


def _fault(plugin: str | None, model_id: str, what: str) -> PluginError:
    return PluginError(f"plugin {plugin}: model {model_id} {what}")


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__name__
        if kind.__module__ == "builtins"
        else f"{kind.__module__.split('.')[0]}.{kind.__name__}"
    )
