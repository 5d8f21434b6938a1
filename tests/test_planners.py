"""The planners on small topologies: partition, addresses, routes and shaping, checked by their effect
(every node reaches every address hop by hop, two shaped hops add up to the file's values...)."""

from __future__ import annotations

import ipaddress
import math
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from bench.topologies import lan_tree, one_lan
from containerize.compiler import Experiment, plan
from containerize.config import SITE_DEFAULTS
from containerize.errors import ContainerizeError
from containerize.model import Interface, Node, Shaping, Substrate, Topology
from containerize.options import Options
from containerize.planners.addresses import assign_addresses
from containerize.planners.kinds import assign_kinds
from containerize.planners.names import check_names
from containerize.planners.partition import partition
from containerize.planners.shaping import InterfaceShaping, plan_shaping
from containerize.readers.ns2 import read_ns2

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
HEAD = "set ns [new Simulator]\nsource tb_compat.tcl\n"


def options(**kwargs) -> Options:
    site = dict(SITE_DEFAULTS)
    site.update(kwargs.pop("site", {}))
    kwargs.setdefault("default_container", "process")
    return Options(project="proj", group="proj", experiment="exp", site=site, **kwargs)


@pytest.fixture
def ns(tmp_path):
    """ns(text) reads the ns2 text (dedented, after the usual two header lines) into a Topology."""
    count = 0

    def read(text: str) -> Topology:
        nonlocal count
        count += 1
        path = tmp_path / f"t{count}.ns"
        path.write_text(HEAD + textwrap.dedent(text))
        return read_ns2(str(path))

    return read


def example(name: str) -> Topology:
    return read_ns2(str(EXAMPLES / name))


def generated(text: str, tmp_path: Path) -> Topology:
    path = tmp_path / "generated.ns"
    path.write_text(text)
    return read_ns2(str(path))


def partitioned(topo: Topology, **kwargs):
    opts = options(**kwargs)
    check_names(topo)
    assign_kinds(topo, opts)
    return partition(topo, opts)


def pnodes_of(parts) -> list[list[str]]:
    return list(parts.assignment.values())


def chain(n: int, *, kind=None, pass_of=None, user=None) -> Topology:
    """n nodes x0..x(n-1) in a chain of links, built directly as a model."""
    topo = Topology(source="chain", fmt="topdl")
    for i in range(n):
        node = Node(name=f"x{i}")
        if kind:
            node.attributes["containers:node_type"] = kind(i)
        if pass_of:
            node.attributes["containers:PartitionPass"] = str(pass_of(i))
        if user and user(i) is not None:
            node.attributes["containers:partition"] = str(user(i))
        topo.nodes[node.name] = node
    for i in range(n - 1):
        sub = Substrate(name=f"l{i}", kind="link")
        topo.substrates[sub.name] = sub
        topo.nodes[f"x{i}"].interfaces.append(Interface(node=f"x{i}", substrate=sub.name))
        topo.nodes[f"x{i + 1}"].interfaces.append(Interface(node=f"x{i + 1}", substrate=sub.name))
    return topo


# --- partition -----------------------------------------------------------------------------------

def _placed_once(topo: Topology, parts) -> None:
    placed = [name for names in pnodes_of(parts) for name in names]
    assert sorted(placed) == sorted(topo.nodes)
    for pnode, names in parts.assignment.items():
        assert all(topo.nodes[n].pnode == pnode for n in names)
        assert names == [n for n in topo.nodes if n in names], "pnode lists keep file order"


@pytest.mark.parametrize("packing, sizes", [(1, [1] * 10), (3, [3, 3, 3, 1]), (10, [10]), (100, [10])])
def test_packing_bounds_nodes_per_pnode(packing, sizes):
    topo = example("star10.tcl")
    parts = partitioned(topo, packing=packing)
    _placed_once(topo, parts)
    assert [len(names) for names in pnodes_of(parts)] == sizes
    assert list(parts.assignment) == [f"pnode-{i:04d}" for i in range(len(sizes))]


@pytest.mark.parametrize("size, count", [(1, 1), (2, 2), (3, 3), (10, 10)])
def test_size_sets_the_number_of_pnodes(size, count):
    topo = example("star10.tcl")
    parts = partitioned(topo, size=size, packing=1)  # --size wins over --packing
    _placed_once(topo, parts)
    assert len(parts.assignment) == count


