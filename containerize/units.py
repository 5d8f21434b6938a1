"""Units as ns-2 parses them. Bandwidth -> bit/s, delay -> seconds."""

from __future__ import annotations

import math
import re

from .errors import shown

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_BW_UNITS = {
    "": 1.0, "b": 1.0, "bps": 1.0,
    "k": 1e3, "kb": 1e3, "kbps": 1e3,
    "m": 1e6, "mb": 1e6, "mbps": 1e6,
    "g": 1e9, "gb": 1e9, "gbps": 1e9,
}
_DELAY_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
MAX_BANDWIDTH = 1e12  # bit/s: 1000Gb, far beyond any emulated link (wirefilter and tc cannot go near it)
MAX_DELAY = 3600.0  # seconds
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([KMGT]?)", re.I)
MAX_DISK = 16 << 40  # bytes: the largest file ext4 holds (openvz disk images)


def parse_bandwidth(text: str) -> float:
    """'100Mb' -> 1e8. A trailing capital B means bytes (x8), as ns-2 reads it."""
    m = re.fullmatch(_NUMBER + r"\s*([A-Za-z]*)", str(text).strip(), re.ASCII)
    if not m:
        raise ValueError(f"bandwidth {shown(text)} is not a number with a unit (b, kb, Mb, Gb, or B for bytes)")
    value, unit = float(m.group(1)), m.group(2)
    factor = 1.0
    if unit.endswith("B") and unit.lower() not in ("mb", "kb", "gb") or unit in ("MB", "KB", "GB", "B"):
        factor, unit = 8.0, unit[:-1]
    if unit.lower() not in _BW_UNITS:
        raise ValueError(f"bandwidth {shown(text)} has unknown unit {shown(unit)}; use b, kb, Mb, Gb "
                         "(or B for bytes)")
    result = value * _BW_UNITS[unit.lower()] * factor
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"bandwidth {shown(text)} must be a positive finite number")
    if result > MAX_BANDWIDTH:
        raise ValueError(f"bandwidth {shown(text)} is out of range (at most {MAX_BANDWIDTH / 1e9:g}Gb)")
    return result


def parse_delay(text: str) -> float:
    """'10ms' -> 0.01. A bare number is seconds, as ns-2 reads it."""
    m = re.fullmatch(_NUMBER + r"\s*([A-Za-z]*)", str(text).strip(), re.ASCII)
    if not m:
        raise ValueError(f"delay {shown(text)} is not a non-negative number with a unit (s, ms, us, ns)")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit not in _DELAY_UNITS:
        raise ValueError(f"delay {shown(text)} has unknown unit {shown(unit)}; use s, ms, us or ns")
    result = value * _DELAY_UNITS[unit]
    if not math.isfinite(result) or result > MAX_DELAY:
        raise ValueError(f"delay {shown(text)} is out of range (0 to {MAX_DELAY:g} s)")
    return result


def parse_loss(text: str) -> float:
    """Loss is a probability 0..1."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError(f"loss {shown(text)} is not a number; use a probability from 0 to 1") from None
    if math.isnan(value):
        raise ValueError(f"loss {shown(text)} is not a number; use a probability from 0 to 1")
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"loss {shown(text)} is outside 0..1")
    return value


def parse_disk_size(text: str) -> int:
    """'2G' -> bytes, as vzctl --diskspace reads it: K, M, G, T suffixes; a bare number counts 1K blocks."""
    m = _SIZE.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"{shown(text)} is not a disk size like 2G or 500M (K, M, G or T; a bare number counts "
                         "1K blocks)")
    size = int(float(m.group(1)) * (1 << (10 * "KMGT".index(m.group(2).upper() or "K") + 10)))
    if size <= 0:
        raise ValueError(f"{shown(text)} is not a disk size: it must be more than 0")
    if size > MAX_DISK:
        raise ValueError(f"{shown(text)} is too large a disk size (at most 16T)")
    return size


def format_bandwidth(bandwidth: float | None, none: str = "") -> str:
    """Bit/s as the topology writes it: 100Mb, 1.5Gb, 64kb; NONE for no limit."""
    if not bandwidth:
        return none
    for unit, factor in (("Gb", 1e9), ("Mb", 1e6), ("kb", 1e3)):
        if bandwidth >= factor:
            return f"{bandwidth / factor:g}{unit}"
    return f"{bandwidth:g}b"
