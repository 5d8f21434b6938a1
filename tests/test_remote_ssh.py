"""ssh into a node on a remote pnode (issue 13 on your own machines, issue 14): two real hosts from tests/hosts.py.

An openvz node and a qemu node with the default Debian image (sshd runs in them; the os_image role
copies the image to the hosts) and a process node, compiled with --pnode-hosts-file onto two test-bed
hosts (qemu and openvz nodes never share one). From this machine, with the experiment's key (which
stays here): `containerize ssh EXPDIR NODE hostname` and `ssh -F EXPDIR/ssh_config NODE true`, whose
ProxyCommand runs module_utils/ssh_relay.py on the node's host over the host's Ansible ssh
connection (openvz: into the container's namespace, to 127.0.0.1:22; qemu: to qemu's forward on the
host's 127.0.0.1). While a session is open nothing on the host listens on a non-loopback address but
its own sshd; after swap-out no relay, ssh_config or key is left. The Debian qemu node boots in about
45 s under TCG inside its host, in parallel with the container.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time

import pytest
import yaml

from tests import hosts as testbed
from tests.e2e import ENV, RECAP, REPO

pytestmark = pytest.mark.slow

TOPOLOGY = """set ns [new Simulator]
source tb_compat.tcl
set ct [$ns node]
set p [$ns node]
set vm [$ns node]
tb-add-node-attribute $ct containers:node_type openvz
tb-add-node-attribute $vm containers:node_type qemu
tb-add-node-attribute $p containers:node_type process
$ns duplex-link $ct $p 100Mb 2ms DropTail
$ns duplex-link $vm $p 100Mb 2ms DropTail
$ns rtproto Static
$ns run
"""
# what stays on a host from the relay while it runs: the bootstrap of connection.remote_program
RELAY_MARK = "ssh_relay"
EXTRA = json.dumps({"qemu_memory": 384, "qemu_boot_timeout": 300})

bed = testbed.fixture(2)


def _env(key) -> dict[str, str]:
    return {**ENV, "ANSIBLE_PRIVATE_KEY_FILE": str(key)}


def _playbook(expdir, name, key) -> tuple[int, str, dict]:
    cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), "-e", EXTRA, str(REPO / "playbooks" / f"{name}.yml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(key), cwd=REPO, check=False, timeout=400)
    recap = {m[0]: {"changed": int(m[2]), "failed": int(m[4])} for m in RECAP.findall(proc.stdout)}
    return proc.returncode, proc.stdout[-4000:] + proc.stderr[-1000:], recap


def _cz_ssh(expdir, key, node, *command) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "containerize.cli", "ssh", str(expdir), node, "--", *command]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(key), cwd=REPO, timeout=120, check=False)


def _on_host(host, key, script) -> str:
    return testbed.ssh(host, key, "sh", "-c", shlex.quote(script), timeout=30).stdout


def _outside_listeners(host, key) -> list[str]:
    """TCP and UDP sockets the host listens on at an address other than loopback, but its own sshd's."""
    found = []
    for line in _on_host(host, key, "ss -Hltunp").splitlines():
        fields = line.split()
        local = fields[4]
        address = local.rsplit(":", 1)[0].strip("[]")
        if address.startswith("127.") or address == "::1" or (local.endswith(":22") and '"sshd"' in line):
            continue
        if fields[0] == "udp" and local.endswith(":4789"):  # the kernel's VXLAN socket, the experiment network
            continue
        found.append(line)
    return found


def _relays(host, key) -> str:
    return _on_host(host, key, f"pgrep -af {RELAY_MARK} | grep -v pgrep; true").strip()


def test_ssh_into_openvz_and_qemu_nodes_on_remote_hosts(bed, tmp_path):
    group, key = bed
    source = tmp_path / "remote.tcl"
    source.write_text(TOPOLOGY)
    hosts_file = tmp_path / "hosts.yml"
    hosts_file.write_text("".join(f"- host: {h.address}\n  vars: {{ansible_ssh_common_args: "
                                  f"'-o UserKnownHostsFile=/dev/null'}}\n" for h in group))
    expdir = tmp_path / "exp"
    proc = subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--out", str(expdir),
                           "--pnode-hosts-file", str(hosts_file), "rssh", "two", str(source)],
                          capture_output=True, text=True, cwd=REPO, env=ENV, check=False)
    assert proc.returncode == 0, proc.stderr
    embedding = yaml.safe_load((expdir / "embedding.yaml").read_text())
    host_of = {node: group[int(embedding["nodes"][node]["pnode"].rsplit("-", 1)[1])] for node in ("ct", "vm")}
    assert host_of["ct"] != host_of["vm"]
    before = {host.name: _outside_listeners(host, key) for host in group}
    rc, out, _recap = _playbook(expdir, "swapin", key)
    try:
        assert rc == 0, out
        for node, host in host_of.items():
            # by name, with the experiment's key, through the relay on the node's host
            started = time.monotonic()
            proc = _cz_ssh(expdir, key, node, "hostname")
            assert proc.returncode == 0 and proc.stdout == f"{node}\n", proc.stdout + proc.stderr
            print(f"containerize ssh EXPDIR {node} hostname: {time.monotonic() - started:.2f} s")
            plain = subprocess.run(["ssh", "-F", str(expdir / "ssh_config"), node, "true"], capture_output=True,
                                   text=True, env=_env(key), timeout=120, check=False)
            assert plain.returncode == 0, plain.stderr
            # the node's own view: its init, the process node over the link by name
            proc = _cz_ssh(expdir, key, node, "cat /proc/1/comm; ping -c 1 -W 5 p >/dev/null && echo reached")
            assert proc.returncode == 0 and proc.stdout.split() == ["systemd", "reached"], proc.stdout + proc.stderr

            # an open session: its relay runs on the host, and nothing there listens outside loopback for it
            session = subprocess.Popen([sys.executable, "-m", "containerize.cli", "ssh", str(expdir), node, "--",
                                        "echo open; sleep 4"], stdout=subprocess.PIPE, text=True, env=_env(key),
                                       cwd=REPO)  # fmt: skip
            try:
                assert session.stdout.readline() == "open\n"
                assert RELAY_MARK in _relays(host, key)
                assert _outside_listeners(host, key) == before[host.name]
            finally:
                assert session.wait(timeout=60) == 0
            deadline = time.monotonic() + 10
            while _relays(host, key) and time.monotonic() < deadline:
                time.sleep(0.3)
            assert _relays(host, key) == ""  # each relay ends with its session
        # a node ssh does not reach: one line
        proc = _cz_ssh(expdir, key, "p", "true")
        assert proc.returncode == 2 and "is a process node" in proc.stderr, proc.stderr
    finally:
        rc, out, _recap = _playbook(expdir, "swapout", key)
    assert rc == 0, out
    assert not (expdir / "ssh_config").exists() and not (expdir / "ssh").exists()
    for each in group:
        assert _relays(each, key) == ""
        left = _on_host(each, key, "ip netns list; pgrep -a 'systemd-nspawn|vde_switch|vde_plug|qemu-system'; true")
        left = left.strip()
        assert left == "", f"{each.name}: {left}"
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert not [line for line in processes.splitlines() if "ssh-proxy" in line and str(expdir) in line]
