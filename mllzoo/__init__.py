"""mllzoo: Model Label Learning over a zoo of vision-language models.

``import mllzoo`` stays light (no torch): the Python API below is imported on first use.
"""

from .errors import MllzooError, ModelLoadError
from .hookspecs import hookimpl
from .vlm import LoadedModel, ModelSpec

__all__ = ["hookimpl", "ModelSpec", "LoadedModel", "MllzooError", "ModelLoadError"]