def test_cut_links_on_a_tree_of_lans(tmp_path):
    topo = generated(lan_tree(1000, lan_size=50), tmp_path)  # 20 LANs of a router and 50 hosts
    parts = partitioned(topo, packing=51)
    _placed_once(topo, parts)
    assert len(parts.assignment) == 20
    spans = [len({topo.nodes[i.node].pnode for i in ifaces}) for ifaces in topo.substrate_members().values()]
    assert parts.cut_links == sum(span > 1 for span in spans)
    # at least the 19 router links must cross; the depth-first packing stays within about 1.5 times that
    assert 19 <= parts.cut_links <= 30
    assert partitioned(generated(lan_tree(1000, lan_size=50), tmp_path), packing=2000).cut_links == 0


def test_partition_is_deterministic(tmp_path):
    text = lan_tree(120, lan_size=10)
    first = partitioned(generated(text, tmp_path), packing=7).assignment
    second = partitioned(generated(text, tmp_path), packing=7).assignment
    assert first == second


def _passes(i: int) -> int:
    return 0 if i < 4 else 1 if i < 10 else 2


def test_passes_never_share_a_pnode():
    topo = chain(16, pass_of=_passes)
    parts = partitioned(topo, packing=5)
    _placed_once(topo, parts)
    for pnode, names in parts.assignment.items():
        assert {_passes(int(n[1:])) for n in names} == {parts.pnode_pass[pnode]}
    assert [len(n) for n in pnodes_of(parts)] == [4, 5, 1, 5, 1]


def test_pass_pack_and_pass_size():
    topo = chain(16, pass_of=_passes)
    parts = partitioned(topo, packing=5, pass_pack={0: 1, 2: 6}, pass_size={1: 2})
    by_pass = Counter(parts.pnode_pass.values())
    assert by_pass == {0: 4, 1: 2, 2: 1}  # 4 nodes one each; 6 nodes on 2 pnodes; 6 nodes packed 6
    assert max(len(n) for p, n in parts.assignment.items() if parts.pnode_pass[p] == 1) == 3


def test_size_overrides_pass_pack_but_not_pass_size():
    """DETER: sizes have precedence over packing; a pass's own setting over the global one."""
    topo = chain(16, pass_of=_passes)
    parts = partitioned(topo, size=1, pass_pack={0: 1}, pass_size={2: 3})
    assert Counter(parts.pnode_pass.values()) == {0: 1, 1: 1, 2: 3}


def test_pass_pnodes_and_pnode_types():
    topo = chain(6, pass_of=lambda i: i % 2)
    parts = partitioned(topo, packing=10, pnode_types=["pc3000", "pc2133"], pass_pnodes={1: ["bigpc"]})
    types = {parts.pnode_pass[p]: parts.pnode_types[p] for p in parts.assignment}
    assert types == {0: ["pc3000", "pc2133"], 1: ["bigpc"]}


def test_pass_nodes_only_applies_to_its_pass(ns):
    # two LANs whose members alternate in the file: by links, LANs stay together; by nodes, file order
    topo_text = """\
        foreach i {0 1 2 3} { set a($i) [$ns node]; set b($i) [$ns node] }
        set la [$ns make-lan "$a(0) $a(1) $a(2) $a(3)" 10Mb 0ms]
        set lb [$ns make-lan "$b(0) $b(1) $b(2) $b(3)" 10Mb 0ms]
    """
    by_links = pnodes_of(partitioned(ns(topo_text), packing=4))
    assert by_links == [["a-0", "a-1", "a-2", "a-3"], ["b-0", "b-1", "b-2", "b-3"]]
    file_order = [["a-0", "b-0", "a-1", "b-1"], ["a-2", "b-2", "a-3", "b-3"]]
    assert pnodes_of(partitioned(ns(topo_text), packing=4, nodes_only=True)) == file_order
    assert pnodes_of(partitioned(ns(topo_text), packing=4, pass_nodes_only={0})) == file_order
    assert pnodes_of(partitioned(ns(topo_text), packing=4, pass_nodes_only={1})) == by_links


