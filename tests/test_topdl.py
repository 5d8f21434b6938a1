"""TopDL reader and writer, the physical-topology writer and the picture writer."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from pathlib import Path

import pytest

from containerize.errors import ContainerizeError, ErrorList
from containerize.model import Interface, Node, Shaping, Substrate, Topology
from containerize.readers.topdl import read_topdl
from containerize.writers.physical import write_phys_topo
from containerize.writers.picture import write_picture
from containerize.writers.topdl import topdl_bytes, write_topdl

HERE = Path(__file__).parent / "topdl"
EXAMPLE = Path("/work/shared/examples/two-pnodes.xml")


def _plain(obj):
    """A comparable structure without source lines (they differ between files)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "line"}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _model(topo: Topology):
    return _plain(topo.nodes), _plain(topo.substrates)


def _write(tmp_path, text: str, name: str = "t.xml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _error(path) -> ContainerizeError:
    with pytest.raises(ContainerizeError) as info:
        read_topdl(path)
    return info.value


def _messages(exc: ContainerizeError) -> list[str]:
    return [str(e) for e in exc.errors] if isinstance(exc, ErrorList) else [str(exc)]


# -- reading ---------------------------------------------------------------------------------------


def test_reads_shared_example():
    topo = read_topdl(EXAMPLE)
    assert topo.fmt == "topdl" and topo.source == str(EXAMPLE)
    assert list(topo.nodes) == ["client", "server", "monitor"]
    lan = topo.substrates["lan0"]
    assert lan.kind == "lan" and lan.bandwidth == 100e6 and lan.delay == pytest.approx(0.005)
    client, server, monitor = topo.nodes.values()
    assert client.kind == "process" and client.partition == 0 and monitor.partition == 1
    assert client.startcmd == "ping -c 3 server"
    assert client.attributes["startup"] == "ping -c 3 server"
    assert server.interfaces[0].ip == "10.0.7.1" and server.interfaces[0].netmask == "255.255.255.0"
    assert client.interfaces[0].name == "inf000" and client.interfaces[0].substrate == "lan0"
    assert client.line == 11 and server.interfaces[0].line == 22


def test_reads_deter_style():
    topo = read_topdl(HERE / "deter-style.xml")
    link, lan = topo.substrates["link0"], topo.substrates["lan0"]
    assert link.kind == "link" and link.bandwidth == 100e6 and link.delay == pytest.approx(0.010)
    assert link.loss == 0.01 and link.attributes == {}
    assert lan.kind == "lan" and lan.bandwidth == 10e6 and lan.delay == 0.0
    router = topo.nodes["router"]
    assert router.kind == "qemu" and router.hardware == "pc3000" and router.os == "Ubuntu1404-64-STD"
    assert router.attributes["containers:qemu_url"] == "http://example.org/img.qcow2"
    # repeated substrate values on interfaces are not overrides
    r_link, r_lan = router.interfaces
    assert (r_link.bandwidth, r_link.delay, r_link.loss) == (None, None, None)
    assert r_link.ip == "10.1.1.1" and r_link.attributes == {}
    assert r_link.name == "inf000" and r_lan.name == "inf001"
    server = topo.nodes["server"]
    assert server.startcmd == 'sudo /usr/local/bin/serve && echo "up <ok>"'
    assert server.kind == "openvz" and server.attributes["containers:openvz_diskspace"] == "4"
    c0 = topo.nodes["c-0"]
    assert c0.kind is None and c0.ghost and c0.partition == 1
    assert c0.interfaces[0].bandwidth == 1e6 and c0.interfaces[0].delay == pytest.approx(0.0025)
    assert topo.nodes["c-1"].interfaces[0].name == "eth-a"


def test_unknown_kind_is_left_to_the_kinds_planner(tmp_path):
    path = _write(tmp_path, "<experiment><elements><computer><name>a</name><attribute><attribute>"
                            "containers:node_type</attribute><value>pnode</value></attribute>"
                            "</computer></elements></experiment>")
    node = read_topdl(path).nodes["a"]
    assert node.kind is None and node.attributes["containers:node_type"] == "pnode"


def test_other_elements_warn(tmp_path):
    path = _write(tmp_path, "<experiment><elements><testbed><name>t</name></testbed></elements>"
                            "<substrates><name>empty</name></substrates></experiment>")
    topo = read_topdl(path)
    assert not topo.nodes
    assert any("<testbed> element ignored" in w for w in topo.warnings)
    assert any("'empty' has no interfaces" in w for w in topo.warnings)


# -- errors ----------------------------------------------------------------------------------------


def test_missing_substrate_names_file_line_and_computer():
    path = HERE / "missing-substrate.xml"
    assert str(_error(path)) == (f"{path}:15: computer 'x': interface 'inf001' references missing "
                                 "substrate 'y'")


@pytest.mark.parametrize("name", ["billion-laughs.xml", "external-entity.xml"])
def test_entities_are_refused(name):
    exc = _error(HERE / name)
    assert exc.line == 2 and "DOCTYPE with entity declarations" in exc.message


def test_external_dtd_refused(tmp_path):
    path = _write(tmp_path, '<?xml version="1.0"?>\n<!DOCTYPE experiment SYSTEM "http://example.com/x.dtd">\n'
                            "<experiment/>\n")
    assert "external DTD" in _error(path).message


def test_plain_doctype_accepted(tmp_path):
    path = _write(tmp_path, "<!DOCTYPE experiment>\n<experiment><version>1.0</version></experiment>\n")
    assert read_topdl(path).nodes == {}


@pytest.mark.parametrize("text, expected", [
    ("not xml at all <", ":1: not a well-formed XML (TopDL) file"),
    ("", "not a well-formed XML (TopDL) file"),
    ("<topology/>", ":1: not a TopDL file: the root element is <topology>, expected <experiment>"),
    ("<experiment>\n<substrates><capacity><rate>1</rate></capacity></substrates></experiment>",
     ":2: substrate without a <name>"),
    ("<experiment>\n<elements><computer><name> </name></computer></elements></experiment>",
     ":2: computer without a <name>"),
    ("<experiment><substrates><name>s</name>\n<capacity><rate>-100</rate><kind>max</kind></capacity>"
     "</substrates></experiment>", ":2: substrate 's': capacity rate '-100' must be positive"),
    ("<experiment><substrates><name>s</name>\n<capacity><rate>fast</rate></capacity>"
     "</substrates></experiment>", ":2: substrate 's': capacity rate 'fast' is not a number"),
    ("<experiment><substrates><name>s</name>\n<latency><time>-1</time></latency>"
     "</substrates></experiment>", ":2: substrate 's': latency '-1' must not be negative"),
    ("<experiment><substrates><name>s</name>\n<latency><kind>max</kind></latency>"
     "</substrates></experiment>", ":2: substrate 's': <latency> has no <time> (ms)"),
    ("<experiment><substrates><name>s</name>\n<attribute><attribute>loss</attribute><value>2</value>"
     "</attribute></substrates></experiment>", ":2: substrate 's': loss: loss '2' is outside 0..1"),
    ("<experiment><elements><computer><name>a</name>\n<attribute><attribute>containers:partition"
     "</attribute><value>one</value></attribute></computer></elements></experiment>",
     ":2: computer 'a': containers:partition 'one' is not a non-negative integer"),
    ("<experiment><substrates><name>s</name></substrates><elements><computer><name>a</name>\n"
     "<interface><substrate>s</substrate><attribute><attribute>ip4_address</attribute>"
     "<value>10.0.0.300</value></attribute></interface></computer></elements></experiment>",
     ":2: computer 'a': interface 'inf000': ip4_address '10.0.0.300' is not an IPv4 address"),
    ("<experiment><substrates><name>s</name></substrates><elements><computer><name>a</name>\n"
     "<interface><name>i</name></interface></computer></elements></experiment>",
     ":2: computer 'a': interface without a <substrate>"),
    ("<experiment><substrates><name>s</name></substrates>\n<substrates><name>s</name></substrates>"
     "</experiment>", ":2: duplicate substrate 's' (first defined at line 1)"),
    ("<experiment><elements><computer><name>a</name></computer>\n<computer><name>a</name></computer>"
     "</elements></experiment>", ":2: duplicate computer 'a' (first defined at line 1)"),
])
def test_errors(tmp_path, text, expected):
    path = _write(tmp_path, text)
    messages = _messages(_error(path))
    assert any(m.startswith(path) and expected in m for m in messages), messages


def test_errors_are_collected(tmp_path):
    path = _write(tmp_path, "<experiment>\n<substrates><name>s</name><capacity><rate>-1</rate></capacity>"
                            "</substrates>\n<elements><computer><name>a</name><interface><substrate>t"
                            "</substrate></interface></computer></elements></experiment>")
    messages = _messages(_error(path))
    assert len(messages) == 2 and ":2: " in messages[0] and ":3: " in messages[1]


def test_unreadable_file(tmp_path):
    exc = _error(tmp_path / "nope.xml")
    assert "cannot read TopDL file" in exc.message


# -- writing and round trips -----------------------------------------------------------------------


def _rich_model() -> Topology:
    """Everything the writer must carry: overrides, simplex, loss, fixed netmask, a 2-member LAN."""
    topo = Topology(source="rich.xml", fmt="ns2")
    topo.substrates["link0"] = Substrate("link0", "link", bandwidth=1.5e6, delay=0.0123, loss=0.05,
                                         simplex={"a": Shaping(2e6, 0.001, 0.0), "b": Shaping(None, 0.0, 0.1)})
    topo.substrates["lan0"] = Substrate("lan0", "lan", bandwidth=None, delay=0.0, fixed_netmask="255.255.0.0",
                                        attributes={"color": "blue"})
    topo.substrates["lan1"] = Substrate("lan1", "lan", bandwidth=1e9, delay=0.5)
    topo.nodes["a"] = Node("a", kind="qemu", os="UBUNTU", hardware="pc", startcmd="echo 'a' > /tmp/x & true",
                           attributes={"containers:node_type": "qemu", "containers:qemu_arch": "i386"},
                           interfaces=[Interface("a", "link0", "inf000"),
                                       Interface("a", "lan0", "inf001", ip="10.0.0.1", netmask="255.255.0.0",
                                                 bandwidth=1e6, delay=0.0, loss=0.25,
                                                 attributes={"note": "x<y"})])
    topo.nodes["b"] = Node("b", startcmd="",
                           interfaces=[Interface("b", "link0", "inf000"), Interface("b", "lan0", "inf001"),
                                       Interface("b", "lan1", "inf002", delay=0.002)])
    topo.nodes["c"] = Node("c", kind="process", attributes={"containers:node_type": "process"},
                           interfaces=[Interface("c", "lan1", "inf000")])
    return topo


def test_round_trip_of_a_read_file(tmp_path):
    for source in (EXAMPLE, HERE / "deter-style.xml"):
        first = read_topdl(source)
        out = tmp_path / f"{source.stem}.out.xml"
        write_topdl(first, out)
        second = read_topdl(out)
        assert _model(second) == _model(first)
        # and the second write is byte-identical to the first
        again = tmp_path / "again.xml"
        write_topdl(second, again)
        assert again.read_bytes() == out.read_bytes()


def test_round_trip_of_a_built_model(tmp_path):
    model = _rich_model()
    write_topdl(model, tmp_path / "topo.xml")
    back = read_topdl(tmp_path / "topo.xml")
    assert back.substrates["lan0"].kind == "lan"  # two members, still a LAN
    # the writer adds the model's startcmd/hardware/os as attributes; nothing else changes
    for node in model.nodes.values():
        attrs = dict(node.attributes)
        if node.startcmd is not None:
            attrs["startup"] = node.startcmd
        for key, value in (("type", node.hardware), ("osid", node.os)):
            if value:
                attrs[key] = value
        node.attributes = attrs
    assert _model(back) == _model(model)


def test_planned_round_trip(tmp_path):
    model = _rich_model()
    for index, node in enumerate(model.nodes.values()):
        node.kind = node.kind or "openvz"
        node.partition = index % 2
        node.pnode = f"pnode-{index % 2:04d}"
        for n, iface in enumerate(node.interfaces):
            iface.ip = iface.ip or f"10.9.{index}.{n + 1}"
            iface.netmask = iface.netmask or "255.255.255.0"
            iface.mac = f"02:00:00:00:{index:02x}:{n:02x}"
    for n, sub in enumerate(model.substrates.values()):
        sub.network = f"10.9.{n}.0/24"
    data = topdl_bytes(model, planned=True)
    assert b"containers:pnode" in data and b"containers:mac" in data and b"containers:network" in data
    (tmp_path / "partitioned.xml").write_bytes(data)
    back = read_topdl(tmp_path / "partitioned.xml")
    for node in model.nodes.values():
        assert back.nodes[node.name].kind == node.kind
        assert back.nodes[node.name].partition == node.partition
        assert back.nodes[node.name].pnode == node.pnode
        assert back.nodes[node.name].attributes["containers:partition"] == str(node.partition)
        for mine, theirs in zip(node.interfaces, back.nodes[node.name].interfaces, strict=True):
            assert (theirs.ip, theirs.netmask, theirs.mac) == (mine.ip, mine.netmask, mine.mac)
    assert _plain(back.substrates) == _plain(model.substrates)
    # a planned file read back and written again does not change
    assert topdl_bytes(back, planned=True) == data
    # without planned, planned-only data stays out
    plain = topdl_bytes(model)
    assert b"containers:pnode" not in plain and b"containers:mac" not in plain


def test_write_is_deterministic(tmp_path):
    write_topdl(_rich_model(), tmp_path / "one.xml")
    write_topdl(_rich_model(), tmp_path / "two.xml")
    assert (tmp_path / "one.xml").read_bytes() == (tmp_path / "two.xml").read_bytes()
    text = (tmp_path / "one.xml").read_text()
    assert text.startswith("<?xml version='1.0' encoding='UTF-8'?>\n<experiment>\n  <version>1.0</version>")
    assert "<rate>1500</rate>" in text and "<time>12.3</time>" in text
    assert "e-0" not in text and "e+0" not in text  # no exponents


# -- physical topology -----------------------------------------------------------------------------


def test_phys_topo_two_pnodes(tmp_path):
    topo = read_topdl(HERE / "deter-style.xml")
    topo.nodes["router"].kind = "embedded_pnode"
    assignment = {"pnode-0000": ["router"], "pnode-0001": ["server", "c-0", "c-1"]}
    write_phys_topo(topo, assignment, "proj", "exp", tmp_path)
    ns = (tmp_path / "phys_topo.ns").read_text()
    assert "set pnode(0000) [$ns node]" in ns and "set pnode(0001) [$ns node]" in ns
    assert "tb-set-hardware $pnode(0000) pc3000" in ns and "tb-set-node-os $pnode(0000) Ubuntu1404-64-STD" in ns
    assert "tb-set-hardware $pnode(0001) pc" in ns
    assert 'make-lan "$pnode(0000) $pnode(0001)" 1000Mb 0ms' in ns
    assert ns.rstrip().endswith("$ns rtproto Static\n$ns run")
    phys = read_topdl(tmp_path / "phys_topo.xml")
    assert list(phys.nodes) == ["pnode-0000", "pnode-0001"]
    assert phys.substrates["pnet"].kind == "lan" and phys.substrates["pnet"].bandwidth == 1e9
    assert phys.nodes["pnode-0000"].hardware == "pc3000"
    first = (tmp_path / "phys_topo.ns").read_bytes(), (tmp_path / "phys_topo.xml").read_bytes()
    write_phys_topo(topo, assignment, "proj", "exp", tmp_path)
    assert first == ((tmp_path / "phys_topo.ns").read_bytes(), (tmp_path / "phys_topo.xml").read_bytes())


def test_phys_topo_one_pnode(tmp_path):
    topo = read_topdl(EXAMPLE)
    write_phys_topo(topo, {"pnode-0000": list(topo.nodes)}, "proj", "exp", tmp_path)
    ns = (tmp_path / "phys_topo.ns").read_text()
    assert "make-lan" not in ns and "tb-set-hardware $pnode(0000) pc\n" in ns
    assert read_topdl(tmp_path / "phys_topo.xml").substrates == {}


# -- picture ---------------------------------------------------------------------------------------


def _big(n: int) -> Topology:
    topo = Topology(source="big.xml", fmt="topdl")
    topo.substrates["core"] = Substrate("core")
    hubs = max(1, n // 60)
    for h in range(hubs):
        topo.substrates[f"lan{h}"] = Substrate(f"lan{h}")
        topo.nodes[f"r{h}"] = Node(f"r{h}", kind="qemu", interfaces=[Interface(f"r{h}", f"lan{h}"),
                                                                    Interface(f"r{h}", "core")])
    for i in range(n):
        topo.nodes[f"n{i}"] = Node(f"n{i}", kind="process", interfaces=[Interface(f"n{i}", f"lan{i % hubs}")])
    return topo


def test_picture_is_deterministic(tmp_path):
    """The DOT text and Graphviz's layout of it are the same every time; the PNG is a PNG (its raster
    is not byte-stable: Graphviz's text rendering here changes a few pixels in about one run of seven)."""
    topo = read_topdl(HERE / "deter-style.xml")
    write_picture(topo, tmp_path / "a.dot")
    write_picture(topo, tmp_path / "b.dot")
    assert (tmp_path / "a.dot").read_bytes() == (tmp_path / "b.dot").read_bytes()
    plain = [subprocess.run(["fdp", "-Tplain", str(tmp_path / "a.dot")], capture_output=True, check=True).stdout
             for _ in range(2)]
    assert plain[0] == plain[1] and plain[0].startswith(b"graph ")
    write_picture(topo, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")


def test_picture_svg_is_deterministic(tmp_path):
    topo = read_topdl(EXAMPLE)
    write_picture(topo, tmp_path / "a.svg")
    write_picture(topo, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_picture_empty(tmp_path):
    write_picture(Topology(source="e.xml", fmt="topdl"), tmp_path / "e.png")
    assert (tmp_path / "e.png").stat().st_size > 0


def test_picture_large_is_fast(tmp_path):
    topo = _big(2500)
    started = time.monotonic()
    write_picture(topo, tmp_path / "big.png")
    elapsed = time.monotonic() - started
    write_picture(topo, tmp_path / "big.dot")
    write_picture(topo, tmp_path / "big2.dot")
    assert (tmp_path / "big.dot").read_bytes() == (tmp_path / "big2.dot").read_bytes()
    assert elapsed < 2.0


# --- DETER's TopDL names and attributes ------------------------------------------------------------

UNDERSCORE = """<experiment>
  <substrates><name>lan_0</name></substrates>
  <elements><computer><name>web_server</name>
    <interface><substrate>lan_0</substrate></interface>
    <attribute><attribute>container:node_type</attribute><value>qemu</value></attribute>
  </computer></elements>
  <elements><computer><name>client_1</name><interface><substrate>lan_0</substrate></interface>
    <attribute><attribute>containers::partition</attribute><value>1</value></attribute>
  </computer></elements>
</experiment>
"""


def test_underscore_names_become_dashes_with_a_warning(tmp_path):
    topo = read_topdl(_write(tmp_path, UNDERSCORE))
    assert list(topo.nodes) == ["web-server", "client-1"] and list(topo.substrates) == ["lan-0"]
    assert [i.substrate for i in topo.interfaces()] == ["lan-0", "lan-0"]
    renamed = [w for w in topo.warnings if "'_' becomes '-'" in w]
    assert len(renamed) == 1 and renamed[0].startswith(f"{tmp_path}/t.xml:2: 'lan_0' is named 'lan-0' and 2 other")


def test_near_miss_attributes_warn(tmp_path):
    topo = read_topdl(_write(tmp_path, UNDERSCORE))
    misses = [w for w in topo.warnings if "did you mean" in w]
    assert misses == [
        f"{tmp_path}/t.xml:5: computer 'web-server': attribute 'container:node_type' is not one containerize knows "
        "and is ignored; did you mean 'containers:node_type'?",
        f"{tmp_path}/t.xml:8: computer 'client-1': attribute 'containers::partition' is not one containerize knows "
        "and is ignored; did you mean 'containers:partition'?",
    ]


def test_underscore_and_dash_names_clash(tmp_path):
    text = UNDERSCORE.replace("<name>client_1</name>", "<name>web-server</name>")
    with pytest.raises(ContainerizeError, match="duplicate computer 'web-server'"):
        read_topdl(_write(tmp_path, text))


def test_routing_and_manual_routes_round_trip(tmp_path):
    from containerize.model import Route

    topo = Topology(source="m", fmt="ns2", rtproto="Manual")
    topo.substrates["l"] = Substrate(name="l", kind="link")
    for name in ("a", "b"):
        topo.nodes[name] = Node(name=name, interfaces=[Interface(node=name, substrate="l", name="inf000")])
    topo.nodes["a"].manual_routes = [Route("b", "b"), Route("substrate:l", "b"), Route("10.9.0.0/16", "b")]
    again = read_topdl(_write(tmp_path, topdl_bytes(topo).decode()))
    assert again.rtproto == "Manual"
    assert again.nodes["a"].manual_routes == topo.nodes["a"].manual_routes
    for value in ("static", "none", "Session"):
        text = topdl_bytes(topo).decode().replace("<value>Manual</value>", f"<value>{value}</value>")
        assert read_topdl(_write(tmp_path, text)).rtproto == {"static": "Static"}.get(value, value)


def test_converted_leaves_out_container_annotations():
    topo = Topology(source="m", fmt="ns2", rtproto="Static")
    topo.nodes["a"] = Node(name="a", attributes={"containers:node_type": "qemu", "containers:partition": "1",
                                                 "other": "x"}, startcmd="run")
    text = topdl_bytes(topo, annotations=False).decode()
    assert "containers:node_type" not in text and "containers:partition" not in text
    assert "<attribute>other</attribute>" in text and "<attribute>startup</attribute>" in text
    assert "containers:rtproto" in text
