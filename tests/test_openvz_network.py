"""openvz nodes, status tells the truth on a re-run that does not reboot them (issue 13).

rc.local checks a container's interfaces, addresses and routes at boot and writes the reasons to its
log/failed. A re-run of swap-in leaves a running container alone, so it checks the same plan from
the pnode through the container's network namespace (module_utils/net_check.py, called by
openvz_nodes after process_nodes repaired what it could) and makes log/failed say what is still
missing, or go. End to end with the busybox template: an address and a route taken away from the
host side come back on the re-run, a failure recorded at boot is cleared, the container is not
rebooted, and the next re-run changes nothing. The check's words are tested on a namespace made here.
ct has a second interface, to the openvz node h: rc.local once looked for it in /sys/class/net, which
under nspawn lists the pnode's interfaces, and ct ended `failed` with `eth1: no such interface`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.containerize.deploy.plugins.module_utils.net_check import failed_update, problems_in
from containerize.expdir import ExperimentDir
from tests.e2e import ENV, REPO, changed, compile_topology, node_exec, playbook, playbook_changes

pytestmark = pytest.mark.slow

TOPOLOGY = """set ns [new Simulator]
source tb_compat.tcl
set ct [$ns node]
set r [$ns node]
set p [$ns node]
set h [$ns node]
foreach n [list $ct $h] { tb-add-node-attribute $n containers:node_type openvz }
foreach n [list $ct $r $p $h] { tb-add-node-attribute $n containers:partition 0 }
$ns duplex-link $ct $r 100Mb 5ms DropTail
$ns duplex-link $r $p 100Mb 0ms DropTail
$ns duplex-link $ct $h 100Mb 0ms DropTail
$ns rtproto Static
$ns run
"""
NS = "cz-a13-netcheck"


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def status_of(expdir: Path, node: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "containerize.cli", "status", str(expdir), "--json"],
                          capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    nodes = found.get("nodes", found)
    if isinstance(nodes, list):
        return next(n for n in nodes if n.get("name") == node)
    return nodes[node]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    work = tmp_path_factory.mktemp("ovznet")
    templates = work / "templates"
    subprocess.run(["bash", str(REPO / "scripts" / "build-openvz-template.sh"), str(templates), "busybox"],
                   capture_output=True, check=True)
    (work / "net.tcl").write_text(TOPOLOGY)
    expdir = work / "exp"
    compile_topology(work / "net.tcl", expdir, "e2e", "ovznet", "--default-container=process",
                     "--openvz-template=busybox", f"--openvz-template-dir={templates}")
    try:
        playbook(expdir, "swapin")  # (fails when a node is not booted)
        yield expdir
    finally:
        playbook(expdir, "swapout")


def test_a_container_with_two_interfaces_boots_with_both(experiment):
    exp = ExperimentDir(experiment)
    host_vars = yaml.safe_load(exp.host_vars_path(exp.pnode_of("ct")).read_text())
    entry = next(n for n in host_vars["containerize_nodes"] if n["name"] == "ct")
    assert [i["ifname"] for i in entry["interfaces"]] == ["eth0", "eth1"], entry
    for node in ("ct", "h"):
        state = status_of(experiment, node)
        assert state["state"] == "booted", state
    assert not (Path(exp.node_dir("ct")) / "log" / "failed").exists()
    for iface in entry["interfaces"]:
        assert f" {iface['address']}/{int(iface['prefix'])} " in ip("-n", entry["namespace"], "-o", "-4", "address",
                                                                   "show", "dev", iface["ifname"])
    proc = node_exec(experiment, "h", "ping", "-c", "2", "-i", "0.2", "-W", "3", "p")  # through ct's both
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rerun_repairs_the_network_of_a_running_container_and_clears_its_failure(experiment):
    exp = ExperimentDir(experiment)
    host_vars = yaml.safe_load(exp.host_vars_path(exp.pnode_of("ct")).read_text())
    entry = next(n for n in host_vars["containerize_nodes"] if n["name"] == "ct")
    ns = entry["namespace"]
    iface = next(i for i in entry["interfaces"] if i.get("address"))
    cidr = f"{iface['address']}/{int(iface['prefix'])}"
    route = entry["routes"][0]
    log = Path(exp.node_dir("ct")) / "log"
    boots = (log / "boot.log").read_text()
    assert status_of(experiment, "ct")["state"] == "booted"

    # taken away from the host side while the container runs; and a failure as rc.local records it at boot
    ip("-n", ns, "route", "del", route["dest"], "via", route["gateway"])
    ip("-n", ns, "address", "del", cidr, "dev", iface["ifname"])  # (the routes through it go with it)
    (log / "failed").write_text(f"{iface['ifname']}: no address {cidr}\n")
    state = status_of(experiment, "ct")
    assert state["state"] == "failed" and cidr in state["detail"], state

    changes = playbook_changes(experiment, "swapin")
    openvz = [c["result"] for c in changes if c["task"].endswith("Make, configure and start the containers")]
    assert len(openvz) == 1, changes
    notes = openvz[0]["nodes"]["ct"]
    assert any(n.startswith(f"network as planned (was: {iface['ifname']}: no address") for n in notes), notes
    assert openvz[0]["started"] == [] and openvz[0]["restarted"] == [], openvz[0]
    assert f" {cidr} " in ip("-n", ns, "-o", "-4", "address", "show", "dev", iface["ifname"])
    assert f"via {route['gateway']}" in ip("-n", ns, "route", "show", route["dest"])
    assert not (log / "failed").exists()
    assert (log / "boot.log").read_text() == boots  # not rebooted
    assert status_of(experiment, "ct")["state"] == "booted"
    assert changed(playbook(experiment, "swapin")) == 0


@pytest.fixture
def namespace():
    subprocess.run(["ip", "netns", "delete", NS], capture_output=True, check=False)
    ip("netns", "add", NS)
    try:
        ip("-n", NS, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
        ip("-n", NS, "address", "add", "10.9.0.1/24", "dev", "eth0")
        ip("-n", NS, "link", "set", "peer0", "up")
        ip("-n", NS, "link", "set", "eth0", "up")
        ip("-n", NS, "route", "add", "10.9.9.0/24", "via", "10.9.0.254")
        yield f"/run/netns/{NS}"
    finally:
        ip("netns", "delete", NS)


def test_check_names_what_is_missing_in_rc_locals_words(namespace, tmp_path):
    spec = {"interfaces": [{"ifname": "eth0", "address": "10.9.0.1", "prefix": 24},
                           {"ifname": "eth1", "address": "10.9.1.1", "prefix": 24},
                           {"ifname": "eth2"}],  # no address: not checked, as rc.local does not
            "routes": [{"dest": "10.9.9.0/24", "gateway": "10.9.0.254"},
                       {"dest": "10.9.8.0/24", "gateway": "10.9.0.254"}]}
    assert problems_in(namespace, spec) == ["eth1: no such interface", "no route to 10.9.8.0/24 via 10.9.0.254"]
    ip("-n", NS, "link", "set", "eth0", "down")  # (its routes go with it)
    assert problems_in(namespace, spec) == ["eth0: down", "eth1: no such interface",
                                            "no route to 10.9.9.0/24 via 10.9.0.254",
                                            "no route to 10.9.8.0/24 via 10.9.0.254"]
    ip("-n", NS, "address", "del", "10.9.0.1/24", "dev", "eth0")
    assert problems_in(namespace, spec)[0] == "eth0: no address 10.9.0.1/24"
    assert problems_in(f"/run/netns/{NS}-none", spec)[0].startswith("no network namespace (")

    problems = problems_in(namespace, spec)
    note, action = failed_update(str(tmp_path), problems)
    assert note.startswith("network not as planned: eth0: no address 10.9.0.1/24; eth1: no such interface")
    action()
    assert (tmp_path / "failed").read_text() == "; ".join(problems) + "\n"
    assert failed_update(str(tmp_path), problems) is None  # said already: no change
    note, action = failed_update(str(tmp_path), [])
    assert note.startswith("network as planned (was: eth0: no address")
    action()
    assert not (tmp_path / "failed").exists() and failed_update(str(tmp_path), []) is None
