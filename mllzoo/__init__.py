"""mllzoo: Model Label Learning over a zoo of vision-language models.

This module is the plugin API: every name a family plugin needs is importable from ``mllzoo`` (the
conformance kit from ``mllzoo.testing``). docs/plugins.md lists exactly these names and what stays
stable; CHANGELOG.md records every change to them. Everything else in ``mllzoo.*`` is internal.

``import mllzoo`` stays light (no torch, no numpy): the names that need numpy or SQLite load their
modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mllzoo.errors import MllzooError, ModelLoadError
from mllzoo.hookspecs import hookimpl
from mllzoo.models.catalog import CatalogEntry, discover_models, read_catalog, write_catalog
from mllzoo.models.family import family_available, family_hooks
from mllzoo.models.vlm import (
    HOOK_BATCH,
    ID_PART,
    LoadedModel,
    ModelSpec,
    encode_images,
    encode_texts,
    load_model,
)
from mllzoo.models.weights import (
    hub_unreachable_reason,
    offline_unless_reachable,
    reachable,
    weights_unavailable,
)

if TYPE_CHECKING:
    from mllzoo.selection.recommend import recommend
    from mllzoo.store.registry import Registry
    from mllzoo.text.embedders import Embedder
    from mllzoo.text.minilm_numpy import MODEL_NAME as MINILM_MODEL_NAME
    from mllzoo.text.minilm_numpy import embed as minilm_embed

__all__ = [
    # writing a family plugin
    "hookimpl",
    "ModelSpec",
    "LoadedModel",
    "ID_PART",
    "family_hooks",
    "family_available",
    "read_catalog",
    "write_catalog",
    # errors and the model hub
    "MllzooError",
    "ModelLoadError",
    "hub_unreachable_reason",
    "offline_unless_reachable",
    "reachable",
    "weights_unavailable",
    # using models through the hooks, as the core does
    "load_model",
    "encode_images",
    "encode_texts",
    "HOOK_BATCH",
    "discover_models",
    "CatalogEntry",
    # the default text embedder (numpy, no torch)
    "Embedder",
    "MINILM_MODEL_NAME",
    "minilm_embed",
    # the Python API
    "recommend",
    "Registry",
]

_LAZY = {  # name -> (module, attribute): these modules import numpy or SQLite
    "recommend": (".selection.recommend", "recommend"),
    "Registry": (".store.registry", "Registry"),
    "Embedder": (".text.embedders", "Embedder"),
    "minilm_embed": (".text.minilm_numpy", "embed"),
    "MINILM_MODEL_NAME": (".text.minilm_numpy", "MODEL_NAME"),
}


def __getattr__(name: str) -> Any:
    """The names in ``_LAZY`` load their modules on first use; ``__version__`` is the installed one."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("mllzoo")
        except PackageNotFoundError:  # run from a source tree that was never installed
            return "unknown"
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module, __name__), attribute)
    raise AttributeError(f"module 'mllzoo' has no attribute {name!r}")
