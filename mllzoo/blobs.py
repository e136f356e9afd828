"""Arrays as raw little-endian blobs with their dtype and shape recorded beside them. Never pickle."""

from __future__ import annotations

import json

import numpy as np


def pack(array: np.ndarray) -> dict:
    """The columns ``dtype``, ``shape`` and ``data`` that store ``array``."""
    array = np.ascontiguousarray(array)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": little.dtype.str, "shape": json.dumps(list(array.shape)), "data": little.tobytes()}


def unpack(row: dict) -> np.ndarray:
    """Inverse of :func:`pack`, from a row holding ``dtype``, ``shape`` and ``data``."""
    return array(row["dtype"], row["shape"], row["data"])


def array(dtype: str, shape: str, data: bytes) -> np.ndarray:
    """Inverse of :func:`pack`, from the three column values (for plain-tuple reads)."""
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(tuple(json.loads(shape)))
