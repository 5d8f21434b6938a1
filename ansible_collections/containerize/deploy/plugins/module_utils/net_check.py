"""Is a running node's network as planned? Checked from the pnode through the node's network namespace.

The openvz role's rc.local checks it inside the container at every boot (each interface with its
address in /etc/containerize/net, each route in /etc/containerize/routes) and writes the reasons to
the node's log/failed, which the node's status reads (node_status.boot_failure). A re-run of swap-in
that does not reboot the container checks the same plan here, from the pnode, after process_nodes
has repaired what it could, and makes log/failed tell the truth again: the reasons when something
is still missing, no file when all is in place. The words are rc.local's.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import os

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    norm_dest,
    read_text,
    remove_path,
    write_new_or_replace,
)
from ansible_collections.containerize.deploy.plugins.module_utils.netlink import Rtnl, in_netns


def network_problems(nl, spec):
    """What of SPEC's planned interfaces (with an address) and routes the namespace of netlink socket NL lacks."""
    links = nl.links()
    addresses = nl.addresses()
    present = {(route["dest"], route["gateway"]) for route in nl.routes()}
    problems = []
    for iface in spec.get("interfaces") or []:
        if not iface.get("address"):
            continue
        ifname, cidr = iface["ifname"], f"{iface['address']}/{int(iface['prefix'])}"
        if ifname not in links:
            problems.append(f"{ifname}: no such interface")
        elif cidr not in addresses.get(ifname, []):
            problems.append(f"{ifname}: no address {cidr}")
        elif not links[ifname]["up"]:
            problems.append(f"{ifname}: down")
    for route in spec.get("routes") or []:
        gateway = route.get("gateway") or None
        if (norm_dest(route.get("dest")), gateway) not in present:
            problems.append(f"no route to {route.get('dest')} via {gateway}")
    return problems


def problems_in(netns, spec):
    """network_problems() of the namespace at path NETNS (its absence is the one problem)."""
    try:
        with in_netns(netns):
            nl = Rtnl()
    except OSError as exc:
        return [f"no network namespace ({exc.strerror or exc})"]
    try:
        return network_problems(nl, spec)
    finally:
        nl.close()


def failed_update(log_dir, problems):
    """(note, action) that makes LOG_DIR/failed say PROBLEMS (or go when there are none), or None when it does."""
    path = os.path.join(log_dir, "failed")
    have = read_text(path)
    if not problems:
        if have is None:
            return None
        return f"network as planned (was: {' '.join(have.split())[:200]})", lambda: remove_path(path)
    want = "; ".join(problems) + "\n"
    if have == want:
        return None
    return f"network not as planned: {want.strip()}", lambda: write_new_or_replace(path, want)