def _user(i: int):
    return {0: 5, 1: 2, 2: 5, 3: None, 4: 2, 5: None}[i]


def test_user_partitions_are_respected():
    topo = chain(6, user=_user)
    parts = partitioned(topo, packing=1)
    # partitions in numeric order, then the unplaced nodes packed as usual
    assert pnodes_of(parts) == [["x1", "x4"], ["x0", "x2"], ["x3"], ["x5"]]


def test_force_partition_ignores_user_partitions():
    topo = chain(6, user=_user)
    parts = partitioned(topo, packing=3, force_partition=True)
    assert pnodes_of(parts) == [["x0", "x1", "x2"], ["x3", "x4", "x5"]]


def test_qemu_and_openvz_never_share_a_pnode():
    kinds = ["qemu", "openvz", "process", "openvz", "qemu", "openvz", "process", "qemu"]
    topo = chain(8, kind=lambda i: kinds[i])
    for packing in (1, 3, 8, 100):
        parts = partitioned(topo, packing=packing, force_partition=True)
        _placed_once(topo, parts)
        for names in pnodes_of(parts):
            assert not {"qemu", "openvz"} <= {topo.nodes[n].kind for n in names}
    # process nodes pack with the VMs
    assert pnodes_of(partitioned(chain(8, kind=lambda i: kinds[i]), packing=100)) == [
        ["x0", "x2", "x4", "x6", "x7"], ["x1", "x3", "x5"]]


def test_user_partition_mixing_qemu_and_openvz_is_refused():
    topo = chain(2, kind=lambda i: ("qemu", "openvz")[i], user=lambda i: 0)
    with pytest.raises(ContainerizeError, match="mixes qemu nodes .x0. and openvz nodes .x1."):
        partitioned(topo)
    assert len(partitioned(chain(2, kind=lambda i: ("qemu", "openvz")[i], user=lambda i: 0),
                           force_partition=True).assignment) == 2


def test_embedded_pnode_is_alone():
    kinds = ["process", "embedded_pnode", "process", "embedded_pnode", "process"]
    topo = chain(5, kind=lambda i: kinds[i])
    parts = partitioned(topo, packing=10)
    assert pnodes_of(parts) == [["x0", "x2", "x4"], ["x1"], ["x3"]]
    parts = partitioned(chain(5, kind=lambda i: kinds[i]), size=1)
    assert sorted(map(len, pnodes_of(parts))) == [1, 1, 3]


def test_embedded_pnode_in_a_shared_user_partition_gets_its_own_pnode():
    """DETER gave every physical node its own pnode, whatever containers:partition said: so do we, and warn."""
    kinds = ["process", "embedded_pnode", "process", "embedded_pnode", "embedded_pnode"]
    topo = chain(5, kind=lambda i: kinds[i], user=lambda i: (0, 0, 0, 1, 1)[i])
    parts = partitioned(topo)
    assert pnodes_of(parts) == [["x0", "x2"], ["x1"], ["x3"], ["x4"]]
    _placed_once(topo, parts)
    assert len(topo.warnings) == 2
    assert "containers:partition 0 holds x0, x2, x1, but embedded_pnode node x1 is a physical node" \
        in topo.warnings[0]
    assert "embedded_pnode nodes x3, x4 are physical nodes: each gets a pnode of its own" in topo.warnings[1]
    alone = chain(2, kind=lambda i: "embedded_pnode", user=lambda i: 4 if i == 0 else None)
    assert pnodes_of(partitioned(alone)) == [["x0"], ["x1"]] and not alone.warnings


# --- addresses -----------------------------------------------------------------------------------

def addressed(topo: Topology, project="proj", experiment="exp") -> Topology:
    check_names(topo)
    assign_addresses(topo, project, experiment)
    return topo


def _check_addresses(topo: Topology) -> None:
    members = topo.substrate_members()
    networks = {name: ipaddress.IPv4Network(sub.network) for name, sub in topo.substrates.items()}
    for name, network in networks.items():
        for other, second in networks.items():
            assert name == other or not network.overlaps(second), (name, other)
        for iface in members[name]:
            address = ipaddress.IPv4Address(iface.ip)
            assert address in network and iface.prefix == network.prefixlen
            assert iface.netmask == str(network.netmask)
            if network.prefixlen < 31:
                assert address not in (network.network_address, network.broadcast_address)
    addresses = [i.ip for i in topo.interfaces()]
    assert len(addresses) == len(set(addresses))
    macs = [i.mac for i in topo.interfaces()]
    assert len(macs) == len(set(macs))
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 0b10 and not first & 0b1, "locally administered unicast"


