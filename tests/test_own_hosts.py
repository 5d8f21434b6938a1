"""Your own machines as pnodes, over SSH, end to end: four real hosts from tests/hosts.py.

The hosts are Debian 12 systemd-nspawn machines on one bridge, each with its own disk and sshd and
no /etc/hosts; Ansible reaches them with the test bed's key (ANSIBLE_PRIVATE_KEY_FILE) and the
modules travel by AnsiballZ over SSH (not in-process as on the local target). A small topology of
process, openvz, qemu and embedded_pnode nodes is compiled with --pnode-hosts-file onto them (packed
onto the four hosts by default: the embedded_pnode node i takes host1 for itself, its eth0 a VXLAN
device on host1 flooding to the uplink of b's switch on host2, as the compiler plans it). The
openvz nodes use the busybox template (given as the user's own template directory,
--openvz-template-dir) and the qemu node the small busybox test image (given as the user's own
containers:qemu_url), both files on this machine only (scripts/build-openvz-template.sh,
build-test-image.sh; seconds to boot, where Debian takes a minute under TCG): the roles copy them to
the hosts whose nodes use them, and the test checks they arrived there, and only there (one more
openvz node boots the default Debian image, which the os_image role copies). The test pings
across hosts with the planned delay (from process, openvz and qemu nodes, through `containerize
exec` over the pnode's connection) and over a joined link of two process nodes of one host (two
cz-wires built there, no switch), re-runs with no change (nothing copied again), power-cycles a
host and restores it, stops a host's sshd (UNREACHABLE naming it, the others untouched), and swaps
out with one host gone, leaving nothing on the others (no /etc/hosts either: they had none; no VXLAN
device or experiment-network address; host1's exp0 untouched). The embedded_pnode node i is listed,
booted, entered by exec and console over host1's connection (a shell on the host itself), and its
link's delay is changed by `containerize shape`, both measured from i to b across hosts over VXLAN.
The test bed is started and torn down by the test (runs under the e2e lock in CI).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import plan_split
from tests import hosts as testbed
from tests.e2e import ENV, REPO, delay_error

pytestmark = pytest.mark.slow

TOPOLOGY = """set ns [new Simulator]
source tb_compat.tcl
foreach n {a b c d e f g h i} { set $n [$ns node] }
set lan0 [$ns make-lan "$a $b $c" 10Mb 0ms]
$ns duplex-link $a $d 100Mb 10ms DropTail
$ns duplex-link $b $e 100Mb 5ms DropTail
$ns duplex-link $c $f 100Mb 0ms DropTail
$ns duplex-link $f $g 100Mb 0ms DropTail
$ns duplex-link $a $h 100Mb 0ms DropTail
$ns duplex-link $i $b 100Mb 15ms DropTail
$ns duplex-link $a $c 100Mb 4ms DropTail
tb-add-node-attribute $d containers:node_type openvz
tb-add-node-attribute $e containers:node_type openvz
tb-add-node-attribute $h containers:node_type openvz
tb-add-node-attribute $h containers:openvz_template debian-12
tb-add-node-attribute $g containers:node_type qemu
tb-add-node-attribute $g containers:qemu_url OWN_IMAGE
tb-add-node-attribute $i containers:node_type embedded_pnode
$ns rtproto Static
$ns run
"""
TEMPLATES = "/var/cache/containerize/openvz"  # the busybox template
IMAGE_DIR = "/var/cache/containerize/test-image"  # tests/test_qemu.py's busybox image
EXTRA = {"qemu_memory": 160, "qemu_stop_timeout": 10, "qemu_boot_timeout": 240}
# where the roles put the copies on a host (roles/qemu, roles/openvz defaults)
QEMU_COPIES = "/var/cache/containerize/qemu-images"
OS_IMAGE = "/var/cache/containerize/images/debian-12.tar.gz"  # the os_image role's, copied to the same path
OPENVZ_COPIES = "/var/cache/containerize/openvz-templates"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

bed = testbed.fixture(4)


def _env(key) -> dict[str, str]:
    return {**ENV, "ANSIBLE_PRIVATE_KEY_FILE": str(key)}


def _playbook(expdir, name, key, *extra) -> tuple[int, str, dict]:
    """Run playbooks/NAME.yml; (exit status, failures and the output's end, recap per host).

    Each host's recap also lists what changed there ("changes": [(task, result), ...], from the
    test callback record_changes), so that a failed "nothing changed" names the task.
    """
    record = expdir.parent / f".changes-{name}.jsonl"
    record.unlink(missing_ok=True)
    env = {**_env(key), "RECORD_CHANGES_FILE": str(record), "ANSIBLE_CALLBACKS_ENABLED": "record_changes",
           "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "callback_plugins")}
    cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), "-e", json.dumps(EXTRA),
           str(REPO / "playbooks" / f"{name}.yml"), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False, timeout=400)
    changes = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    recap = {m[0]: {"changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4]),
                    "changes": [(c["task"], json.dumps(c["result"])[:600]) for c in changes if c["host"] == m[0]]}
             for m in RECAP.findall(proc.stdout)}
    failures = re.findall(r"^(?:fatal|failed): .*(?:\n    .*){0,6}", proc.stdout, re.M)
    return proc.returncode, "\n".join(failures) + "\n" + proc.stdout[-2000:] + proc.stderr[-1000:], recap


def _exec(expdir, key, node, *command) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "containerize.cli", "exec", str(expdir), node, "--", *command]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(key), cwd=REPO, timeout=120, check=False)


def _rtts(expdir, key, source, target, count=10) -> list[float]:
    _exec(expdir, key, source, "ping", "-c", "1", "-W", "3", target)
    proc = _exec(expdir, key, source, "ping", "-c", str(count), "-i", "0.2", "-W", "3", target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [float(t) for t in re.findall(r"time=([\d.]+) ms", proc.stdout)]


def _experiment_left(host, key, tag) -> str:
    """What of the experiment is still on HOST (empty when nothing)."""
    script = (f"ls -d /var/containers/run/{tag} /var/containers/config/three.own /etc/hosts 2>/dev/null;"
              f" ip netns list; ip -o link | grep -E ' [tbxe]{tag}' ;"
              " pgrep -a 'vde_switch|wirefilter|vde_plug|systemd-nspawn|qemu-system'; true")
    return testbed.ssh(host, key, "sh", "-c", shlex.quote(script), timeout=30).stdout.strip()


def _nic(host, key) -> str:
    """The spare NIC's state on HOST and what the machine's network holds besides (no counters)."""
    script = (f"ip -br address show dev {testbed.SPARE_NIC}; ip -o link show dev {testbed.SPARE_NIC} | "
              f"sed 's/ qdisc.*//'; tc qdisc show dev {testbed.SPARE_NIC} | grep -Ev 'qdisc (noop|noqueue) 0: root'; "
              "ip route; ip -br address; "
              "cat /proc/sys/net/ipv4/ip_forward")
    return testbed.ssh(host, key, "sh", "-c", shlex.quote(script), timeout=30).stdout


def _cli(key, *argv, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "containerize.cli", *argv], capture_output=True, text=True,
                          env=_env(key), cwd=REPO, timeout=120, check=False, input=stdin)


def _assert_delay(rtts: list[float], want: float) -> None:
    """The brief's bar for the embedded node's link: p50 of >= 20 within 15 % or 2 ms, none below the plan."""
    print(f"i -> b, plan {want:g} ms: p50 {statistics.median(rtts):.2f}, min {min(rtts):.2f}, max {max(rtts):.2f}")
    assert len(rtts) >= 20 and min(rtts) >= want, (want, rtts)
    assert abs(statistics.median(rtts) - want) <= max(0.15 * want, 2.0), (want, statistics.median(rtts), rtts)


def _check_embedded(expdir, key, host_of, pnode_of) -> None:
    """Node i (embedded_pnode, host1 itself): listed, booted, entered over host1's ssh connection, pinging b
    across hosts with the planned delay, shaped live."""
    assert pnode_of["i"] == "pnode-0000", pnode_of
    host = host_of["pnode-0000"]
    plan = json.loads((expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text())["containerize_nodes"]
    (iface,) = plan[0]["interfaces"]
    listed = _cli(key, "list", str(expdir))
    assert listed.returncode == 0 and "pnode-0000: i" in listed.stdout, listed.stdout + listed.stderr
    status = _cli(key, "status", str(expdir), "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    node = next(n for n in json.loads(status.stdout)["nodes"] if n["name"] == "i")
    assert (node.get("kind"), node["state"]) == ("embedded_pnode", "booted"), node
    # its eth0 is a VXLAN device on host1 (the link's other end, b, is on another host)
    assert iface["vxlan"]["peers"] and iface["vxlan"]["device"].startswith("e"), iface
    device = iface["vxlan"]["device"]
    shown = _exec(expdir, key, "i", "sh", "-c", f"hostname; ip -4 -o address show dev {device}; exit 3")
    assert shown.returncode == 3 and shown.stdout.startswith(host.name + "\n"), shown.stdout + shown.stderr
    assert f" {iface['address']}/{iface['prefix']} " in shown.stdout, shown.stdout
    names = _exec(expdir, key, "i", "getent", "hosts", "a", "b")  # the experiment's hosts block on host1
    assert names.returncode == 0 and len(names.stdout.splitlines()) == 2, names.stdout + names.stderr
    # its console: a shell on the host (a terminal over ssh -tt), which runs what it is given
    console = _cli(key, "console", str(expdir), "i", stdin="echo CZ$((6 * 7))\nexit 5\n")
    assert console.returncode == 5 and "CZ42" in console.stdout, console.stdout + console.stderr
    # by name across hosts with the planned 2 x 15 ms (shaped on b's side: i has no wirefilter of its own),
    # then 2 x 25 ms after `containerize shape` changed the link live
    _assert_delay(_rtts(expdir, key, "i", "b", count=20), 30.0)
    shape = _cli(key, "shape", str(expdir), iface["substrate"], "--delay", "25ms")
    assert shape.returncode == 0, shape.stdout + shape.stderr
    links = _cli(key, "status", str(expdir), "--links")
    hop = [line for line in links.stdout.splitlines() if line.startswith(iface["substrate"] + " ")]
    assert hop and all(" 25ms " in line for line in hop), links.stdout + links.stderr
    _assert_delay(_rtts(expdir, key, "i", "b", count=20), 50.0)


def _cached(host, key) -> dict[str, str]:
    """The files under the host's /var/cache/containerize (its own disk; nothing is bound from here): {path: sha256}."""
    proc = testbed.ssh(host, key, "sh", "-c", shlex.quote(
        "find /var/cache/containerize -type f -exec sha256sum {} + 2>/dev/null; true"), timeout=60)
    return {path: digest for digest, path in (line.split(None, 1) for line in proc.stdout.splitlines())}


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _assert_copied(group, key, pnode_of, image: str, template: str) -> None:
    """Each host has the copies of the image and template its nodes use (and only those), none of the rest."""
    for index, host in enumerate(group):
        pnode = f"pnode-{index:04d}"
        cached = _cached(host, key)
        want = set()
        if pnode == pnode_of["g"]:
            want |= {(QEMU_COPIES, "rootfs.tar.gz", _sha256(image)), (QEMU_COPIES, "rootfs.tar.gz.sha256",
                                                                      _sha256(image + ".sha256"))}
        if pnode in (pnode_of["d"], pnode_of["e"]):
            want.add((OPENVZ_COPIES, "busybox.tar.gz", _sha256(template)))
        if pnode == pnode_of["h"]:
            want |= {(str(Path(OS_IMAGE).parent), name, _sha256(Path(OS_IMAGE).parent / name))
                     for name in (Path(OS_IMAGE).name, Path(OS_IMAGE).name + ".sha256")}
        got = {(QEMU_COPIES if path.startswith(QEMU_COPIES + "/") else str(Path(path).parent), Path(path).name,
                digest) for path, digest in cached.items()}
        assert got == want, f"{host.name} ({pnode}): {cached}"


