"""Deprecated: ``mllzoo.family`` moved. Import ``family_hooks`` and ``family_available`` from ``mllzoo``.

The 0.1 plugin template imported this module; it keeps working, with a DeprecationWarning, until 0.3.
"""

import warnings

from mllzoo.models.family import family_available, family_hooks

__all__ = ["family_available", "family_hooks"]

warnings.warn(
    "mllzoo.family is deprecated and goes away in mllzoo 0.3: import family_hooks and family_available from mllzoo",
    DeprecationWarning,
    stacklevel=2,
)