@pytest.mark.parametrize("name", ["star10.tcl", "muppetnet.ns", "routed.tcl"])
def test_one_subnet_per_link_or_lan(name):
    _check_addresses(addressed(example(name)))


def test_fixed_addresses_are_honored():
    topo = addressed(example("routed.tcl"))
    assert topo.nodes["a-1"].interfaces[0].ip == "10.1.1.11"
    assert topo.substrates["lanA"].network == "10.1.1.0/24"
    _check_addresses(topo)


def test_fixed_address_decides_a_slash_31(ns):
    topo = addressed(ns("""\
        set a [$ns node]
        set b [$ns node]
        set l [$ns duplex-link $a $b 1Mb 0ms DropTail]
        tb-set-netmask $l 255.255.255.254
        tb-set-ip-link $a $l 10.9.9.0
    """))
    assert [i.ip for i in topo.interfaces()] == ["10.9.9.0", "10.9.9.1"]  # both are hosts (RFC 3021)
    _check_addresses(topo)


def test_a_lan_of_300_gets_a_slash_23(tmp_path):
    topo = addressed(generated(one_lan(300), tmp_path))
    assert topo.substrates["lan0"].network.endswith("/23")
    _check_addresses(topo)


def test_macs_are_stable_and_per_experiment(tmp_path):
    text = lan_tree(150, lan_size=30)
    first = [i.mac for i in addressed(generated(text, tmp_path)).interfaces()]
    again = [i.mac for i in addressed(generated(text, tmp_path)).interfaces()]
    other = [i.mac for i in addressed(generated(text, tmp_path), experiment="exp2").interfaces()]
    assert first == again
    assert not set(first) & set(other)
    _check_addresses(addressed(generated(text, tmp_path)))


def test_addresses_are_stable(tmp_path):
    text = lan_tree(150, lan_size=30)
    first = [(i.node, i.ip) for i in addressed(generated(text, tmp_path)).interfaces()]
    assert first == [(i.node, i.ip) for i in addressed(generated(text, tmp_path)).interfaces()]


# --- routes --------------------------------------------------------------------------------------

def planned(topo: Topology, **kwargs) -> Experiment:
    return plan(topo, options(**kwargs))


class Forwarding:
    """Follows the planned routes hop by hop: a connected subnet first, then the longest prefix."""

    def __init__(self, topo: Topology):
        self.topo = topo
        self.owner = {ipaddress.IPv4Address(i.ip): i.node for i in topo.interfaces()}
        self.connected = {n.name: [(ipaddress.IPv4Network(f"{i.ip}/{i.prefix}", strict=False), i.substrate)
                                   for i in n.interfaces] for n in topo.nodes.values()}
        self.routes = {n.name: sorted(((ipaddress.IPv4Network(r.dest), ipaddress.IPv4Address(r.gateway))
                                       for r in n.routes), key=lambda route: -route[0].prefixlen)
                       for n in topo.nodes.values()}

    def next_hop(self, node: str, target: ipaddress.IPv4Address) -> str:
        for network, substrate in self.connected[node]:
            if target in network:
                owner = self.owner[target]
                assert substrate in {i.substrate for i in self.topo.nodes[owner].interfaces}
                return owner
        for network, gateway in self.routes[node]:
            if target in network:
                assert any(gateway in net for net, _ in self.connected[node]), \
                    f"{node}: gateway {gateway} is not on a connected subnet"
                return self.owner[gateway]
        raise AssertionError(f"{node} has no route to {target}")

    def path(self, source: str, destination: str) -> list[str]:
        """The nodes a packet from `source` to the address `destination` visits; fails on a loop or a
        drop (a node without a route, or a one-interface node asked to forward)."""
        target = ipaddress.IPv4Address(destination)
        path = [source]
        for _ in range(len(self.topo.nodes) + 1):
            if self.owner[target] == path[-1]:
                return path
            if len(path) > 1:
                assert len(self.topo.nodes[path[-1]].interfaces) > 1, f"{path[-1]} cannot forward: {path}"
            path.append(self.next_hop(path[-1], target))
        raise AssertionError(f"routing loop from {source} to {destination}: {path}")


