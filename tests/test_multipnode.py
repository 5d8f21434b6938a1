"""Several pnodes on this machine: substrates that cross pnodes are carried over VXLAN, end to end.

With the local target every pnode after the first gets its own root and name prefix, and its own
"physical" side: a network namespace holding the uplinks (tap on the substrate switch, bridge,
VXLAN device) and a veth wire into a namespace standing for the experiment LAN. These tests swap in
examples/two-pnodes.xml (hand-partitioned onto two pnodes) and star10.tcl packed 4 per pnode
(3 pnodes) as process nodes, ping every node from every other by name with the planned delays,
break uplinks and re-run, and check that swap-out (working only from the experiment directory)
leaves nothing behind.

Other experiments may be running on this machine meanwhile, so the before/after comparison looks
at everything that carries this experiment's names (tag, EID.PID, pnode roots, uplink links)
rather than at the whole host. The end-to-end tests are marked slow (real namespaces, VDE, VXLAN
and Ansible runs); the compiler's part of the design is checked first, fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from containerize.cli import main
from containerize.planners.switches import pnet_addresses, uplink_names, uplink_vni
from containerize.readers.ns2 import read_ns2
from tests.e2e import (
    ENV,
    MODULES,
    REPO,
    assert_nothing_left,
    changed,
    compile_topology,
    cut_swapin,
    delay_error,
    host_state,
    node_exec,
    playbook,
    traces,
)

slow = pytest.mark.slow
EXAMPLES = REPO / "examples"
PROJECT = "mpn"

# one warm-up ping (ARP crosses the wirefilters too), then COUNT measured ones, to every target at once
PING_ALL = (
    'count=$1; shift; for t in "$@"; do ( ping -n -c 1 -W 3 "$t" >/dev/null;'
    ' ping -n -c "$count" -i 0.2 -W 3 "$t" | sed -n "s|.* time=\\([0-9.]*\\) ms|$t \\1|p" ) & done; wait'
)


def _load(path: Path):
    return yaml.safe_load(path.read_text())


def _pnode_vars(expdir: Path) -> dict[str, dict]:
    return {p.stem: _load(p) for p in sorted((expdir / "inventory" / "host_vars").glob("pnode-*.yml"))}


def _rtts(expdir: Path, source: str, targets: list[str], count: int = 8) -> dict[str, list[float]]:
    """Round trips in ms from SOURCE to each target, pinged in parallel."""
    proc = node_exec(expdir, source, "sh", "-c", PING_ALL, "sh", str(count), *targets, timeout=120)
    samples: dict[str, list[float]] = {}
    for line in proc.stdout.splitlines():
        target, _, rtt = line.partition(" ")
        samples.setdefault(target, []).append(float(rtt))
    missing = sorted(set(targets) - set(samples))
    assert not missing, f"{source} cannot reach {missing}: {proc.stdout}{proc.stderr}"
    return samples


def _assert_rtts(expdir: Path, source: str, planned: dict[str, float]) -> None:
    """The round trips from SOURCE to each target show the planned delay (measured again, longer, if not)."""

    def off(rtts):
        # a path between pnodes crosses two VXLAN uplinks each way (~0.3 ms a round trip on this machine)
        return {t: error for t, want in planned.items() if (error := delay_error(rtts[t], want, allowance_ms=2.0))}

    rtts = _rtts(expdir, source, list(planned))
    if off(rtts):  # a busy moment of this shared machine, or really wrong: look longer
        for target, samples in _rtts(expdir, source, list(off(rtts)), count=20).items():
            rtts[target] += samples
    wrong = [f"{source} -> {t}: {error}" for t, error in off(rtts).items()]
    assert not wrong, "\n".join(wrong)


def _check_all_pairs(expdir: Path, planned) -> None:
    """Every node pings every other by name with the planned round-trip time."""
    nodes = list(_load(expdir / "embedding.yaml")["nodes"])
    for source in nodes:
        _assert_rtts(expdir, source, {target: planned(source, target) for target in nodes if target != source})


def _swapin(expdir: Path) -> None:
    playbook(expdir, "swapin")


def _assert_rerun_changes_nothing(expdir: Path) -> None:
    """A re-run of swap-in reports no change; if it does, say which tasks changed what."""
    cmd = ["ansible-playbook", "-v", "-i", str(expdir / "inventory"), str(REPO / "playbooks" / "swapin.yml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    task, report = "", []
    for block in re.split(r"\n(?=TASK \[|changed: |ok: |skipping: |PLAY RECAP)", proc.stdout):
        if block.startswith("TASK ["):
            task = block.split("\n")[0]
        elif block.startswith("changed: "):
            report.append(f"{task}\n{block[:1500]}")
    assert not report, "\n".join(report)


def _swapout_from_the_record(expdir: Path, source: Path) -> None:
    """Swap out with the topology gone: the input and every copy of it in the experiment directory."""
    source.unlink(missing_ok=True)
    for name in ("experiment.tcl", "experiment.xml", "topo.xml", "annotated.xml", "partitioned.xml"):
        (expdir / name).unlink(missing_ok=True)
    assert changed(playbook(expdir, "swapout")) > 0
    assert changed(playbook(expdir, "swapout")) == 0


def _compiled(tmp_path_factory, example: str, experiment: str, *args: str) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp(experiment)
    source = workdir / example
    shutil.copyfile(EXAMPLES / example, source)
    expdir = workdir / "exp"
    compile_topology(source, expdir, PROJECT, experiment, *args)
    return source, expdir


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    source, expdir = _compiled(tmp_path_factory, "two-pnodes.xml", "two")
    before = host_state()
    _swapin(expdir)
    yield expdir, source, before
    playbook(expdir, "swapout")


@pytest.fixture(scope="module")
def star(tmp_path_factory):
    source, expdir = _compiled(tmp_path_factory, "star10.tcl", "star", "--default-container=process", "--packing=4")
    before = host_state()
    _swapin(expdir)
    yield expdir, source, before
    playbook(expdir, "swapout")


# -- the compiler's plan (fast) ---------------------------------------------------------------------


def _compile_here(tmp_path: Path, example: str, *args: str) -> Path:
    out = tmp_path / "exp"
    assert main([*args, "--no-image", "--force", "--out", str(out), PROJECT, "x", str(EXAMPLES / example)]) == 0
    return out


def test_uplink_names_fit_and_vnis_are_distinct():
    tag = "ffffffff"
    assert all(len(name) <= 15 for name in uplink_names(tag, (1 << 24) - 2).values())
    vnis = {uplink_vni(tag, index) for index in range(5000)}
    assert len(vnis) == 5000 and all(1 <= v < (1 << 24) for v in vnis)
    assert uplink_vni("1a2b3c4d", 7) == uplink_vni("1a2b3c4d", 7)


def test_pnet_grows_with_the_pnodes():
    assert pnet_addresses(["a", "b"]) == ({"a": "198.18.0.1", "b": "198.18.0.2"}, 24)
    addresses, prefix = pnet_addresses([f"p{i}" for i in range(300)])
    assert prefix == 23 and addresses["p299"] == "198.18.1.44"


def test_local_plan_gives_each_pnode_its_side_and_peers(tmp_path):
    expdir = _compile_here(tmp_path, "star10.tcl", "--default-container=process", "--packing=4")
    pnodes = _pnode_vars(expdir)
    tag = _load(expdir / "inventory" / "group_vars" / "all.yml")["containerize_exp_tag"]
    address = {p: v["containerize_pnet"]["address"] for p, v in pnodes.items()}
    for pnode, pvars in pnodes.items():
        pnet = pvars["containerize_pnet"]
        assert pnet["namespace"] == f"cz-{tag}-{pnode}" and pnet["wire_namespace"] == f"cz-{tag}-pnet"
        assert pnet["mtu"] == 1550 and pnet["device"] == "pnet"
        switches = {s["id"]: s for s in pvars["containerize_switches"]}
        for uplink in pvars["containerize_uplinks"]:
            assert switches[uplink["switch"]]["crosses_pnodes"] and address[pnode] not in uplink["peers"]
    # each crossing link joins the centre's pnode and one other: both ends agree on the VNI
    by_substrate = {}
    for pnode, pvars in pnodes.items():
        for uplink in pvars["containerize_uplinks"]:
            by_substrate.setdefault(uplink["substrate"], []).append((pnode, uplink["vni"], uplink["peers"]))
    assert len(by_substrate) == 6
    for ends in by_substrate.values():
        (p1, vni1, peers1), (p2, vni2, peers2) = ends
        assert vni1 == vni2 and peers1 == [address[p2]] and peers2 == [address[p1]]


def test_single_pnode_has_no_uplinks(tmp_path):
    expdir = _compile_here(tmp_path, "star10.tcl", "--default-container=process")
    (pvars,) = _pnode_vars(expdir).values()
    assert pvars["containerize_pnet"] is None and pvars["containerize_uplinks"] == []
    assert "make-lan" not in (expdir / "phys_topo.ns").read_text()


def test_testbed_target_plan_and_phys_topo(tmp_path):
    site = tmp_path / "site.conf"
    site.write_text("[globals]\ntarget = testbed\nqemu_host_os = Ubuntu2204-64-STD\n")
    expdir = _compile_here(tmp_path, "star10.tcl", "--default-container=process", "--packing=4",
                           "--pnode-types=pc2133,bpc2133", f"--config={site}")
    for pvars in _pnode_vars(expdir).values():
        pnet = pvars["containerize_pnet"]
        assert pnet["namespace"] is None and pnet["wire_namespace"] is None and pnet["device"] is None
        assert pnet["mtu"] is None and pvars["containerize_prefix"] == ""
        assert pvars["containerize_root"] == "/var/containers"
    text = (expdir / "phys_topo.ns").read_text()
    assert "tb-make-soft-vtype pnodetype0 {pc2133 bpc2133}" in text
    assert 'tb-set-node-startcmd $pnode(0002) "sudo /share/containers/bootstrap-pnode mpn x pnode-0002"' in text
    # what the testbed's ns2 parser would see (ours stands in for it)
    phys = read_ns2(expdir / "phys_topo.ns")
    assert list(phys.nodes) == ["pnode-0000", "pnode-0001", "pnode-0002"]
    assert phys.vtypes == {"pnodetype0": ["pc2133", "bpc2133"]}
    assert {n.hardware for n in phys.nodes.values()} == {"pnodetype0"}
    assert {n.os for n in phys.nodes.values()} == {"Ubuntu2204-64-STD"}
    assert phys.substrates["pnet"].fixed_netmask == "255.255.255.0"
    planned = {p: v["containerize_pnet"]["address"] for p, v in _pnode_vars(expdir).items()}
    assert {n.name: n.interfaces[0].ip for n in phys.nodes.values()} == planned


# -- two-pnodes.xml: one LAN on two pnodes --------------------------------------------------------


@slow
def test_two_pnodes_plan(two):
    expdir, _source, _before = two
    assert _load(expdir / "assignment") == {"pnode-0000": ["client", "server"], "pnode-0001": ["monitor"]}
    pnodes = _pnode_vars(expdir)
    uplinks = {p: v["containerize_uplinks"] for p, v in pnodes.items()}
    assert [u["switch"] for u in uplinks["pnode-0000"]] == ["s0"] == [u["switch"] for u in uplinks["pnode-0001"]]
    assert uplinks["pnode-0000"][0]["vni"] == uplinks["pnode-0001"][0]["vni"]
    assert uplinks["pnode-0000"][0]["peers"] == [pnodes["pnode-0001"]["containerize_pnet"]["address"]]
    # the uplinks add no shaping: one wirefilter per node interface, none for the uplink
    assert sum(len(v["containerize_wirefilters"]) for v in pnodes.values()) == 3


@slow
def test_two_pnodes_every_node_reaches_every_other(two):
    expdir, _source, _before = two
    shaping = {}
    for pnode_vars in _pnode_vars(expdir).values():
        for wf in pnode_vars["containerize_wirefilters"]:
            shaping[wf["node"]] = (wf["left_to_right"]["delay_ms"], wf["right_to_left"]["delay_ms"])

    def planned(a, b):  # one LAN: out of a and into b, then back
        return shaping[a][0] + shaping[b][1] + shaping[b][0] + shaping[a][1]

    _check_all_pairs(expdir, planned)


@slow
def test_two_pnodes_cross_hop_goes_over_vxlan(two):
    expdir, _source, _before = two
    tag = _load(expdir / "inventory" / "group_vars" / "all.yml")["containerize_exp_tag"]
    vxlan = _pnode_vars(expdir)["pnode-0001"]["containerize_uplinks"][0]["vxlan"]
    namespace = _pnode_vars(expdir)["pnode-0001"]["containerize_pnet"]["namespace"]

    def tx_packets():
        out = subprocess.run(["ip", "-n", namespace, "-s", "-j", "link", "show", vxlan], capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out)[0]["stats64"]["tx"]["packets"]

    first = tx_packets()
    assert node_exec(expdir, "monitor", "ping", "-c", "3", "-i", "0.2", "-W", "2", "client").returncode == 0
    assert tx_packets() >= first + 3
    assert namespace == f"cz-{tag}-pnode-0001"


@slow
def test_two_pnodes_swapout_from_the_record_leaves_nothing(two):
    expdir, source, before = two
    _swapout_from_the_record(expdir, source)
    assert_nothing_left(expdir, before)


# -- star10.tcl, 4 per pnode: 3 pnodes, six links cross -------------------------------------------


@slow
def test_star_plan(star):
    expdir, _source, _before = star
    assert list(_load(expdir / "assignment")) == ["pnode-0000", "pnode-0001", "pnode-0002"]
    group = _load(expdir / "inventory" / "group_vars" / "all.yml")
    assert len(group["containerize_crossing_substrates"]) == 6
    vnis = {u["substrate"]: u["vni"] for v in _pnode_vars(expdir).values() for u in v["containerize_uplinks"]}
    assert len(vnis) == 6 and len(set(vnis.values())) == 6


@slow
def test_star_every_node_reaches_every_other_with_planned_delay(star):
    expdir, _source, _before = star
    _check_all_pairs(expdir, lambda a, b: 20.0 if "n-0" in (a, b) else 40.0)


@slow
def test_star_rerun_changes_nothing(star):
    expdir, _source, _before = star
    _assert_rerun_changes_nothing(expdir)


def _uplink_of(expdir: Path, node: str) -> tuple[dict, dict]:
    """(pnet, uplink) of the pnode holding NODE, for NODE's substrate."""
    embedding = _load(expdir / "embedding.yaml")
    pnode_vars = _pnode_vars(expdir)[embedding["nodes"][node]["pnode"]]
    substrate = next(g for g in pnode_vars["containerize_nodes"] if g["name"] == node)["interfaces"][0]["substrate"]
    uplink = next(u for u in pnode_vars["containerize_uplinks"] if u["substrate"] == substrate)
    return pnode_vars, uplink


