"""The plan of process nodes checked before anything is done (process_nodes' validate).

Standard library only (see daemons.py).
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import norm_dest
from ansible_collections.containerize.deploy.plugins.module_utils.names import (
    NAME_RE,
    SUN_PATH_MAX,
    planned_names,
    valid_ifname,
    valid_netns,
)

CPU_LIST_RE = re.compile(r"\d{1,4}(-\d{1,4})?(,\d{1,4}(-\d{1,4})?)*")
MAX_CPU = 4095


def cpu_set(text):
    """The CPUs of a list such as 1 or 0-3,6 (taskset's --cpu-list form); ValueError saying what is wrong
    if it is not one (the compiler's check of containers:cpus too)."""
    if not CPU_LIST_RE.fullmatch(text):
        raise ValueError("is not a CPU list such as 1 or 0-3,6 (CPU numbers and ranges, comma-separated)")
    cpus = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not int(low) <= int(high or low) <= MAX_CPU:
            raise ValueError(f"has a range that is empty or goes past CPU {MAX_CPU}: {part}")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def taskset_prefix(cpus):
    """What runs a command on CPUS (a node's planned cpus; nothing when it has none)."""
    return ["taskset", "--cpu-list", str(cpus)] if cpus else []


def _cpus_problem(text):
    """What is wrong with a node's cpus on this pnode, or None."""
    try:
        wanted = cpu_set(text)
    except ValueError as exc:
        return str(exc)
    usable = os.sched_getaffinity(0)
    if wanted - usable:
        have, lacking = (",".join(str(c) for c in sorted(cpus)[:8]) for cpus in (usable, wanted - usable))
        return f"names CPUs this pnode does not give us ({lacking}; it has {have})"
    return None


def validate(run_dir, nodes):
    """What is wrong with the plan's NODES (a list of messages)."""
    errors = []
    for name, g in planned_names(nodes, errors):
        ns = str(g.get("namespace") or "")
        if not valid_netns(ns):
            errors.append(f"node {name}: namespace {ns!r} is not a valid name")
        problem = _cpus_problem(str(g["cpus"])) if g.get("cpus") else None
        if problem:
            errors.append(f"node {name}: cpus {g['cpus']!r} {problem}")
        for iface in g.get("interfaces") or []:
            ifname = str(iface.get("ifname", ""))
            if not valid_ifname(ifname):
                errors.append(f"node {name}: interface name {ifname!r} is not valid")
            veth = iface.get("veth")
            if veth is not None:
                if not (isinstance(veth, dict) and valid_netns(str(veth.get("namespace") or ""))
                        and valid_ifname(str(veth.get("ifname") or ""))):
                    errors.append(f"node {name} {ifname}: veth peer {veth!r} needs a valid namespace and ifname")
            elif iface.get("bridge") is not None:
                lan = iface["bridge"]
                if not (isinstance(lan, dict) and valid_netns(str(lan.get("namespace") or ""))
                        and valid_ifname(str(lan.get("port") or ""))):
                    errors.append(f"node {name} {ifname}: bridge {lan!r} needs a valid namespace and port")
            elif not NAME_RE.match(str(iface.get("switch", ""))):
                errors.append(f"node {name} {ifname}: switch {iface.get('switch')!r} is not a valid id")
            elif len(os.path.join(run_dir, f"{iface['switch']}.ctl", "ctl")) >= SUN_PATH_MAX:
                errors.append(f"node {name} {ifname}: socket path under {run_dir} is too long")
            tc = iface.get("tc")
            if tc and (float(tc.get("delay_ms") or 0) > 0 or float(tc.get("loss") or 0) > 0):
                errors.append(
                    f"node {name} {ifname}: end-node shaping with delay or loss needs the netem qdisc,"
                    " which this kernel lacks; use switch shaping (wirefilters)"
                )
        for route in g.get("routes") or []:
            try:
                norm_dest(route.get("dest"))
                if route.get("gateway"):
                    ipaddress.ip_address(route["gateway"])
            except ValueError as exc:
                errors.append(f"node {name}: bad route {route}: {exc}")
    return errors
