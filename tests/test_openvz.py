"""openvz (and embedded_pnode) nodes end to end on this machine, and the vzctl runtime against a fake vzctl.

Marked slow (real containers under systemd-nspawn, VDE, Ansible runs); CI runs them. The routed
example asks for a qemu node c-1, whose role is not part of these tests: a modified copy turns it
into a process node. The mixed run with the real qemu c-1 is the qemu role's to add.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import cpu_list, plan_split
from tests.e2e import (
    ENV,
    MODULES,
    REPO,
    assert_delay,
    assert_nothing_left,
    changed,
    compile_topology,
    host_state,
    node_exec,
    playbook,
)

pytestmark = pytest.mark.slow
ROLES = MODULES.parent.parent / "roles"
ROUTED_NODES = ["r1", "r2", "a-1", "a-2", "a-3", "b-1", "b-2", "b-3", "c-1", "c-2"]
ONE_PNODE = """
foreach n [list $r1 $r2 $a(1) $a(2) $a(3) $b(1) $b(2) $b(3) $c(1) $c(2)] {
    tb-add-node-attribute $n containers:partition 0
}
"""


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("templates")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "build-openvz-template.sh"), str(out), "busybox"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return out


def routed_source(tmp_path: Path, one_pnode: bool) -> Path:
    """routed.tcl with c(1) a process node (not qemu); optionally every node in one partition."""
    text = (REPO / "examples" / "routed.tcl").read_text()
    text = re.sub(r"^tb-add-node-attribute \$c\(1\) containers:node_type qemu$", "", text, flags=re.M)
    assert "$c(2) containers:node_type openvz" in text
    if one_pnode:
        text = text.replace("$ns rtproto Static", ONE_PNODE + "$ns rtproto Static")
    source = tmp_path / "routed.tcl"
    source.write_text(text)
    return source


def swapped_in(tmp_path_factory, template_dir, name: str, one_pnode: bool):
    src = routed_source(tmp_path_factory.mktemp(f"{name}-src"), one_pnode)
    expdir = tmp_path_factory.mktemp(name) / "exp"
    compile_topology(src, expdir, "e2e", name, "--default-container=process", "--openvz-template=busybox",
                     f"--openvz-template-dir={template_dir}")
    playbook(expdir, "swapin")
    return expdir


@pytest.fixture(scope="module")
def routed(tmp_path_factory, template_dir):
    """routed.tcl on one pnode: c-2 is an openvz container next to the process nodes."""
    expdir = swapped_in(tmp_path_factory, template_dir, "routedovz", one_pnode=True)
    yield expdir
    playbook(expdir, "swapout")


def node_entry(expdir: Path, node: str) -> tuple[dict, dict]:
    for path in (expdir / "inventory" / "host_vars").glob("*.yml"):
        host_vars = yaml.safe_load(path.read_text())
        for entry in host_vars["containerize_nodes"]:
            if entry["name"] == node:
                return host_vars, entry
    raise AssertionError(node)


def run_dir(expdir: Path, node: str) -> Path:
    host_vars, _entry = node_entry(expdir, node)
    tag = yaml.safe_load((expdir / "inventory" / "group_vars" / "all.yml").read_text())
    return Path(host_vars["containerize_root"]) / "run" / tag["containerize_exp_tag"]


def test_routed_openvz_node_and_the_rest_reach_each_other_by_name(routed):
    for target in ROUTED_NODES:
        if target != "c-2":
            proc = node_exec(routed, "c-2", "ping", "-c", "3", "-i", "0.2", "-W", "3", target)
            assert proc.returncode == 0, f"c-2 -> {target}: {proc.stdout}{proc.stderr}"
    for source in ROUTED_NODES:
        if source != "c-2":
            proc = node_exec(routed, source, "ping", "-c", "3", "-i", "0.2", "-W", "3", "c-2")
            assert proc.returncode == 0, f"{source} -> c-2: {proc.stdout}{proc.stderr}"


def test_routed_openvz_node_is_a_container_of_its_template(routed):
    proc = node_exec(routed, "c-2", "sh", "-c", "hostname; cat /etc/os-release; cat /var/containers/eid; "
                                                "cat /proc/1/comm; df -k / | tail -1")
    lines = proc.stdout.splitlines()
    assert lines[0] == "c-2", proc.stdout
    assert "containerize busybox template" in proc.stdout
    assert "routedovz" in lines
    assert "init" in lines
    assert lines[-1].split()[0] == "overlay", proc.stdout  # the default 2G: an overlay on the shared root
    rd = run_dir(routed, "c-2")
    pid = int((rd / "c-2.openvz.pid").read_text())
    assert "systemd-nspawn" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()


def test_routed_rerun_changes_nothing(routed):
    assert changed(playbook(routed, "swapin")) == 0


@pytest.mark.parametrize("breakage", ["container", "namespace", "hosts"])
def test_routed_rerun_repairs_the_container(routed, breakage):
    host_vars, entry = node_entry(routed, "c-2")
    rd = run_dir(routed, "c-2")
    if breakage == "container":
        os.kill(int((rd / "c-2.openvz.pid").read_text()), signal.SIGKILL)
    elif breakage == "namespace":
        subprocess.run(["ip", "netns", "delete", entry["namespace"]], check=True)
    else:
        hosts = Path(host_vars["containerize_root"]) / "openvz" / "routedovz.e2e" / "c-2" / "root" / "etc" / "hosts"
        hosts.write_text("127.0.0.1 localhost\n10.9.9.9 r2\n")
    time.sleep(0.3)
    assert changed(playbook(routed, "swapin")) > 0
    proc = node_exec(routed, "c-2", "ping", "-c", "3", "-i", "0.2", "-W", "3", "r1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert changed(playbook(routed, "swapin")) == 0


def test_routed_start_commands_of_containers_log_like_process_nodes(tmp_path_factory, template_dir):
    """A start command in the container, its logs where process nodes have theirs; swap-out removes all."""
    src = routed_source(tmp_path_factory.mktemp("startcmd-src"), one_pnode=True)
    text = src.read_text().replace(
        "$ns rtproto Static", 'tb-set-node-startcmd $c(2) "echo from $(hostname); exit 3"\n$ns rtproto Static')
    src.write_text(text)
    expdir = tmp_path_factory.mktemp("startcmd") / "exp"
    compile_topology(src, expdir, "e2e", "ovzcmd", "--default-container=process", "--openvz-template=busybox",
                     f"--openvz-template-dir={template_dir}", "--openvz-diskspace=100M")
    playbook(expdir, "swapin")
    try:
        host_vars, _entry = node_entry(expdir, "c-2")
        log = Path(host_vars["containerize_root"]) / "nodes" / "ovzcmd.e2e" / "c-2" / "log"
        deadline = time.monotonic() + 20
        while "exit" not in ((log / "start_command.log").read_text() if (log / "start_command.log").exists()
                             else "") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (log / "start_command.out").read_text() == "from c-2\n"
        assert re.search(r"^start .*\nexit 3\nend ", (log / "start_command.log").read_text(), re.M)
        inside = node_exec(expdir, "c-2", "sh", "-c", "cat /var/containers/log/start_command.out; df -k / | tail -1")
        assert inside.stdout.startswith("from c-2\n")
        assert int(inside.stdout.splitlines()[-1].split()[1]) <= 102_400  # --openvz-diskspace=100M
    finally:
        playbook(expdir, "swapout")
    after = host_state()
    assert not any("ovzcmd" in x for x in after["namespaces"] | after["files"] | after["processes"])
    losetup = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout
    assert "ovzcmd.e2e" not in losetup


def test_routed_two_pnodes_openvz_node_reached_over_the_uplink(tmp_path_factory, template_dir):
    """As the compiler packs it by itself: c-2 alone on pnode-0001, lanC carried between the pnodes."""
    expdir = swapped_in(tmp_path_factory, template_dir, "routedovz2", one_pnode=False)
    try:
        assert node_entry(expdir, "c-2")[0]["containerize_pnode"] == "pnode-0001"
        for other in ("r2", "c-1", "a-1"):
            proc = node_exec(expdir, "c-2", "ping", "-c", "3", "-i", "0.2", "-W", "3", other)
            assert proc.returncode == 0, f"c-2 -> {other}: {proc.stdout}"
            proc = node_exec(expdir, other, "ping", "-c", "3", "-i", "0.2", "-W", "3", "c-2")
            assert proc.returncode == 0, f"{other} -> c-2: {proc.stdout}"
    finally:
        playbook(expdir, "swapout")


# ----------------------------------------------------------------------------------------------
# the vzctl runtime, against a fake vzctl and vde_pcapplug (no OpenVZ kernel here)

FAKE_VZCTL = """#!/bin/sh
# fake vzctl: records its calls, keeps a running flag per container id
echo "vzctl $*" >> "$FAKE_LOG"
case $1 in
status)
    if [ -e "$FAKE_STATE/$2.running" ]; then echo "CTID $2 exist mounted running"
    else echo "CTID $2 exist unmounted down"; fi ;;