@slow
@pytest.mark.parametrize("breakage", ["bridge", "vxlan", "plug", "wire", "pnode-namespace", "switch"])
def test_star_rerun_repairs_uplinks(star, breakage):
    expdir, _source, _before = star
    pnode_vars, uplink = _uplink_of(expdir, "n-5")
    pnet = pnode_vars["containerize_pnet"]
    tag = _load(expdir / "inventory" / "group_vars" / "all.yml")["containerize_exp_tag"]
    run_dir = f"{pnode_vars['containerize_root']}/run/{tag}"
    ns = pnet["namespace"]
    if breakage in ("bridge", "vxlan"):
        subprocess.run(["ip", "-n", ns, "link", "del", uplink[breakage]], check=True)
    elif breakage == "plug":
        os.kill(int(Path(f"{run_dir}/{uplink['switch']}.uplink.pid").read_text()), signal.SIGKILL)
    elif breakage == "wire":
        subprocess.run(["ip", "-n", ns, "link", "del", pnet["device"]], check=True)
    elif breakage == "pnode-namespace":
        os.system(f"ip netns pids {ns} | xargs -r kill -9; ip netns delete {ns}")
    elif breakage == "switch":
        os.kill(int(Path(f"{run_dir}/{uplink['switch']}.pid").read_text()), signal.SIGKILL)
    time.sleep(0.3)
    assert changed(playbook(expdir, "swapin")) > 0
    _assert_rtts(expdir, "n-5", {"n-0": 20.0, "n-9": 40.0, "n-1": 40.0})
    _assert_rerun_changes_nothing(expdir)


