"""One IPv4 subnet per link/LAN, an address and a stable MAC per interface.

Fixed addresses (tb-set-ip*, ip4_address) are honored and decide their substrate's subnet;
the rest are allocated in file order from 10.0.0.0/8, skipping subnets already taken.
"""

from __future__ import annotations

import hashlib
import ipaddress

from ..errors import Collector
from ..model import Topology

POOL = ipaddress.IPv4Network("10.0.0.0/8")
DEFAULT_PREFIX = 24


def experiment_tag(project: str, experiment: str) -> str:
    return hashlib.sha1(f"{project}/{experiment}".encode()).hexdigest()[:8]


def _prefix_for(count: int) -> int:
    """Smallest subnet holding `count` hosts, but never smaller than a /24 (DETER's habit)."""
    prefix = DEFAULT_PREFIX
    while (2 ** (32 - prefix)) - 2 < count:
        prefix -= 1
    return prefix


def _parse_mask(text: str) -> int:
    return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen


def _capacity(network: ipaddress.IPv4Network) -> int:
    """Host addresses in a subnet: all of a /31 or /32 (RFC 3021), else all but network and broadcast."""
    return network.num_addresses if network.prefixlen >= 31 else network.num_addresses - 2


# Fixed addresses that cannot be a host's: "this network", loopback, multicast, reserved and broadcast.
NOT_UNICAST = [ipaddress.IPv4Network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")]


def _overlapping(network: ipaddress.IPv4Network, taken: dict) -> str | None:
    """'NAME's subnet N' of the first taken subnet that overlaps `network`, or None."""
    for other, name in taken.items():
        if other.overlaps(network):
            return f"{name}'s subnet {other}"
    return None


def assign_addresses(topo: Topology, project: str, experiment: str) -> None:
    errors = Collector()
    members = topo.substrate_members()
    taken: dict[ipaddress.IPv4Network, str] = {}  # subnet -> the link or LAN that has it
    used_addresses: dict[ipaddress.IPv4Address, str] = {}

    # First pass: substrates with fixed addresses decide their own subnet.
    for sub in topo.substrates.values():
        ifaces = members[sub.name]
        fixed = [i for i in ifaces if i.ip]
        if not fixed:
            if sub.network:  # a planned subnet read back from annotated TopDL
                try:
                    network = ipaddress.IPv4Network(sub.network)
                except ValueError:
                    errors.add(f"{sub.name}: invalid network {sub.network!r}", topo.source, sub.line)
                    continue
                clash = _overlapping(network, taken)
                if clash:
                    errors.add(f"{sub.name}: subnet {network} overlaps {clash}", topo.source, sub.line)
                if _capacity(network) < len(ifaces):
                    errors.add(f"{sub.name}: subnet {network} is too small for its {len(ifaces)} interfaces",
                               topo.source, sub.line)
                taken[network] = sub.name
            continue
        mask_text = sub.fixed_netmask or next((i.netmask for i in fixed if i.netmask), None)
        try:
            prefix = _parse_mask(mask_text) if mask_text else DEFAULT_PREFIX
        except ValueError:
            errors.add(f"{sub.name}: invalid netmask {mask_text!r}; use a dotted mask like 255.255.255.0",
                       topo.source, sub.line)
            continue
        network = None
        for iface in fixed:
            try:
                address = ipaddress.IPv4Address(iface.ip)
            except ValueError:
                errors.add(f"node {iface.node!r}: invalid IPv4 address {iface.ip!r}", topo.source, iface.line)
                continue
            if any(address in special for special in NOT_UNICAST):
                errors.add(f"node {iface.node!r}: address {iface.ip} is not a unicast host address "
                           "(loopback, multicast, reserved or 0.0.0.0/8)", topo.source, iface.line)
                continue
            candidate = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
            if network is None:
                network = candidate
            elif candidate != network:
                errors.add(f"node {iface.node!r}: address {iface.ip} is outside {sub.name}'s subnet {network}",
                           topo.source, iface.line)
                continue
            if prefix < 31 and address in (network.network_address, network.broadcast_address):
                errors.add(f"node {iface.node!r}: address {iface.ip} is the network or broadcast address of "
                           f"{network}", topo.source, iface.line)
            if address in used_addresses:
                errors.add(f"node {iface.node!r}: address {iface.ip} is already used by "
                           f"node {used_addresses[address]!r}", topo.source, iface.line)
            used_addresses[address] = iface.node
        if network is None:
            continue
        if _capacity(network) < len(ifaces):
            errors.add(f"{sub.name}: subnet {network} is too small for its {len(ifaces)} interfaces",
                       topo.source, sub.line)
        clash = _overlapping(network, taken)
        if clash:
            errors.add(f"{sub.name}: subnet {network} overlaps {clash}", topo.source, sub.line)
        sub.network = str(network)
        taken[network] = sub.name
    errors.raise_if_any()

    # Second pass: allocate the rest, in file order, from the pool.
    cursor = int(POOL.network_address)
    for sub in topo.substrates.values():
        if sub.network:
            continue
        prefix = _prefix_for(len(members[sub.name]))
        if sub.fixed_netmask:
            try:
                prefix = _parse_mask(sub.fixed_netmask)
            except ValueError:
                errors.add(f"{sub.name}: invalid netmask {sub.fixed_netmask!r}", topo.source, sub.line)
                continue
            if prefix < POOL.prefixlen:
                errors.add(f"{sub.name}: netmask {sub.fixed_netmask} is larger than the address pool {POOL}",
                           topo.source, sub.line)
                continue
            if _capacity(ipaddress.IPv4Network((0, prefix))) < len(members[sub.name]):
                errors.add(f"{sub.name}: netmask {sub.fixed_netmask} (/{prefix}) is too small for its "
                           f"{len(members[sub.name])} interfaces", topo.source, sub.line)
                continue
        size = 2 ** (32 - prefix)
        cursor = (cursor + size - 1) // size * size
        while True:
            network = ipaddress.IPv4Network((cursor, prefix))
            if not network.subnet_of(POOL):
                errors.add(f"{sub.name}: no room left in {POOL} for another subnet", topo.source, sub.line)
                errors.raise_if_any()
            if not _overlapping(network, taken):
                break
            cursor += size
        cursor += size
        sub.network = str(network)
        taken[network] = sub.name
    errors.raise_if_any()

    # Interfaces: keep fixed ones, hand out the rest in member order skipping used addresses.
    for sub in topo.substrates.values():
        network = ipaddress.IPv4Network(sub.network)
        hosts = (ipaddress.IPv4Address(int(network.network_address) + offset)
                 for offset in range(1 if network.prefixlen < 31 else 0, network.num_addresses))
        for iface in members[sub.name]:
            iface.prefix = network.prefixlen
            iface.netmask = str(network.netmask)
            if iface.ip:
                continue
            for candidate in hosts:
                if candidate not in used_addresses and (network.prefixlen >= 31
                                                        or candidate != network.broadcast_address):
                    iface.ip = str(candidate)
                    used_addresses[candidate] = iface.node
                    break
            else:
                errors.add(f"{sub.name}: subnet {network} has no free address for node {iface.node!r}",
                           topo.source, iface.line)
    errors.raise_if_any()

    # MACs: locally administered, experiment tag in bytes 2-3, interface counter in 4-6.
    tag = bytes.fromhex(experiment_tag(project, experiment)[:4])
    counter = 0
    for node in topo.nodes.values():
        for index, iface in enumerate(node.interfaces):
            counter += 1
            iface.ifname = f"eth{index}"
            iface.mac = ":".join(f"{byte:02x}" for byte in (2, tag[0], tag[1], *counter.to_bytes(3, "big")))