def _everyone_reaches_everything(topo: Topology) -> None:
    forwarding = Forwarding(topo)
    addresses = [(i.node, i.ip) for i in topo.interfaces()]
    for source in topo.nodes:
        if not topo.nodes[source].interfaces:
            continue
        for node, address in addresses:
            if node != source:
                assert forwarding.path(source, address)[-1] == node


RING = """\
    for {set i 0} {$i < 6} {incr i} { set r($i) [$ns node] }
    for {set i 0} {$i < 6} {incr i} {
        set ring($i) [$ns duplex-link $r($i) $r([expr {($i + 1) % 6}]) 1Gb 1ms DropTail]
        set h($i) [$ns node]
        set g($i) [$ns node]
        set lan($i) [$ns make-lan "$r($i) $h($i) $g($i)" 100Mb 0ms]
    }
    set chord [$ns duplex-link $r(0) $r(3) 1Gb 1ms DropTail]
    $ns rtproto Static
"""


@pytest.mark.parametrize("name", ["star10.tcl", "muppetnet.ns", "routed.tcl"])
def test_static_routes_reach_every_address(name):
    topo = example(name)
    planned(topo)
    _everyone_reaches_everything(topo)


def test_static_routes_on_a_tree_and_a_ring(ns, tmp_path):
    topo = generated(lan_tree(90, lan_size=10), tmp_path)  # 9 LANs behind a binary tree of routers
    planned(topo)
    _everyone_reaches_everything(topo)
    ring = ns(RING)
    planned(ring)
    _everyone_reaches_everything(ring)


def test_the_forwarding_check_finds_broken_routes(ns):
    topo = ns(RING)
    planned(topo)
    topo.nodes["h-0"].routes = []
    with pytest.raises(AssertionError, match="no route"):
        _everyone_reaches_everything(topo)
    planned(topo)
    topo.nodes["r-1"].routes = [type(r)(r.dest, topo.nodes["r-2"].interfaces[0].ip) for r in topo.nodes["r-1"].routes]
    with pytest.raises(AssertionError):
        _everyone_reaches_everything(topo)


def test_islands_route_within_themselves(ns):
    topo = ns("""\
        foreach i {0 1 2 3 4 5} { set n($i) [$ns node] }
        set l0 [$ns duplex-link $n(0) $n(1) 1Mb 0ms DropTail]
        set l1 [$ns duplex-link $n(1) $n(2) 1Mb 0ms DropTail]
        set l2 [$ns duplex-link $n(3) $n(4) 1Mb 0ms DropTail]
        set l3 [$ns duplex-link $n(4) $n(5) 1Mb 0ms DropTail]
        $ns rtproto Static
    """)
    planned(topo)
    forwarding = Forwarding(topo)
    for a, b in (("n-0", "n-2"), ("n-2", "n-0"), ("n-3", "n-5"), ("n-5", "n-3")):
        for iface in topo.nodes[b].interfaces:
            assert forwarding.path(a, iface.ip)[-1] == b


def test_session_routes_like_static(ns):
    topo = ns(RING.replace("Static", "Session"))
    planned(topo)
    _everyone_reaches_everything(topo)


def test_one_interface_one_way_out_has_one_route(tmp_path):
    for topo in (example("star10.tcl"), example("routed.tcl"), generated(lan_tree(90, lan_size=10), tmp_path)):
        planned(topo)
        for node in topo.nodes.values():
            if len(node.interfaces) == 1:
                sub = node.interfaces[0].substrate
                routers = [i.node for i in topo.substrate_members()[sub]
                           if len(topo.nodes[i.node].interfaces) > 1]
                if len(routers) == 1:
                    assert len(node.routes) == 1, (node.name, node.routes)
                    gateway = next(i.ip for i in topo.nodes[routers[0]].interfaces if i.substrate == sub)
                    assert node.routes[0].gateway == gateway


