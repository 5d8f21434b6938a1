"""A process node's shaped interface has its element as its plug (issue 15, docs/datapath.md): the planner
marks the wirefilter node_plug, the pnode's recorded element decides, and the plug's argv is cz-wire's on
tap://IFNAME and the substrate switch's port. Fast tests of the pieces; tests/test_faults.py and
bench/datapath.py run the path itself.
"""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.containerize.deploy.plugins.module_utils.plugs import plan_plug
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import element_argv, recorded_element
from containerize.compiler import plan
from containerize.readers.ns2 import read_ns2
from tests.e2e import compile_topology
from tests.test_planners import options

TOPOLOGY = """\
set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set v [$ns node]
tb-set-node-os $v debian
tb-add-node-attribute $v containers:node_type qemu
set link0 [$ns duplex-link $a $b 10Mb 5ms DropTail]
set link1 [$ns duplex-link $b $v 10Mb 5ms DropTail]
$ns rtproto Static
$ns run
"""
WF = {"id": "w1-0", "right": "s0", "right_port": 2, "left_to_right": {"delay_ms": 2.5, "bandwidth": None, "loss": 0},
      "right_to_left": {"delay_ms": 2.5, "bandwidth": None, "loss": 0}, "node_plug": True}


def fake_cz_wire(tmp_path):
    program = tmp_path / "abc" / "cz-wire"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return str(program)


def test_only_process_nodes_wirefilters_may_be_plugs(tmp_path):
    path = tmp_path / "t.ns"
    path.write_text(TOPOLOGY)
    exp = plan(read_ns2(str(path)), options(size=1))
    wirefilters = [wf for net in exp.networks.values() for wf in net.wirefilters]
    by_node = {(wf["node"], wf["interface"]): wf for wf in wirefilters}
    assert by_node[("a", "eth0")]["node_plug"] and by_node[("b", "eth0")]["node_plug"]
    assert not by_node[("v", "eth0")]["node_plug"]  # qemu plugs into its private switch itself
    attachments = {key: att for net in exp.networks.values() for key, att in net.attachments.items()}
    assert attachments[("a", "eth0")]["wire"] == by_node[("a", "eth0")]["id"]


def test_the_inventory_names_each_interface_s_wire(tmp_path):
    source = tmp_path / "t.tcl"
    source.write_text(TOPOLOGY)
    compile_topology(source, tmp_path / "exp", "p", "e", "--default-container=process", "--size=1")
    text = (tmp_path / "exp" / "inventory" / "host_vars" / "pnode-0000.yml").read_text()
    assert '"wire": "w0-0"' in text


def test_recorded_element_reads_the_wire_element_record(tmp_path):
    assert recorded_element(None) == {"program": "wirefilter", "cpu_latency_us": None}
    assert recorded_element(str(tmp_path)) == {"program": "wirefilter", "cpu_latency_us": None}
    program = fake_cz_wire(tmp_path)
    (tmp_path / "element.json").write_text(json.dumps({"program": program, "cpu_latency_us": 0}))
    assert recorded_element(str(tmp_path)) == {"program": program, "cpu_latency_us": 0}
    assert recorded_element(str(tmp_path), "wirefilter")["program"] == "wirefilter"
    os.unlink(program)  # a build that is gone is not run
    assert recorded_element(str(tmp_path))["program"] == "wirefilter"
    (tmp_path / "element.json").write_text("[1, 2]")
    assert recorded_element(str(tmp_path)) == {"program": "wirefilter", "cpu_latency_us": None}


def test_the_plug_of_a_node_plug_interface_is_its_element(tmp_path):
    run = "/var/containers/run/x"
    element = {"program": fake_cz_wire(tmp_path), "cpu_latency_us": 0}
    iface = {"ifname": "eth0", "switch": "p1-0", "port": 1, "wire": "w1-0"}
    plug = plan_plug(run, "b", iface, {"w1-0": WF}, element)
    assert plug.argv == [element["program"], "--daemon", "--pidfile", f"{run}/w1-0.wf.pid", "-M", f"{run}/w1-0.wf.mgmt",
                         "--cpu-latency", "0", "-v", f"tap://eth0:{run}/s0.ctl[2]", "-d", "LR2.5", "-d", "RL2.5"]
    assert (plug.pidfile, plug.switch, plug.record) == (f"{run}/w1-0.wf.pid", "s0", f"{run}/w1-0.wf.json")
    # no cz-wire on the pnode: process_nodes has no wires, the tap plugs into the private switch
    plain = plan_plug(run, "b", iface, {}, {"program": "wirefilter", "cpu_latency_us": None})
    assert plain.argv[0] == "vde_plug2tap" and plain.switch == "p1-0" and plain.record is None
    assert plain.pidfile == f"{run}/b.eth0.plug.pid"


def test_wirefilter_takes_no_cpu_latency_and_whole_milliseconds():
    argv = element_argv({"program": "wirefilter", "cpu_latency_us": 0}, "/r", "w", "/r/p.ctl[3]", "/r/s.ctl[2]", WF)
    assert "--cpu-latency" not in argv and argv[-4:] == ["-d", "LR3", "-d", "RL2"]
