"""Units as ns-2 parses them. Bandwidth -> bit/s, delay -> seconds."""

from __future__ import annotations

import math
import re

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_BW_UNITS = {
    "": 1.0, "b": 1.0, "bps": 1.0,
    "k": 1e3, "kb": 1e3, "kbps": 1e3,
    "m": 1e6, "mb": 1e6, "mbps": 1e6,
    "g": 1e9, "gb": 1e9, "gbps": 1e9,
}
_DELAY_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_bandwidth(text: str) -> float:
    """'100Mb' -> 1e8. A trailing capital B means bytes (x8), as ns-2 reads it."""
    m = re.fullmatch(_NUMBER + r"\s*([A-Za-z]*)", str(text).strip())
    if not m:
        raise ValueError(f"bandwidth {text!r} is not a number with a unit (b, kb, Mb, Gb, or B for bytes)")
    value, unit = float(m.group(1)), m.group(2)
    factor = 1.0
    if unit.endswith("B") and unit.lower() not in ("mb", "kb", "gb") or unit in ("MB", "KB", "GB", "B"):
        factor, unit = 8.0, unit[:-1]
    if unit.lower() not in _BW_UNITS:
        raise ValueError(f"bandwidth {text!r} has unknown unit {unit!r}; use b, kb, Mb, Gb (or B for bytes)")
    result = value * _BW_UNITS[unit.lower()] * factor
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"bandwidth {text!r} must be a positive finite number")
    return result


def parse_delay(text: str) -> float:
    """'10ms' -> 0.01. A bare number is seconds, as ns-2 reads it."""
    m = re.fullmatch(_NUMBER + r"\s*([A-Za-z]*)", str(text).strip())
    if not m:
        raise ValueError(f"delay {text!r} is not a non-negative number with a unit (s, ms, us, ns)")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit not in _DELAY_UNITS:
        raise ValueError(f"delay {text!r} has unknown unit {unit!r}; use s, ms, us or ns")
    result = value * _DELAY_UNITS[unit]
    if not math.isfinite(result) or result > 3600:
        raise ValueError(f"delay {text!r} is out of range (0 to 3600 s)")
    return result


def parse_loss(text: str) -> float:
    """Loss is a probability 0..1."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError(f"loss {text!r} is not a number; use a probability from 0 to 1") from None
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"loss {text!r} is outside 0..1")
    return value