def test_own_hosts(bed, tmp_path):
    group, key = bed
    subprocess.run(["bash", str(REPO / "scripts" / "build-openvz-template.sh"), TEMPLATES], check=True,
                   capture_output=True)
    subprocess.run(["bash", str(REPO / "scripts" / "build-test-image.sh"), IMAGE_DIR], check=True,
                   capture_output=True)
    # the user's own files: copies of the shared ones, which another checkout's tests may rebuild meanwhile
    # (a rebuilt image is a changed image: copied again and its node restarted, as it should be)
    own_templates, own_image = tmp_path / "templates", tmp_path / "images" / "rootfs.tar.gz"
    own_templates.mkdir()
    own_image.parent.mkdir()
    shutil.copy(f"{TEMPLATES}/busybox.tar.gz", own_templates)
    shutil.copy(f"{IMAGE_DIR}/rootfs.tar.gz", own_image)
    (own_image.parent / "rootfs.tar.gz.sha256").write_text(_sha256(own_image) + "\n")
    source = tmp_path / "own.tcl"
    source.write_text(TOPOLOGY.replace("OWN_IMAGE", str(own_image)))
    hosts_file = tmp_path / "hosts.yml"
    hosts_file.write_text("".join(
        f"- host: {h.address}\n  vars: {{ansible_ssh_common_args: '-o UserKnownHostsFile=/dev/null'"
        f"}}\n" for h in group))
    expdir = tmp_path / "exp"
    proc = subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--out", str(expdir),
                           "--default-container", "process", "--pnode-hosts-file", str(hosts_file),
                           "--openvz-template", "busybox", "--openvz-template-dir", str(own_templates), "own", "three",
                           str(source)], capture_output=True, text=True, cwd=REPO, env=ENV, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "on 4 pnodes" in proc.stdout
    embedding = yaml.safe_load((expdir / "embedding.yaml").read_text())
    pnode_of = {name: node["pnode"] for name, node in embedding["nodes"].items()}
    tag = next(line.split('"')[3] for line in (expdir / "inventory" / "group_vars" / "all.yml").read_text()
               .splitlines() if '"containerize_exp_tag"' in line)
    host_of = {f"pnode-{index:04d}": host for index, host in enumerate(group)}
    qemu_host, openvz_host = host_of[pnode_of["g"]], host_of[pnode_of["d"]]
    nic_before = _nic(group[0], key)
    rc, out, recap = _playbook(expdir, "swapin", key)
    try:
        assert rc == 0, out
        _check_embedded(expdir, key, host_of, pnode_of)
        # across hosts, by name (the hosts had no /etc/hosts), with the planned 2 x 10 ms
        assert pnode_of["a"] != pnode_of["d"], pnode_of
        assert (err := delay_error(_rtts(expdir, key, "a", "d"), 20.0)) is None, err
        assert _exec(expdir, key, "d", "ping", "-c", "1", "-W", "3", "f").returncode == 0
        # a and c share a host: their shaped link is joined there (two cz-wires, built on the host, sending to
        # each other with no switch)
        assert pnode_of["a"] == pnode_of["c"], pnode_of
        wires = testbed.ssh(host_of[pnode_of["a"]], key, "pgrep", "-af", "cz-wire", check=False).stdout
        assert wires.count("peer://") == 2, wires
        names = {name for entry in yaml.safe_load((expdir / "inventory" / "group_vars" / "all.yml").read_text())
                 ["containerize_hosts"] for name in entry["names"]}
        on_link = next(name for name in names if name.startswith("c-link-") and f"a{name[1:]}" in names)
        assert (err := delay_error(_rtts(expdir, key, "a", on_link), 8.0)) is None, err  # not c: its LAN address
        # a and d run off their hosts' data-path CPU (hv_datapath_cpus auto; the hosts have this machine's CPUs)
        split = plan_split("auto", os.sched_getaffinity(0))
        for node, status in (("a", "/proc/self/status"), ("d", "/proc/1/status")) if split else ():
            shown = _exec(expdir, key, node, "grep", "Cpus_allowed_list", status)
            assert shown.stdout.split()[-1:] == [split["nodes"]], (node, shown.stdout, shown.stderr)
        # the qemu node, entered over its pnode's ssh connection: by name to a node of another host
        assert pnode_of["g"] != pnode_of["a"], pnode_of
        ping = _exec(expdir, key, "g", "ping", "-c", "2", "-W", "5", "a")
        assert ping.returncode == 0 and "2 packets received" in ping.stdout, ping.stdout + ping.stderr
        assert _exec(expdir, key, "g", "sh", "-c", "exit 4").returncode == 4
        # the user's own image and template, and the Debian image, reached the hosts that run their nodes
        _assert_copied(group, key, pnode_of, str(own_image), str(own_templates / "busybox.tar.gz"))
        assert _exec(expdir, key, "h", "ping", "-c", "1", "-W", "3", "a").returncode == 0  # Debian, across hosts
        info = subprocess.run([sys.executable, "-m", "containerize.cli", "info", str(expdir), "g", "--json"],
                              capture_output=True, text=True, env=_env(key), cwd=REPO, timeout=120, check=False)
        assert info.returncode == 0 and json.loads(info.stdout)["node"] == "g", info.stdout + info.stderr
        rc, out, recap = _playbook(expdir, "swapin", key)
        assert rc == 0 and sum(r["changed"] for r in recap.values()) == 0, out

        # a power-cycled host (its nodes gone, its disk kept) is restored; only it changes
        testbed.power_cycle(openvz_host)
        rc, out, recap = _playbook(expdir, "swapin", key)
        assert rc == 0, out
        # (the one change pnode-0001 once reported here was its qemu node's image, rebuilt meanwhile by another
        # checkout's build-test-image.sh: its stamp named the script's path; the node boots a copy of its own now)
        assert recap[pnode_of["d"]]["changed"] > 0, recap
        assert all(r["changed"] == 0 and r["failed"] == 0 for h, r in recap.items() if h != pnode_of["d"]), recap
        assert _exec(expdir, key, "a", "ping", "-c", "1", "-W", "3", "d").returncode == 0

        # sshd down: UNREACHABLE names that host; the others' nodes keep running
        testbed.sshd_down(qemu_host)
        rc, out, recap = _playbook(expdir, "swapin", key)
        assert rc != 0 and recap[pnode_of["g"]]["unreachable"] == 1, out
        assert all(r["unreachable"] == 0 and r["failed"] == 0 for h, r in recap.items() if h != pnode_of["g"]), recap
        assert _exec(expdir, key, "a", "ping", "-c", "1", "-W", "3", "b").returncode == 0
        testbed.sshd_up(qemu_host)

        # swap-out with one host gone: the others are cleaned, the lost one is named
        testbed.power_off(qemu_host)
        rc, out, recap = _playbook(expdir, "swapout", key)
        assert rc != 0 and recap[pnode_of["g"]]["unreachable"] == 1, out
        for host in group:
            if host is not qemu_host:
                assert _experiment_left(host, key, tag) == "", f"{host.name}: {_experiment_left(host, key, tag)}"
        assert _nic(group[0], key) == nic_before  # exp0 down again, no address, no qdisc; routes as they were
    finally:
        if qemu_host.nspawn_pid() is not None:
            _playbook(expdir, "swapout", key)
