"""What a name planned by the compiler may look like on a pnode, checked once for every module.

Names reach file paths, socket paths, namespace names and argv lists: a module refuses anything
else before it acts, so no plan entry can walk out of its directory or into a shell.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import re

# node, switch, wirefilter and uplink ids (the compiler's node names, already ns2-safe)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
# network namespace names: the pnode prefix may add dots (pnode-0000.exp.proj-n-1)
NS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Linux interface names (IFNAMSIZ is 16 with its NUL)
IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
# sun_path of a Unix socket holds 108 bytes with its NUL; 107 is the longest usable path
SUN_PATH_MAX = 107


def valid_name(value):
    """True when VALUE is a node, switch or wirefilter id."""
    return isinstance(value, str) and bool(NAME_RE.match(value))


def valid_netns(value):
    """True when VALUE can name a network namespace."""
    return isinstance(value, str) and bool(NS_RE.match(value))


def valid_ifname(value):
    """True when VALUE can name a Linux network interface."""
    return isinstance(value, str) and bool(IFNAME_RE.match(value))


def plain_file_name(value):
    """True when VALUE names a file in a directory, not a path out of it (no /, not . or ..)."""
    return bool(value) and "/" not in value and value not in (".", "..")


def planned_names(entries, errors, key="name", invalid="node name {!r} is not a valid node name",
                  twice="node {} planned twice"):
    """Each (name, entry) of the plan's ENTRIES whose KEY is a valid id, in order.

    The problems go to ERRORS as they are met: an invalid name (INVALID, the entry is skipped) and a
    name seen before (TWICE, the entry is still yielded so its other problems are reported too).
    """
    seen = set()
    for entry in entries:
        name = str(entry.get(key, ""))
        if not valid_name(name):
            errors.append(invalid.format(name))
            continue
        if name in seen:
            errors.append(twice.format(name))
        seen.add(name)
        yield name, entry
