"""The ns2 reader: real Tcl in a safe interpreter, DETER commands, names, units, errors, safety."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

from containerize.errors import ContainerizeError
from containerize.model import Route, Shaping
from containerize.readers.ns2 import read_ns2

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HEAD = "set ns [new Simulator]\nsource tb_compat.tcl\n"


@pytest.fixture
def ns(tmp_path):
    """ns(text) writes text (dedented) to a file and reads it."""

    def read(text: str, head: str = HEAD, **kwargs):
        path = tmp_path / "topo.ns"
        path.write_text(head + textwrap.dedent(text))
        return read_ns2(str(path), **kwargs)

    return read


def error(ns, text: str, head: str = "", **kwargs) -> ContainerizeError:
    with pytest.raises(ContainerizeError) as info:
        ns(text, head=head, **kwargs)
    return info.value


def marked_line(text: str) -> int:
    """The line carrying '# <-' in a test input."""
    return next(i for i, line in enumerate(textwrap.dedent(text).split("\n"), 1) if "# <-" in line)


def members(topo, name):
    return [(i.node, i.name) for i in topo.interfaces() if i.substrate == name]


# --- the shared examples -------------------------------------------------------------------------

def test_every_example_reads():
    found = sorted(EXAMPLES.glob("*.ns")) + sorted(EXAMPLES.glob("*.tcl"))
    assert found
    for path in found:
        topo = read_ns2(str(path))
        assert topo.fmt == "ns2" and topo.source == str(path)
        assert topo.nodes and topo.substrates


def test_muppetnet():
    topo = read_ns2(str(EXAMPLES / "muppetnet.ns"))
    assert len(topo.nodes) == 15
    assert list(topo.nodes)[:3] == ["beaker", "beauregard", "brewster"]
    kinds = {name: sub.kind for name, sub in topo.substrates.items()}
    assert kinds == {"rainbow": "link", "studebaker": "lan", "electricmayhem": "lan"}
    assert members(topo, "rainbow") == [("fozzie", "inf000"), ("janice", "inf000")]
    assert len(members(topo, "studebaker")) == 7 and len(members(topo, "electricmayhem")) == 8
    assert topo.substrates["studebaker"].bandwidth == 100e6 and topo.substrates["studebaker"].delay == 0.0
    assert topo.substrates["rainbow"].line == 16 and topo.substrates["studebaker"].line == 19
    assert topo.nodes["fozzie"].line == 12
    assert [i.substrate for i in topo.nodes["fozzie"].interfaces] == ["rainbow", "studebaker"]
    assert [i.name for i in topo.nodes["fozzie"].interfaces] == ["inf000", "inf001"]
    assert topo.rtproto == "Static" and topo.warnings == []


def test_star10():
    topo = read_ns2(str(EXAMPLES / "star10.tcl"))
    assert list(topo.nodes) == [f"n-{i}" for i in range(10)]
    assert list(topo.substrates) == [f"link-{i}" for i in range(1, 10)]
    for sub in topo.substrates.values():
        assert (sub.kind, sub.bandwidth, sub.delay, sub.loss) == ("link", 100e6, pytest.approx(0.01), 0.0)
        assert sub.attributes["queue"] == "DropTail"
    assert len(topo.nodes["n-0"].interfaces) == 9
    assert topo.nodes["n-0"].interfaces[8].name == "inf008"


def test_routed():
    topo = read_ns2(str(EXAMPLES / "routed.tcl"))
    assert len(topo.nodes) == 10
    assert topo.nodes["c-1"].attributes == {"containers:node_type": "qemu"}
    assert topo.nodes["c-2"].attributes == {"containers:node_type": "openvz"}
    # "$(hostname)" is shell, not a Tcl array: it stays as written
    assert topo.nodes["a-1"].startcmd == "/bin/sh -c 'echo started on $(hostname)'"
    assert topo.nodes["b-1"].startcmd == "/bin/true"
    assert topo.nodes["a-1"].interfaces[0].ip == "10.1.1.11"
    assert topo.substrates["core"].loss == 0.01 and topo.substrates["core"].bandwidth == 1e9
    assert [i.substrate for i in topo.nodes["r2"].interfaces] == ["lanB", "core", "lanC"]
    assert topo.substrates["lanB"].delay == pytest.approx(0.004)


# --- the commands --------------------------------------------------------------------------------

def test_links_lans_and_lines(ns):
    topo = ns("""\
        set a [$ns node]
        set b [$ns node]
        set c [$ns node]
        set l [$ns duplex-link $a $b 10Mb 5ms RED]
        set lan0 [$ns make-lan "$a $b $c" 1Gb 2ms]
        $ns run
    """)
    assert [n.line for n in topo.nodes.values()] == [3, 4, 5]
    assert topo.substrates["l"].line == 6 and topo.substrates["l"].attributes == {"queue": "RED"}
    assert topo.substrates["lan0"].kind == "lan" and topo.substrates["lan0"].line == 7
    assert [(i.name, i.substrate, i.line) for i in topo.nodes["a"].interfaces] == [
        ("inf000", "l", 6), ("inf001", "lan0", 7)]
    assert members(topo, "lan0") == [("a", "inf001"), ("b", "inf001"), ("c", "inf000")]


def test_addresses_and_netmask(ns):
    topo = ns("""\
        set a [$ns node]
        set b [$ns node]
        set c [$ns node]
        set d [$ns node]
        tb-set-ip $d 10.9.0.4
        set l [$ns duplex-link $a $b 10Mb 5ms DropTail]
        set lan [$ns make-lan "$a $b $c" 10Mb 0ms]
        set l2 [$ns duplex-link $c $d 10Mb 5ms DropTail]
        tb-set-ip-link $a $l 10.0.0.1
        tb-set-ip-lan $b $lan 10.1.0.2
        tb-set-ip-interface $c $d 10.2.0.3
        tb-set-ip-interface $a $c 10.1.0.1
        tb-set-netmask $lan 255.255.255.248
    """)
    ip = {(i.node, i.substrate): i.ip for i in topo.interfaces()}
    assert ip[("d", "l2")] == "10.9.0.4"  # tb-set-ip before the link exists is fine
    assert ip[("a", "l")] == "10.0.0.1" and ip[("b", "lan")] == "10.1.0.2"
    assert ip[("c", "l2")] == "10.2.0.3" and ip[("a", "lan")] == "10.1.0.1"
    assert ip[("b", "l")] is None
    assert topo.substrates["lan"].fixed_netmask == "255.255.255.248"


def test_node_settings_and_vtypes(ns):
    topo = ns("""\
        set a [$ns node]
        tb-make-soft-vtype router {pc600 pc850}
        tb-make-hard-vtype leaf {pc3000}
        tb-make-weighted-vtype w 0.3 {pc1 pc2}
        tb-set-hardware $a router
        tb-set-node-os $a UBUNTU18-64-STD
        tb-set-node-startcmd $a "sh -c {echo hi > /tmp/x}"
        tb-add-node-attribute $a containers:node_type process
        tb-add-node-attribute $a containers:partition 2
    """)
    node = topo.nodes["a"]
    assert (node.hardware, node.os) == ("router", "UBUNTU18-64-STD")
    assert node.startcmd == "sh -c {echo hi > /tmp/x}"
    assert node.attributes == {"containers:node_type": "process", "containers:partition": "2"}
    assert topo.vtypes == {"router": ["pc600", "pc850"], "leaf": ["pc3000"], "w": ["pc1", "pc2"]}


def test_loss_both_forms_and_lan_loss(ns):
    topo = ns("""\
        set a [$ns node]
        set b [$ns node]
        set c [$ns node]
        set l1 [$ns duplex-link $a $b 10Mb 5ms DropTail]
        set l2 [$ns duplex-link $b $c 10Mb 5ms DropTail]
        set lan [$ns make-lan "$a $c" 10Mb 0ms]
        tb-set-link-loss $l1 0.05
        tb-set-link-loss $c $b 0.2
        tb-set-lan-loss $lan 0.5
    """)
    assert [topo.substrates[n].loss for n in ("l1", "l2", "lan")] == [0.05, 0.2, 0.5]


def test_link_and_lanlink_objects(ns):
    topo = ns("""\
        set a [$ns node]
        set b [$ns node]
        set l [$ns duplex-link $a $b 10Mb 5ms DropTail]
        set lan [$ns make-lan "$a $b" 10Mb 0ms]
        tb-set-link-loss [$ns link $b $a] 0.1
        set ll [$ns lanlink $lan $b]
        $ll trace
        [[$ns link $a $b] queue] set limit_ 20
        set q [[$ns link $b $a] queue]
        $q set limit_ 30
    """)
    assert topo.substrates["l"].loss == 0.1
    assert "ll" not in topo.substrates and len(topo.substrates) == 2
    assert sum("queue" in w for w in topo.warnings) == 1


def test_node_lan_overrides_either_order(ns):
    topo = ns("""\
        set a [$ns node]
        set b [$ns node]
        set c [$ns node]
        set lan [$ns make-lan "$a $b $c" 100Mb 10ms]
        tb-set-node-lan-delay $lan $a 40ms
        tb-set-node-lan-bandwidth $lan $a 20Mb
        tb-set-node-lan-loss $a $lan 0.05
        tb-set-node-lan-params $b $lan 1ms 1Gb 0.01
    """)
    a, b, c = (topo.nodes[n].interfaces[0] for n in "abc")
    assert (a.delay, a.bandwidth, a.loss) == (pytest.approx(0.04), 20e6, 0.05)
    assert (b.delay, b.bandwidth, b.loss) == (pytest.approx(0.001), 1e9, 0.01)
    assert (c.delay, c.bandwidth, c.loss) == (None, None, None)
    assert topo.substrates["lan"].delay == pytest.approx(0.01)


def test_simplex_params(ns):
    topo = ns("""\
        set client [$ns node]
        set server [$ns node]
        set link0 [$ns duplex-link $client $server 10.0Mb 40.0ms DropTail]
        tb-set-link-simplex-params $link0 $server 20ms 5Mb 0.01
    """)
    link = topo.substrates["link0"]
    assert link.simplex == {"server": Shaping(bandwidth=5e6, delay=pytest.approx(0.02), loss=0.01)}
    assert (link.bandwidth, link.delay) == (10e6, pytest.approx(0.04))


@pytest.mark.parametrize("proto", ["Static", "Session", "Manual", "static"])
def test_rtproto(ns, proto):
    topo = ns(f"set a [$ns node]\n$ns rtproto {proto}\n$ns run\n")
    assert topo.rtproto == proto.capitalize()


def test_rtproto_unknown(ns):
    err = error(ns, "$ns rtproto DV\n", head=HEAD)
    assert err.line == 3 and "DV" in err.message


def test_add_route(ns):
    topo = ns("""\
        set a [$ns node]
        set r [$ns node]
        set b [$ns node]
        set l1 [$ns duplex-link $a $r 10Mb 0ms DropTail]
        set lan [$ns make-lan "$r $b" 10Mb 0ms]
        $ns rtproto Manual
        $a add-route $b $r
        $a add-route $lan $r
        $b add-route $l1 "r"
    """)
    assert topo.rtproto == "Manual"
    assert topo.nodes["a"].manual_routes == [Route(dest="b", gateway="r"),
                                             Route(dest="substrate:lan", gateway="r")]
    assert topo.nodes["b"].manual_routes == [Route(dest="substrate:l1", gateway="r")]


def test_skipped_with_one_warning_per_kind(ns, tmp_path):
    topo = ns("""\
        set a [$ns node]
        set b [$ns node]
        set l [$ns duplex-link $a $b 10Mb 0ms DropTail]
        set tcp [new Agent/TCP]
        set tcp2 [new Agent/TCP]
        Agent/TCP set window_ 20
        $ns attach-agent $a $tcp
        $ns attach-agent $b $tcp2
        $ns connect $tcp $tcp2
        set ftp [new Application/FTP]
        $ftp attach-agent $tcp
        $ns at 1.0 "$ftp start"
        $ns at 2.0 "$ftp stop"
        $ns queue-limit $a $b 20
        [[$ns link $a $b] queue] set limit_ 20
        tb-set-sync-server $a
        tb-use-endnodequeue 1
        set grp [new EventGroup $ns]
        $grp add $a $b
        set prog [$a program-agent -command "ls"]
        $ns run
    """)
    path = str(tmp_path / "topo.ns")
    assert all(re.match(re.escape(path) + r":\d+: skipped ", w) for w in topo.warnings), topo.warnings
    text = "\n".join(topo.warnings)
    for what in ("new Agent/TCP", "new Application/FTP", "$ns attach-agent", "$ns connect", "$ns at",
                 "$ns queue-limit", "queue", "tb-set-sync-server", "tb-use-endnodequeue", "new EventGroup",
                 "program-agent"):
        assert what in text, what
    assert len(topo.warnings) == len(set(w.split(": ", 1)[1] for w in topo.warnings))
    assert sum("Agent" in w and "Agent/TCP" in w for w in topo.warnings) == 1
    assert sum("$ns at (" in w for w in topo.warnings) == 1
    assert f"{path}:6: skipped new Agent/TCP" in text  # the first occurrence's line
    assert list(topo.substrates) == ["l"] and len(topo.nodes) == 2


# --- units ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("bw", "bits"), [
    ("100Mb", 100e6), ("10kb", 10e3), ("1Gb", 1e9), ("1500", 1500.0), ("2Mbps", 2e6), ("1MB", 8e6),
    ("10b", 10.0), ("0.5Gb", 5e8),
])
def test_bandwidth_units(ns, bw, bits):
    topo = ns(f"set a [$ns node]\nset b [$ns node]\nset l [$ns duplex-link $a $b {bw} 0ms DropTail]\n")
    assert topo.substrates["l"].bandwidth == pytest.approx(bits)


@pytest.mark.parametrize(("delay", "seconds"), [
    ("10ms", 0.01), ("1s", 1.0), ("250us", 250e-6), ("500ns", 500e-9), ("0.02", 0.02), ("0", 0.0),
    ("0.0ms", 0.0),
])
def test_delay_units(ns, delay, seconds):
    topo = ns(f"set a [$ns node]\nset b [$ns node]\nset l [$ns make-lan \"$a $b\" 1Mb {delay}]\n")
    assert topo.substrates["l"].delay == pytest.approx(seconds)


@pytest.mark.parametrize("statement", [
    "$ns duplex-link $a $b 10Qb 1ms DropTail",
    "$ns duplex-link $a $b fast 1ms DropTail",
    "$ns duplex-link $a $b 10Mb 1h DropTail",
    "$ns make-lan \"$a $b\" 10Mb -5ms",
    "tb-set-link-loss $l 1.5",
    "tb-set-lan-loss $l lots",
    "tb-set-node-lan-delay $a $l 3parsecs",
    "tb-set-ip $a 10.0.0.300",
    "tb-set-netmask $l 255.0.255.0",
    "tb-set-netmask $l 24",
])
def test_bad_values_report_the_line(ns, statement):
    text = "set a [$ns node]\nset b [$ns node]\nset l [$ns duplex-link $a $b 1Mb 0ms DropTail]\n" + statement
    err = error(ns, text, head=HEAD)
    assert err.line == 6, err
    assert err.source.endswith("topo.ns") and str(err).startswith(f"{err.source}:6: ")


# --- names ---------------------------------------------------------------------------------------

def test_names_from_variables(ns):
    topo = ns("""\
        set n(3) [$ns node]
        set foo [$ns node]
        set host(1,2) [$ns node]
        set my_node [$ns node]
        set ::glob [$ns node]
        set alias $foo
        proc mk {i} {
            global ns r
            set tmp [$ns node]
            set r($i) $tmp
            return $tmp
        }
        mk 7
        set made [mk 8]
        lappend spare [$ns node] [$ns node]
        set fozzie [lindex $spare 0]
    """)
    assert list(topo.nodes) == ["n-3", "foo", "host-1-2", "my-node", "glob", "r-7", "r-8", "fozzie", "node-8"]


def test_generated_names_and_reused_variables(ns):
    topo = ns("""\
        for {set i 0} {$i < 3} {incr i} {
            set tmp [$ns node]
            lappend all $tmp
        }
        set node-1 [$ns node]
        $ns duplex-link [lindex $all 0] [lindex $all 1] 1Mb 0ms DropTail
        $ns make-lan $all 1Mb 0ms
        set link(0) [$ns duplex-link [lindex $all 1] [lindex $all 2] 1Mb 0ms DropTail]
    """)
    # the first object keeps the reused variable's name; generated names avoid taken ones
    assert list(topo.nodes) == ["tmp", "node-1-1", "node-2", "node-1"]
    assert list(topo.substrates) == ["link-0-1", "lan-0", "link-0"]


def test_names_as_references(ns):
    topo = ns("""\
        foreach n {fozzie janice kermit} { set $n [$ns node] }
        set rainbow [$ns duplex-link "fozzie" "janice" 100Mb 0ms DropTail]
        set lan [$ns make-lan "kermit fozzie" 100Mb 0ms]
        tb-set-ip-link fozzie rainbow 10.0.0.1
        tb-set-link-loss rainbow 0.1
        tb-set-node-os kermit FBSD
    """)
    assert members(topo, "rainbow") == [("fozzie", "inf000"), ("janice", "inf000")]
    assert members(topo, "lan") == [("fozzie", "inf001"), ("kermit", "inf000")]
    assert topo.nodes["fozzie"].interfaces[0].ip == "10.0.0.1"
    assert topo.substrates["rainbow"].loss == 0.1 and topo.nodes["kermit"].os == "FBSD"


def test_duplicate_name(ns):
    err = error(ns, "set n(3) [$ns node]\nset n-3 [$ns node]\n", head=HEAD)
    assert err.line == 4 and "n-3" in err.message and "line 3" in err.message


def test_invalid_name(ns):
    err = error(ns, "set a [$ns node]\nset {bad.name} [$ns node]\n", head=HEAD)
    assert err.line == 4 and "bad.name" in err.message


# --- errors and their lines ----------------------------------------------------------------------

# name: (file text, part of the message); the line marked ";# <-" is where the error must point
ERROR_CASES = {
    "unknown command": ("""\
        set x 1
        frobnicate 1 2   ;# <-
    """, 'invalid command name "frobnicate"'),
    "syntax": ("""\
        set x 1
        proc p {} {   ;# <-
            set y 2
        set z 3
    """, 'missing close-brace'),
    "builtin wrong args": ("""\
        set x 1
        lindex   ;# <-
    """, 'wrong # args'),
    "set wrong args": ("""\
        set x 1 2   ;# <-
    """, 'should be "set varName ?newValue?"'),
    "for loop": ("""\
        for {set i 0} {$i < 3} {incr i} {
            set a $i
            set y [expr {1 / 0}]   ;# <-
        }
    """, 'divide by zero'),
    "foreach loop": ("""\
        foreach i {1 2} {
            set a $i
            set y $nosuch   ;# <-
        }
    """, 'can\'t read "nosuch"'),
    "nested loops": ("""\
        foreach i {1 2} {
            for {set j 0} {$j < 2} {incr j} {
                foreach k {1} {
                    set y [llength]   ;# <-
                }
            }
        }
    """, 'should be "llength list"'),
    "nested procs in a loop": ("""\
        proc a {x} {
            b $x
        }
        proc b {x} {

            c $x
        }
        proc c {x} {
            set y $x
            expr {$y / 0}   ;# <-
        }
        foreach i {1 2} {
            a $i
        }
    """, 'divide by zero'),
    "our command in a proc": ("""\
        set ns [new Simulator]
        set n1 [$ns node]
        set n2 [$ns node]
        proc connect {x y} {
            global ns
            return [$ns duplex-link $x $y 100Zb 10ms DropTail]   ;# <-
        }
        for {set i 0} {$i < 2} {incr i} {
            connect $n1 $n2
        }
    """, "unknown unit 'Zb'"),
    "our wrong args": ("""\
        set ns [new Simulator]
        set n1 [$ns node]
        foreach i {1} {
            tb-set-ip $n1   ;# <-
        }
    """, 'should be "tb-set-ip node ip"'),
    "method wrong args": ("""\
        set ns [new Simulator]
        $ns duplex-link a   ;# <-
    """, 'should be "$ns duplex-link node1 node2'),
    "unknown Simulator method": ("""\
        set ns [new Simulator]
        $ns make-lna "a b" 1Mb 0ms   ;# <-
    """, 'make-lna'),
    "not a node": ("""\
        set ns [new Simulator]
        set a [$ns node]
        $ns duplex-link $a nobody 1Mb 0ms DropTail   ;# <-
    """, "'nobody' is not a node"),
    "proc in a namespace": ("""\
        namespace eval util {
            proc boom {} {
                set a 1
                expr {1 / 0}   ;# <-
            }
            proc outer {} { boom }
        }
        ::util::outer
    """, "divide by zero"),
    "eval of a built string": ("""\
        set s "set a 1\\nbad cmd"
        eval $s   ;# <-
    """, 'invalid command name "bad"'),
    "eval of a literal": ("""\
        eval {
            set a 1
            set b $zz   ;# <-
        }
    """, 'can\'t read "zz"'),
    "uplevel in a proc": ("""\
        proc a {} {
            uplevel 1 {
                set z 1
                error "custom failure"   ;# <-
            }
        }
        a
    """, 'custom failure'),
    "if else": ("""\
        if {0} {
            set a 1
        } else {
            set y [expr {1 / 0}]   ;# <-
        }
    """, 'divide by zero'),
    "catch cannot hide ours": ("""\
        set ns [new Simulator]
        catch {tb-set-ip nobody 10.0.0.1}   ;# <-
        set a [$ns node]
    """, "'nobody' is not a node"),
    "tb-set-ip on a router": ("""\
        set ns [new Simulator]
        set a [$ns node]
        set b [$ns node]
        set c [$ns node]
        tb-set-ip $a 10.0.0.1   ;# <-
        $ns duplex-link $a $b 1Mb 0ms DropTail
        $ns duplex-link $a $c 1Mb 0ms DropTail
    """, 'has 2 links or LANs'),
    "node not on the LAN": ("""\
        set ns [new Simulator]
        set a [$ns node]
        set b [$ns node]
        set lan [$ns make-lan "$a" 1Mb 0ms]
        tb-set-ip-lan $b $lan 10.0.0.1   ;# <-
    """, 'node b is not on lan lan'),
    "no link between": ("""\
        set ns [new Simulator]
        set a [$ns node]
        set b [$ns node]
        tb-set-link-loss $a $b 0.1   ;# <-
    """, 'no link between node a and node b'),
    "simplex-link": ("""\
        set ns [new Simulator]
        set a [$ns node]
        set b [$ns node]
        $ns simplex-link $a $b 1Mb 0ms DropTail   ;# <-
    """, 'simplex-link is not supported'),
    "link to itself": ("""\
        set ns [new Simulator]
        set a [$ns node]
        $ns duplex-link $a $a 1Mb 0ms DropTail   ;# <-
    """, 'both ends are node a'),
    "node twice in a LAN": ("""\
        set ns [new Simulator]
        set a [$ns node]
        $ns make-lan "$a $a" 1Mb 0ms   ;# <-
    """, 'node a is listed twice'),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_error_lines(ns, name):
    text, message = ERROR_CASES[name]
    err = error(ns, text)
    assert err.line == marked_line(text), f"{name}: {err}"
    assert message in err.message
    assert str(err).startswith(f"{err.source}:{err.line}: ")
    assert "\n" not in str(err)


def test_lines_through_a_symlink(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "t.ns").write_text(HEAD + "set a [$ns node]\nnosuch\n")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(ContainerizeError) as info:
        read_ns2(str(tmp_path / "link" / "t.ns"))
    assert (info.value.source, info.value.line) == (str(tmp_path / "link" / "t.ns"), 4)


def test_a_bug_in_the_reader_is_not_disguised(ns, monkeypatch):
    def broken(self, *args):
        raise RuntimeError("reader bug")

    monkeypatch.setattr("containerize.readers.ns2._Reader.tb_set_node_os", broken)
    with pytest.raises(RuntimeError, match="reader bug"):
        ns("set a [$ns node]\ncatch {tb-set-node-os $a X}\n")


def test_missing_file(tmp_path):
    with pytest.raises(ContainerizeError) as info:
        read_ns2(str(tmp_path / "nope.ns"))
    assert "cannot read" in info.value.message


# --- safety --------------------------------------------------------------------------------------

def test_exec_is_not_available(ns, tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("alive")
    err = error(ns, f"set a 1\nexec rm -rf {canary}\n")
    assert err.line == 2 and "exec is not allowed" in err.message
    assert canary.exists()
    # only once the canary survived: the real thing
    err = error(ns, "set a 1\nexec rm -rf /\n")
    assert err.line == 2 and "exec is not allowed" in err.message


@pytest.mark.parametrize("statement", [
    "open /etc/passwd",
    "set f [open {CANARY} w]",
    "socket localhost 22",
    "socket -server accept 0",
    "file delete {CANARY}",
    "file exists /etc/passwd",
    "glob /etc/*",
    "cd /",
    "load libfoo.so",
    "source /etc/passwd",
    "source topo.ns",
    "interp create child",
    "exit 3",
    "encoding system",
])
def test_no_files_sockets_or_code(ns, tmp_path, statement):
    canary = tmp_path / "canary"
    canary.write_text("alive")
    err = error(ns, f"set a 1\n{statement.replace('CANARY', str(canary))}\n")
    assert err.line == 2, err
    assert "not allowed" in err.message or "may only source" in err.message
    assert canary.read_text() == "alive"


def test_endless_loop_is_stopped(ns):
    start = time.monotonic()
    err = error(ns, "set i 0\nwhile 1 {\n    incr i\n}\n", time_limit=1)
    assert time.monotonic() - start < 5
    assert "time limit" in err.message and err.line in (2, 3)


def test_default_time_limit_is_thirty_seconds():
    assert read_ns2.__kwdefaults__["time_limit"] == 30.0


def test_endless_recursion_is_stopped(ns):
    err = error(ns, "proc r {n} {\n    r [expr {$n + 1}]\n}\nr 0\n")
    assert err.line == 2 and "recursion" in err.message


@pytest.mark.parametrize("statement", ["after 100000", "vwait forever"])
def test_blocking_commands_are_gone(ns, statement):
    start = time.monotonic()
    err = error(ns, f"set a 1\n{statement}\n", time_limit=2)
    assert err.line == 2 and time.monotonic() - start < 2


def test_puts_prints_nothing(ns, capfd):
    ns("set a [$ns node]\nputs \"hello\"\nputs stderr oops\n")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_tcl_just_works(ns):
    topo = ns("""\
        array set opt {bw 10Mb delay 5ms count 4}
        proc pair {i} {
            global ns opt node
            return [$ns duplex-link $node($i) $node([expr {$i + 1}]) $opt(bw) $opt(delay) DropTail]
        }
        for {set i 0} {$i < $opt(count)} {incr i} { set node($i) [$ns node] }
        set links [lmap i [lrange [lsort -integer [array names node]] 0 end-1] { pair $i }]
        set dict [dict create a 1]
        dict for {k v} $dict { set last $k }
        switch -glob -- $last { a* { set link(x) [lindex $links 0] } }
        set s [string map {A B} "AAA"]
        tb-set-link-loss $link(x) [format %.2f [expr {1.0 / 8}]]
    """)
    assert list(topo.nodes) == ["node-0", "node-1", "node-2", "node-3"]
    assert list(topo.substrates) == ["link-x", "link-1", "link-2"]
    assert topo.substrates["link-x"].loss == 0.12
    assert topo.substrates["link-1"].delay == pytest.approx(0.005)


# --- speed ---------------------------------------------------------------------------------------

def test_ten_thousand_nodes_are_fast(ns):
    text = """\
        set per 50
        for {set r 0} {$r < 200} {incr r} {
            set router($r) [$ns node]
            if {$r > 0} {
                set uplink($r) [$ns duplex-link $router($r) $router([expr {($r - 1) / 2}]) 1Gb 1ms DropTail]
            }
            set members [list $router($r)]
            for {set h 0} {$h < $per} {incr h} {
                set host($r,$h) [$ns node]
                lappend members $host($r,$h)
            }
            set lan($r) [$ns make-lan $members 100Mb 1ms]
            tb-set-node-os $host($r,0) UBUNTU
        }
        $ns rtproto Static
        $ns run
    """
    start = time.monotonic()
    topo = ns(text)
    elapsed = time.monotonic() - start
    assert len(topo.nodes) == 10200 and len(topo.substrates) == 399
    assert len(topo.nodes["router-1"].interfaces) == 4
    assert elapsed < 3, elapsed


# --- Emulab and DETER files --------------------------------------------------------------------------

def test_emulab_commands_without_meaning_for_containers_warn(ns):
    topo = ns("""\
        set a [$ns node]
        set b [$ns node]
        set lan0 [$ns make-cloud "$a $b" 100Mb 10ms]
        tb-add-node-service-hook $a apache /bin/true
        tb-add-node-service $a apache
        tb-set-node-rpms $a /proj/x.rpm
        tb-set-node-tarfiles $b /usr /proj/x.tgz
        tb-set-node-cmdline $b console=ttyS0
        tb-set-node-failure-action $b nonfatal
        tb-set-tarfiles /usr /proj/x.tgz
        tb-set-node-loadlist $a "a b"
    """)
    assert [s.kind for s in topo.substrates.values()] == ["lan"] and topo.substrates["lan0"].delay == 0.01
    skipped = [w.split(": skipped ")[1].split()[0] for w in topo.warnings]
    assert skipped == ["tb-add-node-service-hook", "tb-add-node-service", "tb-set-node-rpms",
                       "tb-set-node-tarfiles", "tb-set-node-cmdline", "tb-set-node-failure-action",
                       "tb-set-tarfiles", "tb-set-node-loadlist"]
    assert topo.warnings[0].endswith("topo.ns:6: skipped tb-add-node-service-hook (no effect on containers)")


def test_unknown_tb_commands_still_fail(ns):
    exc = error(ns, "tb-set-node-colour $a red\n", head=HEAD + "set a [$ns node]\n")
    assert exc.message == 'invalid command name "tb-set-node-colour"'


@pytest.mark.parametrize("key, meant", [
    ("container:node_type", "containers:node_type"),
    ("containers::partition", "containers:partition"),
    ("containers:Node_Type", "containers:node_type"),
    ("containers:partiton", "containers:partition"),
    ("containers:openvz-template", "containers:openvz_template"),
    ("node_type", "containers:node_type"),
])
def test_near_miss_attributes_warn_with_the_intended_name(ns, key, meant):
    topo = ns(f"""\
        set a [$ns node]
        tb-add-node-attribute $a {key} 1
        tb-add-node-attribute $a {key} 2
    """)
    assert topo.nodes["a"].attributes == {key: "2"}
    assert len(topo.warnings) == 1
    assert topo.warnings[0].endswith(f"topo.ns:4: tb-add-node-attribute node a: attribute {key!r} is not one "
                                     f"containerize knows and is ignored; did you mean {meant!r}?")


def test_known_and_foreign_attributes_do_not_warn(ns):
    topo = ns("""\
        set a [$ns node]
        tb-add-node-attribute $a containers:node_type process
        tb-add-node-attribute $a containers:PartitionPass 0
        tb-add-node-attribute $a containers:maverick_url http://x/img
        tb-add-node-attribute $a my_own_key v
        tb-add-node-attribute $a containers:something_else v
    """)
    assert not topo.warnings