def test_routes_never_replace_the_default_route(ns):
    """Fixed addresses outside 10/8 must not turn the aggregate route into 0.0.0.0/0."""
    topo = ns("""\
        set h [$ns node]
        set gw [$ns node]
        set srv [$ns node]
        set l0 [$ns duplex-link $h $gw 10Mb 0ms DropTail]
        set l1 [$ns duplex-link $gw $srv 10Mb 0ms DropTail]
        tb-set-ip-link $srv $l1 192.168.9.2
        $ns rtproto Static
    """)
    planned(topo)
    assert all(ipaddress.IPv4Network(r.dest).prefixlen >= 8 for n in topo.nodes.values() for r in n.routes)
    assert [(r.dest, r.gateway) for r in topo.nodes["h"].routes] == [("192.168.9.0/24", "10.0.0.2")]
    _everyone_reaches_everything(topo)


def test_a_single_lan_needs_no_routes(ns):
    topo = ns("""\
        foreach i {0 1 2} { set n($i) [$ns node] }
        set lan0 [$ns make-lan "$n(0) $n(1) $n(2)" 100Mb 0ms]
        $ns rtproto Static
    """)
    planned(topo)
    assert all(node.routes == [] for node in topo.nodes.values())


def test_manual_routes_are_only_the_files(ns):
    topo = ns("""\
        set a [$ns node]
        set r [$ns node]
        set b [$ns node]
        set c [$ns node]
        set l1 [$ns duplex-link $a $r 100Mb 0ms DropTail]
        set l2 [$ns duplex-link $r $b 100Mb 0ms DropTail]
        set l3 [$ns duplex-link $b $c 100Mb 0ms DropTail]
        $a add-route $b $r
        $a add-route $l3 $r
        $c add-route $l1 $b
        $ns rtproto Manual
    """)
    planned(topo)
    r_on_l1 = topo.nodes["r"].interfaces[0].ip
    b_on_l3 = topo.nodes["b"].interfaces[1].ip
    routes = {n.name: [(r.dest, r.gateway) for r in n.routes] for n in topo.nodes.values()}
    assert routes == {
        "a": [(f"{topo.nodes['b'].interfaces[0].ip}/32", r_on_l1), (topo.substrates["l3"].network, r_on_l1)],
        "r": [],
        "b": [],
        "c": [(topo.substrates["l1"].network, b_on_l3)],
    }


def test_no_rtproto_no_routes(ns):
    topo = ns(RING.replace("$ns rtproto Static", ""))
    planned(topo)
    assert topo.rtproto == "none"  # planned: the file said nothing, an ns2 file routes nothing
    assert all(node.routes == [] for node in topo.nodes.values())


# --- shaping -------------------------------------------------------------------------------------

def shaped(topo: Topology, **kwargs) -> dict[tuple[str, str], InterfaceShaping]:
    exp = planned(topo, **kwargs)
    return {(s.node, s.substrate): s for s in exp.shaping}


def _after(first: Shaping, second: Shaping) -> Shaping:
    rates = [r for r in (first.bandwidth, second.bandwidth) if r is not None]
    return Shaping(min(rates) if rates else None, first.delay + second.delay,
                   1 - (1 - first.loss) * (1 - second.loss))


def node_to_node(plans, sub: str, src: str, dst: str) -> Shaping:
    """What traffic from src to dst meets: src's egress, then dst's wirefilter if it has one."""
    sender, receiver = plans[(src, sub)], plans[(dst, sub)]
    out = sender.outbound if sender.method else Shaping()
    inbound = receiver.inbound if receiver.method == "wirefilter" else Shaping()
    return _after(out, inbound)


def same(got: Shaping, bandwidth, delay, loss) -> None:
    assert got.bandwidth == (pytest.approx(bandwidth) if bandwidth is not None else None)
    assert got.delay == pytest.approx(delay, abs=1e-12)
    assert got.loss == pytest.approx(loss, abs=1e-12)


LAN = """\
    foreach i {0 1 2 3} { set n($i) [$ns node] }
    set lan0 [$ns make-lan "$n(0) $n(1) $n(2) $n(3)" 10Mb 10ms]
    tb-set-lan-loss $lan0 0.19
"""


