"""An embedded_pnode node's link to a node on another pnode (fast: the planner only): with the testbed
target its pnode carries the substrate, the other side's uplink floods to it, and its interface plan
says how it joins over VXLAN; with the local target nothing of that is planned."""

from __future__ import annotations

from containerize.compiler import plan
from containerize.config import SITE_DEFAULTS
from containerize.options import Options
from containerize.planners.switches import uplink_vni
from containerize.readers.ns2 import read_ns2

TOPOLOGY = """set ns [new Simulator]
source tb_compat.tcl
foreach n {a b i j} { set $n [$ns node] }
$ns duplex-link $a $b 100Mb 0ms DropTail
$ns duplex-link $i $b 100Mb 15ms DropTail
$ns duplex-link $i $j 100Mb 0ms DropTail
tb-add-node-attribute $i containers:node_type embedded_pnode
tb-add-node-attribute $j containers:node_type embedded_pnode
$ns rtproto Static
$ns run
"""


def _plan(tmp_path, target):
    source = tmp_path / "emb.tcl"
    source.write_text(TOPOLOGY)
    site = {**SITE_DEFAULTS, "target": target}
    options = Options(project="proj", group="proj", experiment="emb", site=site, default_container="process")
    return plan(read_ns2(str(source)), options)


def _pnode_of(exp, name):
    return next(p for p, names in exp.partitioning.assignment.items() if name in names)


def test_embedded_pnode_carries_its_crossing_links(tmp_path):
    exp = _plan(tmp_path, "testbed")
    nets = exp.networks
    pi, pj, pb = _pnode_of(exp, "i"), _pnode_of(exp, "j"), _pnode_of(exp, "b")
    assert len({pi, pj, pb}) == 3, exp.partitioning.assignment
    index = {name: k for k, name in enumerate(exp.topology.substrates)}
    ib = next(i.substrate for i in exp.topology.nodes["i"].interfaces
              if i.substrate in {j.substrate for j in exp.topology.nodes["b"].interfaces})
    ij = next(i.substrate for i in exp.topology.nodes["i"].interfaces if i.substrate != ib)
    # b's switch for i-b gets an uplink flooding to i's pnode
    (up,) = [u for u in nets[pb].uplinks if u["substrate"] == ib]
    assert up["peers"] == [nets[pi].pnet["address"]] and up["vni"] == uplink_vni(exp.tag, index[ib])
    # i's interfaces: VXLAN devices with the same VNI, flooding to b's pnode and to j's
    by_sub = {i.substrate: nets[pi].attachments[("i", i.ifname)] for i in exp.topology.nodes["i"].interfaces}
    assert by_sub[ib]["vxlan"] == {"vni": up["vni"], "device": f"e{exp.tag}{index[ib]:x}", "mtu": 1500,
                                   "peers": [nets[pb].pnet["address"]]}
    assert by_sub[ij]["vxlan"]["peers"] == [nets[pj].pnet["address"]]
    assert nets[pj].attachments[("j", "eth0")]["vxlan"]["peers"] == [nets[pi].pnet["address"]]
    assert len(by_sub[ib]["vxlan"]["device"]) <= 15
    # nothing for the link between a and b (one pnode), no uplink on the embedded pnodes
    assert nets[pi].uplinks == [] and nets[pj].uplinks == []


def test_local_target_plans_no_vxlan_for_embedded_nodes(tmp_path):
    exp = _plan(tmp_path, "local")
    assert not any("vxlan" in a for net in exp.networks.values() for a in net.attachments.values())
    assert not any(u["peers"] for net in exp.networks.values() for u in net.uplinks)
