"""mllzoo: Model Label Learning over a zoo of vision-language models.

This module is the plugin API: every name a family plugin needs is importable from ``mllzoo`` (the
conformance kit from ``mllzoo.testing``). docs/plugins.md lists exactly these names and what stays
stable; CHANGELOG.md records every change to them. Everything else in ``mllzoo.*`` is internal.

``import mllzoo`` stays light (no torch, no numpy): the names that need numpy or SQLite load their
modules on first use.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from .catalog import CatalogEntry, discover_models, read_catalog, write_catalog
from .errors import MllzooError, ModelLoadError
from .family import family_available, family_hooks
from .hookspecs import hookimpl
from .hub import hub_unreachable_reason, offline_unless_reachable, reachable, weights_unavailable
from .vlm import ID_PART, LoadedModel, ModelSpec, encode_images, encode_texts, load_model

if TYPE_CHECKING:
    from .minilm import MODEL_NAME as MINILM_MODEL_NAME
    from .minilm import embed as minilm_embed
    from .recommend import recommend
    from .registry import Registry

__all__ = [
    # writing a family plugin
    "hookimpl", "ModelSpec", "LoadedModel", "ID_PART", "family_hooks", "family_available",
    "read_catalog", "write_catalog",
    # errors and the model hub
    "MllzooError", "ModelLoadError", "hub_unreachable_reason", "offline_unless_reachable", "reachable",
    "weights_unavailable",
    # using models through the hooks, as the core does
    "load_model", "encode_images", "encode_texts", "discover_models", "CatalogEntry",
    # the default text embedder (numpy, no torch)
    "MINILM_MODEL_NAME", "minilm_embed",
    # the Python API
    "recommend", "Registry",
]

_LAZY = {  # name -> (module, attribute): these modules import numpy or SQLite
    "recommend": (".recommend", "recommend"),
    "Registry": (".registry", "Registry"),
    "minilm_embed": (".minilm", "embed"),
    "MINILM_MODEL_NAME": (".minilm", "MODEL_NAME"),
}


class _Package(types.ModuleType):
    """``mllzoo.recommend`` is the function even once the submodule of that name is imported (importing
    a submodule sets it as an attribute of its package, which would hide the function)."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name in _LAZY and isinstance(value, types.ModuleType):
            return getattr(value, _LAZY[name][1])
        return value


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """The names in ``_LAZY`` load their modules on first use."""
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module, __name__), attribute)
    raise AttributeError(f"module 'mllzoo' has no attribute {name!r}")
