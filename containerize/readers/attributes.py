"""The ``containers:*`` attributes the compiler knows, and near misses of them.

A misspelled attribute (``container:node_type``, ``containers::partition``, ``containers:Node_Type``)
would be kept and silently mean nothing; the readers warn with the name that was probably meant.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

# DETER's containers attributes (node), and those this project's TopDL writer uses.
KNOWN = (
    "containers:node_type", "containers:partition", "containers:PartitionPass", "containers:openvz_template",
    "containers:openvz_diskspace", "containers:qemu_url", "containers:qemu_arch", "containers:maverick_url",
    "containers:ghost", "containers:pnode", "containers:cpus",
    # written by containerize itself (writers/topdl.py, writers/experiment.py)
    "containers:kind", "containers:netmask", "containers:network", "containers:mac", "containers:switch",
    "containers:port", "containers:rtproto", "containers:routes", "containers:image",
    "containers:override_rate", "containers:override_latency", "containers:override_loss",
    "containers:simplex_rate", "containers:simplex_latency", "containers:simplex_loss",
)
_KNOWN = frozenset(KNOWN)
_PREFIX = re.compile(r"^\s*containers?\s*:+\s*", re.I)


def _suffix(key: str) -> tuple[str, bool]:
    """(what follows a containers: prefix, lower-cased with '-' as '_'; whether there was such a prefix)."""
    match = _PREFIX.match(key)
    rest = key[match.end():] if match else key
    return rest.strip().lower().replace("-", "_").replace(" ", "_"), bool(match)


_SUFFIXES = {_suffix(k)[0]: k for k in KNOWN}


@lru_cache(maxsize=1024)
def near_miss(key: str) -> str | None:
    """The known attribute ``key`` is a near miss of, or None (a known name, or nothing like one)."""
    if key in _KNOWN:
        return None
    suffix, prefixed = _suffix(key)
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if not prefixed:
        return None  # other tools' attributes (startup, type, osid, ...) are none of ours
    close = difflib.get_close_matches(suffix, list(_SUFFIXES), n=1, cutoff=0.75)
    return _SUFFIXES[close[0]] if close else None


def warn_near_miss(warnings: list[str], seen: set[str], key: str, where: str, what: str) -> None:
    """One warning per misspelled key and file: ``WHERE: WHAT: attribute KEY ... did you mean ...?``."""
    if key in seen or key in _KNOWN:
        return
    intended = near_miss(key)
    if intended is None:
        return
    seen.add(key)
    warnings.append(f"{where}: {what}: attribute {key!r} is not one containerize knows and is ignored; did you "
                    f"mean {intended!r}?")
