"""mllzoo: Model Label Learning over a zoo of vision-language models.

``import mllzoo`` stays light (no torch): the Python API below is imported on first use.
"""

from .errors import MllzooError, ModelLoadError
from .hookspecs import hookimpl
from .vlm import LoadedModel, ModelSpec

__all__ = ["hookimpl", "ModelSpec", "LoadedModel", "MllzooError", "ModelLoadError"]


def __getattr__(name: str):
    """``mllzoo.recommend`` and ``mllzoo.Registry`` load their modules (numpy, SQLite) on first use."""
    if name == "recommend":
        from .recommend import recommend

        return recommend
    if name == "Registry":
        from .registry import Registry

        return Registry
    raise AttributeError(f"module 'mllzoo' has no attribute {name!r}")
