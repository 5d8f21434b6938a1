"""One IPv4 subnet per link/LAN, an address and a stable MAC per interface.

Fixed addresses (tb-set-ip*, ip4_address) are honored and decide their substrate's subnet;
the rest are allocated in file order from 10.0.0.0/8, skipping subnets already taken.
"""

from __future__ import annotations

import bisect
import hashlib
import ipaddress

from ..errors import Collector, shown
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


class _Taken:
    """Subnets in use, each with the link or LAN that has it. Overlap tests take O(log n), so 100,000
    links cost no more than a few of them: CIDR blocks overlap only when one holds the other."""

    def __init__(self) -> None:
        self.by_block: dict[tuple[int, int], tuple[ipaddress.IPv4Network, str]] = {}
        self.starts: list[int] = []  # sorted first addresses
        self.at_start: dict[int, list[tuple[ipaddress.IPv4Network, str]]] = {}

    def add(self, network: ipaddress.IPv4Network, name: str) -> None:
        start = int(network.network_address)
        self.by_block.setdefault((start, network.prefixlen), (network, name))
        if start not in self.at_start:
            bisect.insort(self.starts, start)
        self.at_start.setdefault(start, []).append((network, name))

    def find(self, network: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Network, str] | None:
        """A taken subnet overlapping ``network``: one holding it, or one inside it."""
        start, end = int(network.network_address), int(network.broadcast_address)
        for prefix in range(network.prefixlen + 1):
            block = (start & (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF, prefix)
            if block in self.by_block:
                return self.by_block[block]
        index = bisect.bisect_left(self.starts, start)
        if index < len(self.starts) and self.starts[index] <= end:
            return self.at_start[self.starts[index]][0]
        return None

    def describe(self, network: ipaddress.IPv4Network) -> str | None:
        """'NAME's subnet N' of the first taken subnet that overlaps `network`, or None."""
        found = self.find(network)
        return f"{found[1]}'s subnet {found[0]}" if found else None


def _reserved(network: ipaddress.IPv4Network) -> ipaddress.IPv4Network | None:
    """The range of non-host addresses a subnet reaches into (a netmask far too short), or None."""
    return next((special for special in NOT_UNICAST if special.overlaps(network)), None)


def fixed_subnets(topo: Topology, members: dict | None = None) -> tuple[dict[str, ipaddress.IPv4Network], dict]:
    """The subnets the file decides (fixed addresses, netmasks, planned networks), checked; nothing is changed.

    Returns ({substrate: subnet}, {address: node}) or raises every problem found. Cheap, so the CLI runs it
    before anything big is built: an impossible subnet in a 100,000-node file is reported in seconds."""
    errors = Collector()
    members = topo.substrate_members() if members is None else members
    taken = _Taken()
    subnets: dict[str, ipaddress.IPv4Network] = {}
    used_addresses: dict[ipaddress.IPv4Address, str] = {}

    for sub in topo.substrates.values():
        ifaces = members.get(sub.name, [])
        fixed = [i for i in ifaces if i.ip]
        if not fixed:
            if sub.network:  # a planned subnet read back from annotated TopDL
                try:
                    network = ipaddress.IPv4Network(sub.network)
                except ValueError:
                    errors.add(f"{sub.name}: invalid network {shown(sub.network)}", topo.source, sub.line)
                    continue
                _check_subnet(topo, sub, network, len(ifaces), taken, errors)
                subnets[sub.name] = network
                taken.add(network, sub.name)
            elif sub.fixed_netmask:
                _check_pool_netmask(topo, sub, len(ifaces), errors)
            continue
        mask_text = sub.fixed_netmask or next((i.netmask for i in fixed if i.netmask), None)
        try:
            prefix = _parse_mask(mask_text) if mask_text else DEFAULT_PREFIX
        except ValueError:
            errors.add(f"{sub.name}: invalid netmask {shown(mask_text)}; use a dotted mask like 255.255.255.0",
                       topo.source, sub.line)
            continue
        network = None
        for iface in fixed:
            try:
                address = ipaddress.IPv4Address(iface.ip)
            except ValueError:
                errors.add(f"node {iface.node!r}: invalid IPv4 address {shown(iface.ip)}", topo.source, iface.line)
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
        _check_subnet(topo, sub, network, len(ifaces), taken, errors, mask_text)
        subnets[sub.name] = network
        taken.add(network, sub.name)
    errors.raise_if_any()
    return subnets, used_addresses


def _check_subnet(topo: Topology, sub, network: ipaddress.IPv4Network, count: int, taken: _Taken,
                  errors: Collector, mask: str | None = None) -> None:
    reserved = _reserved(network)
    if reserved is not None:
        made = f" (netmask {mask})" if mask else ""
        errors.add(f"{sub.name}: subnet {network}{made} reaches into {reserved}, which holds no host addresses; "
                   "use a longer netmask (such as 255.255.255.0)", topo.source, sub.line)
        return
    if _capacity(network) < count:
        errors.add(f"{sub.name}: subnet {network} is too small for its {count} interfaces", topo.source, sub.line)
    clash = taken.describe(network)
    if clash:
        errors.add(f"{sub.name}: subnet {network} overlaps {clash}", topo.source, sub.line)


def _check_pool_netmask(topo: Topology, sub, count: int, errors: Collector) -> int | None:
    """Prefix of a tb-set-netmask on a substrate whose subnet comes from the pool, or None after an error."""
    try:
        prefix = _parse_mask(sub.fixed_netmask)
    except ValueError:
        errors.add(f"{sub.name}: invalid netmask {shown(sub.fixed_netmask)}; use a dotted mask like 255.255.255.0",
                   topo.source, sub.line)
        return None
    if prefix < POOL.prefixlen:
        errors.add(f"{sub.name}: netmask {sub.fixed_netmask} is larger than the address pool {POOL}",
                   topo.source, sub.line)
        return None
    if _capacity(ipaddress.IPv4Network((0, prefix))) < count:
        errors.add(f"{sub.name}: netmask {sub.fixed_netmask} (/{prefix}) is too small for its "
                   f"{count} interfaces", topo.source, sub.line)
        return None
    return prefix


def assign_addresses(topo: Topology, project: str, experiment: str) -> None:
    errors = Collector()
    members = topo.substrate_members()
    # First: substrates with fixed addresses or planned networks decide their own subnet.
    subnets, used_addresses = fixed_subnets(topo, members)
    taken = _Taken()
    for name, network in subnets.items():
        topo.substrates[name].network = str(network)
        taken.add(network, name)

    # Then allocate the rest, in file order, from the pool. The cursor only moves up, so a new subnet can
    # only overlap a fixed one.
    cursor = int(POOL.network_address)
    pool_end = int(POOL.broadcast_address)
    for sub in topo.substrates.values():
        if sub.name in subnets:
            continue
        prefix = _prefix_for(len(members[sub.name]))
        if sub.fixed_netmask:
            prefix = _check_pool_netmask(topo, sub, len(members[sub.name]), errors)
            if prefix is None:
                continue
        size = 2 ** (32 - prefix)
        cursor = (cursor + size - 1) // size * size
        while True:
            if cursor + size - 1 > pool_end:
                errors.add(f"{sub.name}: no room left in {POOL} for another subnet", topo.source, sub.line)
                errors.raise_if_any()
            network = ipaddress.IPv4Network((cursor, prefix))
            blocking = taken.find(network)
            if blocking is None:
                break
            # jump past the fixed subnet in the way, to the next aligned block
            cursor = max(cursor + size, (int(blocking[0].broadcast_address) + size) // size * size)
        cursor += size
        sub.network = str(network)
        taken.add(network, sub.name)
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
