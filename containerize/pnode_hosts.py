"""--pnode-hosts and --pnode-hosts-file: the user's own machines as the experiment's pnodes.

A host is a DNS name or an IP address; pnode-NNNN is reached at host N (Ansible's ansible_host),
with that host's own Ansible variables (ansible_user, ansible_port, ansible_ssh_private_key_file,
ansible_become, vde_uplink_device, ...) from the hosts file. The file is a YAML list whose items are a
host, or a mapping {host: HOST, vars: {NAME: VALUE, ...}}.
"""

from __future__ import annotations

import ipaddress
import re

import yaml

from .errors import ContainerizeError, shown

LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"{LABEL}(?:\.{LABEL})*", re.ASCII)
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}", re.ASCII)
WHAT = "a DNS name (letters, digits, '-' and '.') or an IP address"


def valid_host(text: str) -> bool:
    if len(text) > 253:
        return False
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return bool(HOSTNAME.fullmatch(text))


def hosts_from_list(text: str) -> list[dict]:
    """--pnode-hosts HOST[,HOST...]."""
    hosts = [h.strip() for h in text.split(",")]
    for host in hosts:
        if not valid_host(host):
            raise ContainerizeError(f"--pnode-hosts {shown(host)}: not a host; each host is {WHAT}")
    return _unique([{"host": h, "vars": {}} for h in hosts], "--pnode-hosts", [None] * len(hosts))


def _unique(hosts: list[dict], where: str, lines: list[int | None]) -> list[dict]:
    seen: dict[str, int] = {}
    for index, (entry, line) in enumerate(zip(hosts, lines, strict=True)):
        if entry["host"] in seen:
            raise ContainerizeError(f"host {shown(entry['host'])} is listed twice (items {seen[entry['host']] + 1} "
                                    f"and {index + 1}); one pnode per host", where, line)
        seen[entry["host"]] = index
    return hosts


def _plain(node: yaml.Node, path: str, line: int):
    """The value of NODE as plain data (strings, numbers, booleans, lists, mappings)."""
    loader = yaml.SafeLoader("")
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise ContainerizeError(f"not plain YAML data: {exc.problem or exc}", path, line) from None
    return value


def hosts_from_file(path: str) -> list[dict]:
    """--pnode-hosts-file FILE: a YAML list of HOST or {host: HOST, vars: {...}}."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1 << 20)
    except OSError as exc:
        raise ContainerizeError(f"--pnode-hosts-file: cannot read it: {exc.strerror or exc}", path) from None
    except UnicodeDecodeError:
        raise ContainerizeError("--pnode-hosts-file: not UTF-8 text", path) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ContainerizeError(f"not valid YAML: {exc.problem}", path, line) from None
    except yaml.YAMLError as exc:
        raise ContainerizeError(f"not valid YAML: {exc}", path) from None
    if not isinstance(root, yaml.SequenceNode) or not root.value:
        line = root.start_mark.line + 1 if root is not None else None
        raise ContainerizeError("expected a YAML list of hosts (each HOST or {host: HOST, vars: {...}})", path, line)
    hosts, lines = [], []
    for item in root.value:
        line = item.start_mark.line + 1
        if isinstance(item, yaml.ScalarNode):
            entry = {"host": str(item.value), "vars": {}}
        elif isinstance(item, yaml.MappingNode):
            data = _plain(item, path, line)
            unknown = sorted(set(map(str, data)) - {"host", "vars"})
            if unknown:
                raise ContainerizeError(f"unknown key {shown(unknown[0])} in a host; allowed: host, vars", path, line)
            variables = data.get("vars") or {}
            if not isinstance(data.get("host"), str) or not isinstance(variables, dict):
                raise ContainerizeError("a host mapping needs host: HOST (a string) and optionally vars: a mapping",
                                        path, line)
            for key in variables:
                if not isinstance(key, str) or not VARIABLE.fullmatch(key):
                    raise ContainerizeError(f"variable name {shown(key)} of host {shown(data['host'])}: use "
                                            "letters, digits and '_', not starting with a digit", path, line)
            entry = {"host": data["host"], "vars": dict(variables)}
        else:
            raise ContainerizeError("each host is HOST or {host: HOST, vars: {...}}", path, line)
        if not valid_host(entry["host"]):
            raise ContainerizeError(f"{shown(entry['host'])} is not a host; each host is {WHAT}", path, line)
        hosts.append(entry)
        lines.append(line)
    return _unique(hosts, path, lines)