def test_deter_lan_rule(ns):
    plans = shaped(ns(LAN))
    for i in range(4):
        entry = plans[(f"n-{i}", "lan0")]
        assert entry.method == "wirefilter"
        same(entry.outbound, 10e6, 0.005, 0.1)  # 1 - sqrt(1 - 0.19) = 0.1
        same(entry.inbound, 10e6, 0.005, 0.1)
    for i in range(4):
        for j in range(4):
            if i != j:
                same(node_to_node(plans, "lan0", f"n-{i}", f"n-{j}"), 10e6, 0.010, 0.19)


def test_star_links_add_up(ns):
    topo = example("star10.tcl")
    plans = shaped(topo)
    for i in range(1, 10):
        link = f"link-{i}"
        same(plans[("n-0", link)].outbound, 100e6, 0.005, 0.0)
        same(node_to_node(plans, link, "n-0", f"n-{i}"), 100e6, 0.010, 0.0)
        same(node_to_node(plans, link, f"n-{i}", "n-0"), 100e6, 0.010, 0.0)


def test_simplex_params_shape_each_direction(ns):
    topo = ns("""\
        set a [$ns node]
        set b [$ns node]
        set l [$ns duplex-link $a $b 100Mb 10ms DropTail]
        tb-set-link-loss $l 0.04
        tb-set-link-simplex-params $l $a 30ms 1Mb 0.1
    """)
    plans = shaped(topo)
    same(node_to_node(plans, "l", "a", "b"), 1e6, 0.030, 0.1)
    same(node_to_node(plans, "l", "b", "a"), 100e6, 0.010, 0.04)
    same(plans[("a", "l")].outbound, 1e6, 0.015, 1 - math.sqrt(0.9))
    same(plans[("a", "l")].inbound, 100e6, 0.005, 1 - math.sqrt(0.96))


def test_end_node_shaping_puts_everything_on_egress(ns):
    plans = shaped(ns(LAN), end_node_shaping=True)
    for i in range(4):
        entry = plans[(f"n-{i}", "lan0")]
        assert entry.method == "tc"
        same(entry.outbound, 10e6, 0.010, 0.19)
        assert entry.inbound.is_null()
        same(node_to_node(plans, "lan0", f"n-{i}", f"n-{(i + 1) % 4}"), 10e6, 0.010, 0.19)
    # the site key decides when the command line does not
    site = shaped(ns(LAN), site={"switch_shaping": "false"})
    assert {s.method for s in site.values()} == {"tc"}


def test_node_lan_overrides(ns):
    plans = shaped(ns(LAN + """\
        tb-set-node-lan-delay $n(1) $lan0 3ms
        tb-set-node-lan-loss $lan0 $n(2) 0.5
        tb-set-node-lan-bandwidth $n(3) $lan0 1Mb
    """))
    same(plans[("n-1", "lan0")].outbound, 10e6, 0.003, 0.1)
    same(plans[("n-1", "lan0")].inbound, 10e6, 0.003, 0.1)
    same(plans[("n-2", "lan0")].outbound, 10e6, 0.005, 0.5)
    same(plans[("n-3", "lan0")].inbound, 1e6, 0.005, 0.1)
    same(node_to_node(plans, "lan0", "n-1", "n-2"), 10e6, 0.008, 1 - 0.9 * 0.5)
    same(node_to_node(plans, "lan0", "n-0", "n-3"), 1e6, 0.010, 0.19)


def test_bandwidth_only_lan_keeps_a_bandwidth_override(ns):
    plans = shaped(ns("""\
        foreach i {0 1 2} { set n($i) [$ns node] }
        set lan0 [$ns make-lan "$n(0) $n(1) $n(2)" 100Mb 0ms]
        tb-set-node-lan-bandwidth $n(0) $lan0 1Mb
    """))
    assert node_to_node(plans, "lan0", "n-0", "n-1").bandwidth == 1e6
    assert node_to_node(plans, "lan0", "n-1", "n-0").bandwidth == 1e6
    assert node_to_node(plans, "lan0", "n-1", "n-2").bandwidth == 100e6


def test_bandwidth_only_substrates_shape_egress(ns):
    plans = shaped(example("muppetnet.ns"))
    assert {s.method for s in plans.values()} == {"tc"}
    assert all(s.outbound.bandwidth == 100e6 and s.inbound.is_null() for s in plans.values())


