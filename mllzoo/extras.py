"""Optional dependencies: import one, or say in one line which extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from mllzoo.errors import MllzooError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """``import module``, or a :class:`MllzooError` naming ``pip install 'mllzoo[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MllzooError(
            f"{purpose} needs the {module.split('.')[0]} package: pip install 'mllzoo[{extra}]'"
        ) from None