start) touch "$FAKE_STATE/$2.running" ;;
stop) rm -f "$FAKE_STATE/$2.running" ;;
esac
exit 0
"""
FAKE_PCAPPLUG = """#!/bin/sh
# fake vde_pcapplug -d -P PIDFILE ...: a sleeping process that names the pid file
echo "vde_pcapplug $*" >> "$FAKE_LOG"
setsid python3 -c 'import time; time.sleep(300)' -P "$3" </dev/null >/dev/null 2>&1 &
echo $! > "$3"
"""


def run_module(name: str, args: dict, env: dict, check_mode: bool = False) -> dict:
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}
    argfile = Path(env["FAKE_STATE"]) / "args.json"
    argfile.write_text(json.dumps(payload))
    proc = subprocess.run([sys.executable, str(MODULES / f"{name}.py"), str(argfile)],
                          capture_output=True, text=True, env=env, check=False)
    result = json.loads(proc.stdout)
    assert not result.get("failed"), result
    return result


SHAPED = """set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set c [$ns node]
set link0 [$ns duplex-link $a $c 100Mb 5ms DropTail]
tb-add-node-attribute $c containers:node_type openvz
$ns rtproto Static
$ns run
"""


@pytest.mark.parametrize("placement", ["two pnodes", "one pnode"])
def test_shaped_link_of_a_container_has_its_element_as_its_plug(tmp_path, template_dir, placement):
    """A container's shaped interface is opened by its cz-wire in the container's namespace (no plug, no
    private switch), as a process node's is (docs/datapath.md); the delay is the planned one. Across two
    pnodes (the default packing) the element plugs into the link's switch; on one pnode the link is joined:
    the two elements send to each other, with no switch."""
    source = tmp_path / "shaped.tcl"
    together = "\n".join(f"tb-add-node-attribute ${n} containers:partition 0" for n in "ac")
    source.write_text(SHAPED.replace("$ns rtproto", together + "\n$ns rtproto") if placement == "one pnode" else SHAPED)
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "e2e", "ovzwire", "--default-container=process", "--openvz-template=busybox",
                     f"--openvz-template-dir={template_dir}")
    planned = yaml.safe_load((expdir / "wirefilters.yaml").read_text())
    wf = next(w for wires in planned.values() for w in wires if w["node"] == "c")
    assert wf["node_plug"] and wf["node_kind"] == "openvz"
    before = host_state()
    try:
        playbook(expdir, "swapin")
        rd = run_dir(expdir, "c")
        _vars, entry = node_entry(expdir, "c")
        pid = int((rd / f"{wf['id']}.wf.pid").read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        if "cz-wire" in argv[0]:  # where cz-wire could not be built the old path stays (wirefilter)
            if placement == "one pnode":
                assert f"tap://eth0:peer://{rd / (wf['id'] + '.wf.data')},{rd / (wf['peer'] + '.wf.data')}" in argv
                assert not (rd / f"{wf['right']}.pid").exists(), "the joined link's switch runs"
            else:
                assert "tap://eth0:" + str(rd / f"{wf['right']}.ctl") in " ".join(argv), argv
            assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{entry['namespace']}").st_ino
            assert not (rd / "c.eth0.plug.pid").exists() and not (rd / f"{wf['left']}.ctl").exists()
        split = plan_split("auto", os.sched_getaffinity(0))
        if split:  # the container's processes off the data path's CPU (hv_datapath_cpus), its element on it
            inside = node_exec(expdir, "c", "grep", "Cpus_allowed_list", "/proc/1/status", "/proc/self/status")
            assert [line.split()[-1] for line in inside.stdout.splitlines()] == [split["nodes"]] * 2, inside
            assert cpu_list(os.sched_getaffinity(pid)) == split["datapath"]
        assert_delay(expdir, "a", "c", 10.0)
        assert_delay(expdir, "c", "a", 10.0)
        assert changed(playbook(expdir, "swapin")) == 0
    finally:
        playbook(expdir, "swapout")
    assert_nothing_left(expdir, before)


def test_vzctl_runtime_writes_configs_starts_plugs_and_is_idempotent(tmp_path, template_dir):
    bindir, state, root = tmp_path / "bin", tmp_path / "state", tmp_path / "root"
    for directory in (bindir, state, root / "run"):
        directory.mkdir(parents=True)
    scripts = tmp_path / "scripts"  # what the hv and openvz roles put in containerize_scripts_dir
    scripts.mkdir()
    for role in ("hv", "openvz"):
        (scripts / role).symlink_to(ROLES / role / "files")
    for name, text in (("vzctl", FAKE_VZCTL), ("vde_pcapplug", FAKE_PCAPPLUG), ("ip", "#!/bin/sh\nexit 0\n")):
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_LOG": str(state / "log"),
           "FAKE_STATE": str(state), "PYTHONPATH": str(REPO)}
    nodes = [{"name": "v1", "kind": "openvz", "namespace": "v1.x.p", "hostname": "v1", "startcmd": "true",
               "forwarding": True, "openvz_template": "busybox", "openvz_diskspace": "512M",
               "interfaces": [{"ifname": "eth0", "switch": "s0", "port": 3, "mac": "02:00:00:00:00:01",
                               "address": "10.0.0.1", "prefix": 24, "tc": {"bandwidth": 1000000}}],
               "routes": [{"dest": "10.1.0.0/16", "gateway": "10.0.0.254"}]},
              {"name": "p1", "kind": "process", "namespace": "p1.x.p"}]
    args = {"root": str(root), "run_dir": str(root / "run"), "exp_name": "x.p", "project": "p", "experiment": "x",
            "scripts_dir": str(scripts), "nodes": nodes, "template_dirs": [str(template_dir)], "runtime": "vzctl",
            "wait_booted": False,
            "vzctl_conf_dir": str(tmp_path / "vz"), "shares": [{"path": str(tmp_path), "mount": "/share",
                                                                "readonly": True}]}
    try:
        first = run_module("openvz_nodes", args, env)
        assert first["changed"] and first["runtime"] == "vzctl" and first["started"] == ["v1"]
        conf = (tmp_path / "vz" / "1000.conf").read_text()
        assert f'VE_PRIVATE="{root}/openvz/x.p/v1/root"' in conf
        assert 'DISKSPACE="524288:524288"' in conf
        assert 'NETIF="ifname=eth0,mac=02:00:00:00:00:01,host_ifname=veth1000.0"' in conf
        mount = (tmp_path / "vz" / "1000.mount").read_text()
        assert f"mount -n --bind {root}/nodes/x.p/v1 " in mount and "remount,ro,bind" in mount
        etc = root / "openvz" / "x.p" / "v1" / "root" / "etc"
        assert (etc / "rc.local").read_text() == (ROLES / "openvz" / "files" / "rc.local").read_text()
        assert (etc / "containerize" / "start-command.sh").read_text() == (
            ROLES / "hv" / "files" / "start-command.sh").read_text()
        network = (etc / "containerize" / "network.sh").read_text()
        assert '"$IP" addr add 10.0.0.1/24 broadcast + dev eth0' in network
        assert '"$IP" route replace 10.1.0.0/16 via 10.0.0.254' in network
        assert "tbf rate 1000000bit" in network and "echo 1 > /proc/sys/net/ipv4/ip_forward" in network
        log = (state / "log").read_text()
        assert "vzctl start 1000" in log
        assert f"vde_pcapplug -d -P {root}/run/v1.0.pcap.pid -s {root}/run/s0.ctl -p 3 veth1000.0" in log
        assert run_module("openvz_nodes", args, env, check_mode=True)["changed"] is False
        assert run_module("openvz_nodes", args, env)["changed"] is False
        gone = run_module("openvz_nodes", {**args, "state": "absent"}, env)
        assert gone["stopped"] == ["v1"] and "vzctl stop 1000" in (state / "log").read_text()
        assert not (tmp_path / "vz" / "1000.conf").exists()
        assert not (root / "openvz").exists()
    finally:
        pidfile = root / "run" / "v1.0.pcap.pid"
        if pidfile.exists():
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)


def test_openvz_nodes_query_and_bad_input(tmp_path):
    env = {**os.environ, "FAKE_STATE": str(tmp_path), "PYTHONPATH": str(REPO)}
    base = {"run_dir": str(tmp_path / "run"), "exp_name": "x.p", "project": "p", "experiment": "x"}
    assert run_module("openvz_nodes", {**base, "state": "query"}, env)["runtime"] == "nspawn"
    payload = {"ANSIBLE_MODULE_ARGS": {**base, "template_dirs": [str(tmp_path)], "nodes": [
        {"name": "v1", "kind": "openvz", "namespace": "v1.x.p", "openvz_template": "nothere",
         "openvz_diskspace": "lots"}]}}
    (tmp_path / "args.json").write_text(json.dumps(payload))
    proc = subprocess.run([sys.executable, str(MODULES / "openvz_nodes.py"), str(tmp_path / "args.json")],
                          capture_output=True, text=True, env={**env, **ENV}, check=False)
    result = json.loads(proc.stdout)
    assert result["failed"] and "disk space 'lots' is not a size like 2G or 500M" in result["msg"]


def test_embedded_pnode_refuses_this_machines_network(tmp_path):
    env = {**os.environ, "FAKE_STATE": str(tmp_path), "PYTHONPATH": str(REPO)}
    payload = {"ANSIBLE_MODULE_ARGS": {"run_dir": str(tmp_path), "exp_name": "x.p", "project": "p",
                                       "experiment": "x", "nodes": [{"name": "e", "kind": "embedded_pnode"}]}}
    (tmp_path / "args.json").write_text(json.dumps(payload))
    proc = subprocess.run([sys.executable, str(MODULES / "embedded_nodes.py"), str(tmp_path / "args.json")],
                          capture_output=True, text=True, env=env, check=False)
    result = json.loads(proc.stdout)
    assert result["failed"] and "refusing to reconfigure the network of the machine" in result["msg"]
