"""Site configuration: DETER's site.conf keys (ConfigParser) with today's defaults.

Values stay strings, as in the original file; planners convert what they use.
"""

from __future__ import annotations

import configparser
import os
import re
import stat

from .errors import ContainerizeError, shown

SITE_DEFAULTS: dict[str, str] = {
    "exec_root": "/share/containers",
    "qemu_host_hw": "pc",
    "qemu_host_os": "Debian12",
    "openvz_host_os": "Debian12",
    "openvz_guest_url": "",
    "openvz_template_dir": "/share/containers/images/openvz",
    "openvz_template": "debian-12",
    "openvz_diskspace": "2G",
    "maverick_url": "",
    # empty: the nodes' Debian image (the os_image role builds it); sites point this at their own images
    "qemu_url": "",
    "qemu_arch": "x86_64",
    "qemu_max_interfaces": "28",
    "switch_shaping": "true",
    "switched_containers": "qemu,process,openvz",
    "node_log": "/var/containers/log",
    "default_router": "",
    "default_dest": "",
    "url_base": "",
    "pnode_root": "/var/containers",
    "pnode_host_pattern": "pnode-{index:04d}.{eid}.{pid}",
    "target": "local",
}


def load_site_config(path: str | None) -> dict[str, str]:
    """Defaults overlaid by every key of every section of FILE (DETER used [globals])."""
    site = dict(SITE_DEFAULTS)
    if not path:
        return site
    parser = configparser.ConfigParser(interpolation=None)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "Is a directory")
        if not stat.S_ISREG(info.st_mode) and os.path.realpath(path) != os.devnull:
            # /dev/zero would never end, a pipe may block forever
            raise ContainerizeError("cannot read site configuration: not a regular file", path)
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            raise ContainerizeError(f"cannot read site configuration: more than {MAX_BYTES} characters, far more "
                                    "than a site.conf holds", path)
        parser.read_string(text, source=path)
    except OSError as exc:
        raise ContainerizeError(f"cannot read site configuration: {exc.strerror}", path) from None
    except UnicodeDecodeError:
        raise ContainerizeError("not a site configuration file (not UTF-8 text)", path) from None
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        first = str(exc).splitlines()[0]
        raise ContainerizeError(f"not a site configuration file ({first})", path, line) from None
    for section in parser.sections():
        for key, value in parser.items(section):
            site[key] = value
    for key, value in parser.defaults().items():
        site[key] = value
    for key in INT_KEYS:
        if not re.fullmatch(r"[0-9]{1,9}", site[key].strip()) or int(site[key]) < 1:
            raise ContainerizeError(f"site key {key} = {shown(site[key])}: expected a whole number of at least 1",
                                    path)
    for key in BOOL_KEYS:
        if site[key].strip().lower() not in _BOOLEANS:
            raise ContainerizeError(f"site key {key} = {shown(site[key])}: expected true or false", path)
    for key in WORD_KEYS:
        if site[key] and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:+/-]{0,127}", site[key]):
            raise ContainerizeError(f"site key {key} = {shown(site[key])}: expected a plain name (letters, digits "
                                    "and . _ : + - /)", path)
    return site


MAX_BYTES = 1 << 20
INT_KEYS = ("qemu_max_interfaces",)  # keys the planners read as numbers
BOOL_KEYS = ("switch_shaping",)  # keys the planners read as booleans (as_bool)
WORD_KEYS = ("qemu_host_hw", "qemu_host_os", "openvz_host_os")  # written unquoted into phys_topo.ns
_BOOLEANS = ("1", "true", "yes", "on", "0", "false", "no", "off")


def as_bool(value: str) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def as_list(value: str) -> list[str]:
    return [item.strip() for item in str(value).split(",") if item.strip()]