def test_link_between_switched_and_tc_nodes_adds_up(ns):
    topo = ns("""\
        set vm [$ns node]
        set ct [$ns node]
        tb-add-node-attribute $ct containers:node_type embedded_pnode
        set l [$ns duplex-link $vm $ct 10Mb 20ms DropTail]
        tb-set-link-loss $l 0.1
        tb-set-link-simplex-params $l $ct 40ms 1Mb 0.0
    """)
    plans = shaped(topo)
    assert {plans[("vm", "l")].method, plans[("ct", "l")].method} == {"wirefilter", None}
    same(node_to_node(plans, "l", "vm", "ct"), 10e6, 0.020, 0.1)
    same(node_to_node(plans, "l", "ct", "vm"), 1e6, 0.040, 0.0)
    assert not topo.warnings


def test_lan_mixing_shaping_methods_warns(ns):
    topo = ns(LAN + "tb-add-node-attribute $n(2) containers:node_type embedded_pnode\n")
    shaped(topo)
    assert len(topo.warnings) == 1 and "only approximate" in topo.warnings[0]


def test_unshaped_interfaces_have_no_method():
    topo = Topology(source="m", fmt="topdl")
    topo.substrates["s"] = Substrate(name="s")
    for name in ("a", "b"):
        topo.nodes[name] = Node(name=name, interfaces=[Interface(node=name, substrate="s")])
    opts = options()
    assign_kinds(topo, opts)
    assign_addresses(topo, "proj", "exp")
    assert {s.method for s in plan_shaping(topo, opts)} == {None}


# --- routing: what the file says, --routing, and TopDL's default --------------------------------------

STAR_TOPDL = """<experiment>
  <substrates><name>l1</name></substrates><substrates><name>l2</name></substrates>
  <elements><computer><name>server</name><interface><substrate>l1</substrate></interface>
    <interface><substrate>l2</substrate></interface></computer></elements>
  <elements><computer><name>c1</name><interface><substrate>l1</substrate></interface></computer></elements>
  <elements><computer><name>c2</name><interface><substrate>l2</substrate></interface></computer></elements>
</experiment>
"""


def _star(tmp_path: Path, attribute: str = "") -> Topology:
    from containerize.readers.topdl import read_topdl

    path = tmp_path / "star.xml"
    path.write_text(STAR_TOPDL.replace("<experiment>", f"<experiment>{attribute}"))
    return read_topdl(str(path))


def test_topdl_that_says_no_routing_gets_static_routes_and_says_so(tmp_path):
    topo = _star(tmp_path)
    assert topo.rtproto is None
    planned(topo)
    assert topo.rtproto == "Static"
    assert Forwarding(topo).path("c1", topo.nodes["c2"].interfaces[0].ip) == ["c1", "server", "c2"]
    assert len(topo.warnings) == 1 and "names no routing" in topo.warnings[0] and "--routing none" in topo.warnings[0]


@pytest.mark.parametrize("routing, rtproto, routes", [("none", "none", False), ("static", "Static", True),
                                                      ("manual", "Manual", False)])
def test_routing_option_on_topdl(tmp_path, routing, rtproto, routes):
    topo = _star(tmp_path)
    planned(topo, routing=routing)
    assert topo.rtproto == rtproto
    assert bool(topo.nodes["c1"].routes) is routes
    assert not topo.warnings  # the user chose


def test_topdl_routing_attribute_is_obeyed(tmp_path):
    attribute = "<attribute><attribute>containers:rtproto</attribute><value>none</value></attribute>"
    topo = _star(tmp_path, attribute)
    planned(topo)
    assert topo.rtproto == "none" and not topo.nodes["c1"].routes and not topo.warnings


def test_routing_option_overrides_an_ns2_file_and_says_so(ns):
    topo = ns(RING)
    planned(topo, routing="none")
    assert all(not n.routes for n in topo.nodes.values())
    assert topo.warnings[0].endswith("--routing none replaces the file's routing (Static)")
    topo = ns(RING.replace("$ns rtproto Static", ""))
    planned(topo, routing="static")
    assert any(n.routes for n in topo.nodes.values()) and "replaces" not in "".join(topo.warnings)