@slow
def test_star_swapout_from_the_record_leaves_nothing(star):
    expdir, source, before = star
    _swapout_from_the_record(expdir, source)
    assert_nothing_left(expdir, before)


@slow
def test_swapout_after_interrupted_multipnode_swapin(tmp_path_factory):
    _source, expdir = _compiled(tmp_path_factory, "star10.tcl", "half", "--default-container=process", "--packing=4")
    before = host_state()
    run_dirs = [Path(v["containerize_run_dir"]) for v in _pnode_vars(expdir).values()]

    def made(*patterns):
        return lambda: any(any(d.glob(p)) for d in run_dirs for p in patterns)

    # stopped once the first switches run, then once the first uplinks or nodes' plugs run
    for ready in (made("s*.pid"), made("*.uplink.pid", "*.plug.pid", "w*.wf.pid")):
        cut_swapin(expdir, ready)
        assert any(traces(host_state(), expdir).values()), "the swap-in was cut before it made anything"
        playbook(expdir, "swapout")
        assert_nothing_left(expdir, before)


@slow
def test_testbed_mode_between_two_namespaces(tmp_path):
    """The testbed target's code path (no pnode namespace: the uplinks live in the pnode's own stack),
    run in two namespaces standing for two testbed pnodes joined by a veth. Pnode 1 names its
    experiment interface (the module adds the address), pnode 2 already has the address."""
    module = MODULES / "vde_uplinks.py"
    tag = "abcdef01"
    pnodes, nodes = [f"cz-test-tb{i}" for i in (1, 2)], [f"cz-test-node{i}" for i in (1, 2)]

    def sh(*argv):
        subprocess.run(argv, check=True, capture_output=True)

    def call(i, state, **extra):
        args = {"run_dir": str(tmp_path / f"run{i}"), "tag": tag, "state": state,
                "pnet": {"address": f"198.18.0.{i}", "prefix": 24}, **extra}
        (tmp_path / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        argv = ["ip", "netns", "exec", pnodes[i - 1], sys.executable, str(module), str(tmp_path / "args.json")]
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        result = json.loads(out)
        assert not result.get("failed"), result
        return result

    uplink = {"switch": "s0", "port": 7, "vni": 42, "tap": f"t{tag}0", "bridge": f"b{tag}0", "vxlan": f"x{tag}0"}
    try:
        for ns in pnodes + nodes:
            sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", "exp0", "netns", pnodes[0], "type", "veth", "peer", "name", "exp0", "netns", pnodes[1])
        sh("ip", "-n", pnodes[1], "addr", "add", "198.18.0.2/24", "dev", "exp0")
        sh("ip", "-n", pnodes[1], "link", "set", "exp0", "up")
        for i in (1, 2):
            run_dir = tmp_path / f"run{i}"
            run_dir.mkdir()
            sh("vde_switch", "-d", "-s", f"{run_dir}/s0.ctl", "-p", f"{run_dir}/s0.pid", "-n", "8")
        time.sleep(0.3)
        for i in (1, 2):
            peers = [f"198.18.0.{3 - i}"]
            device = {"device": "exp0"} if i == 1 else {}
            assert call(i, "present", uplinks=[{**uplink, "peers": peers}], **device)["changed"]
            assert not call(i, "present", uplinks=[{**uplink, "peers": peers}], **device)["changed"]
            sh("ip", "netns", "exec", nodes[i - 1], "vde_plug2tap", "-d", "-P", f"{tmp_path}/node{i}.pid",
               "-s", f"{tmp_path}/run{i}/s0.ctl", "-p", "1", "eth0")
            sh("ip", "-n", nodes[i - 1], "addr", "add", f"10.9.9.{i}/24", "dev", "eth0")
            sh("ip", "-n", nodes[i - 1], "link", "set", "eth0", "up")
        sh("ip", "netns", "exec", nodes[0], "ping", "-c", "2", "-W", "3", "10.9.9.2")
        for i in (1, 2):
            assert call(i, "absent", device="exp0" if i == 1 else None)["changed"]
            assert not call(i, "absent")["changed"]
            links = subprocess.run(["ip", "-n", pnodes[i - 1], "-br", "addr"], capture_output=True, text=True).stdout
            assert tag not in links and ("198.18.0.1" not in links if i == 1 else "198.18.0.2" in links), links
    finally:
        for pidfile in [*tmp_path.glob("node*.pid"), *tmp_path.glob("run*/*.pid")]:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
        for ns in pnodes + nodes:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)

