"""Arrays as raw little-endian blobs with their dtype, shape and checksum recorded beside them. Never pickle.

The checksum (CRC-32 over dtype, shape and bytes) is written by :func:`pack` and verified by
:func:`array` on every read, with the byte length checked against dtype x shape, so a truncated or
flipped blob is a :class:`DamagedBlob`, never a wrong array.
"""

from __future__ import annotations

import json
import zlib

import numpy as np


class DamagedBlob(ValueError):
    """A stored array that does not fit its dtype and shape, or whose bytes fail the checksum."""


def checksum(dtype: str, shape: str, data: bytes) -> str:
    """The ``checksum`` column of a blob: CRC-32 (fast enough to verify every read) with its name."""
    return f"crc32:{zlib.crc32(data, zlib.crc32(f'{dtype} {shape}'.encode())):08x}"


def little_endian(array: np.ndarray) -> np.ndarray:
    """``array`` contiguous and little-endian, as it is stored (no copy when it already is)."""
    array = np.ascontiguousarray(array)
    return array.astype(array.dtype.newbyteorder("<"), copy=False)


def pack(array: np.ndarray) -> dict:
    """The columns ``dtype``, ``shape``, ``data`` and ``checksum`` that store ``array``."""
    array = np.ascontiguousarray(array)
    little = little_endian(array)
    columns = {
        "dtype": little.dtype.str,
        "shape": json.dumps(list(array.shape)),
        "data": little.tobytes(),
    }
    return {**columns, "checksum": checksum(**columns)}


def unpack(row: dict) -> np.ndarray:
    """Inverse of :func:`pack`, from a row holding ``dtype``, ``shape``, ``data`` and ``checksum``."""
    return array(row["dtype"], row["shape"], row["data"], row["checksum"])


def array(dtype: str, shape: str, data: bytes, stored_checksum: str | None) -> np.ndarray:
    """Inverse of :func:`pack`, from the four column values (for plain-tuple reads); raises :class:`DamagedBlob`."""
    decoded = fitting(dtype, shape, data)
    if stored_checksum != checksum(dtype, shape, data):
        raise DamagedBlob("no checksum" if stored_checksum is None else "checksum mismatch")
    return decoded


def fitting(dtype: str, shape: str, data: bytes) -> np.ndarray:
    """The array the columns describe, when its bytes fit dtype x shape exactly (no checksum check)."""
    try:
        kind, dims = np.dtype(dtype), tuple(json.loads(shape))
    except (TypeError, ValueError) as exc:
        raise DamagedBlob(f"unreadable dtype {dtype!r} or shape {shape!r}") from exc
    if not isinstance(data, bytes) or not all(isinstance(d, int) and d >= 0 for d in dims):
        raise DamagedBlob(f"no data or a bad shape {shape!r}")
    needed = kind.itemsize * int(np.prod(dims, dtype=np.int64))
    if len(data) != needed:
        raise DamagedBlob(f"{len(data)} bytes where {kind} x {list(dims)} needs {needed}")
    return np.frombuffer(data, dtype=kind).reshape(dims)


def lookup(
    execute, select: str, params: list, keys: list[str], chunk: int = 500
) -> dict[str, np.ndarray]:
    """Arrays by key from ``select`` (a query of ``key, dtype, shape, data, checksum`` rows ending in
    ``key in``) run by ``execute(sql, params)`` over the keys in chunks (SQLite caps a statement's
    parameters); a damaged row is left out, so the caller computes it again and overwrites it."""
    found: dict[str, np.ndarray] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), chunk):
        part = unique[start : start + chunk]
        for key, *columns in (
            execute(f"{select} ({','.join('?' * len(part))})", [*params, *part]) or []
        ):
            try:
                found[key] = array(*columns)
            except (
                TypeError,
                ValueError,
            ):  # DamagedBlob is a ValueError; a column of the wrong type too
                continue
    return found


def migrated_checksum(dtype: str, shape: str, data: bytes) -> str | None:
    """The checksum of a blob stored before checksums existed; ``None`` (damaged) if it does not fit."""
    try:
        fitting(dtype, shape, data)
    except DamagedBlob:
        return None
    return checksum(dtype, shape, data)
