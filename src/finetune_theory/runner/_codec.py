"""The store's JSON codec: records in, the same bits out; and the checksum of a stored row.

Python writes a float with its shortest round-tripping ``repr`` and parses it back to the same
double, so the records that come back are bit-identical to the ones that went in (infinities
and ``-0.0`` included; a NaN other than the standard one, such as the negative NaN of
``inf - inf``, is written as its raw bits). NumPy scalars are converted to the Python scalar of
the same value on the way in.

>>> decode_records(encode_records([{"x": 0.1, "n": None}]))
[{'x': 0.1, 'n': None}]
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["encode_records", "decode_records", "row_checksum"]


#: key of the JSON object that carries a NaN other than the standard one, as 16 hex digits
_FLOAT_BITS = "$f64"
_STANDARD_NAN = struct.pack(">d", math.nan)


def _float(value: float) -> float | dict[str, str]:
    """A float JSON keeps exactly; a NaN with a sign or payload goes as its raw bits."""
    if math.isnan(value):
        bits = struct.pack(">d", value)
        if bits != _STANDARD_NAN:  # e.g. inf - inf gives a negative NaN on x86
            return {_FLOAT_BITS: bits.hex()}
    return value


def _decode_object(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _FLOAT_BITS in obj:
        return struct.unpack(">d", bytes.fromhex(obj[_FLOAT_BITS]))[0]
    return obj


def _to_json_value(value: Any, field: str) -> Any:
    """A JSON-native value equal to ``value``; ``TypeError`` for what JSON cannot keep."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):  # np.float64 is a float subclass: kept as it is
        return _float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return _float(float(value))
    if isinstance(value, list | tuple | np.ndarray):
        return [_to_json_value(v, field) for v in np.asarray(value, dtype=object).tolist()]
    raise TypeError(
        f"record field {field!r} holds a {type(value).__name__}; records may hold only numbers, "
        "booleans, strings, None or lists of them"
    )


def encode_records(records: Sequence[dict[str, Any]]) -> str:
    """JSON text of a list of flat records (string keys; numbers, bools, strings, None).

    Raises
    ------
    TypeError
        When a record is not a dict with string keys or holds a value JSON cannot keep exactly.

    Examples
    --------
    >>> encode_records([{"a": float("-inf"), "b": 1}])
    '[{"a":-Infinity,"b":1}]'
    """
    clean: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise TypeError(f"record {i} is a {type(record).__name__}, not a dict")
        row: dict[str, Any] = {}
        for key, value in record.items():
            if not isinstance(key, str):
                raise TypeError(f"record {i} has a non-string key {key!r}")
            if key == _FLOAT_BITS:
                raise TypeError(f"record {i} uses the reserved key {_FLOAT_BITS!r}")
            row[key] = _to_json_value(value, key)
        clean.append(row)
    return json.dumps(clean, allow_nan=True, separators=(",", ":"))


def decode_records(text: str) -> list[dict[str, Any]]:
    """The records of :func:`encode_records`, bit for bit.

    Examples
    --------
    >>> decode_records('[{"a":-0.0}]')
    [{'a': -0.0}]
    """
    return json.loads(text, object_hook=_decode_object)


def row_checksum(
    experiment: str,
    config_hash: str,
    unit_index: int,
    seed: int,
    unit_hash: str,
    unit_seed: int,
    version: str,
    fingerprint: str,
    records: bytes,
) -> str:
    """SHA-256 (hex) of every field of a stored row that the sweep relies on.

    >>> a = row_checksum("toy", "h", 0, 1, "u", 2, "1.0", "f", b"[]")
    >>> a == row_checksum("toy", "h", 0, 1, "u", 2, "1.0", "f", b"[]")
    True
    >>> a == row_checksum("toy", "h", 0, 1, "u", 2, "1.0", "f", b"[ ]")
    False
    """
    key = json.dumps(
        [experiment, config_hash, int(unit_index), int(seed), unit_hash, int(unit_seed)]
        + [version, fingerprint],
        separators=(",", ":"),
    )
    return hashlib.sha256(key.encode("utf-8") + b"\0" + records).hexdigest()
