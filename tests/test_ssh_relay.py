"""module_utils/ssh_relay.py, the pnode side of `containerize ssh`, run as it is on a remote pnode.

The relay is started exactly as ssh-proxy starts it on a remote pnode (connection.remote_program: the
module's source handed to `python3 -c`), minus the ssh hop, against a stand-in for qemu's loopback
forward of a node's sshd: a TCP server on 127.0.0.1 that greets like sshd and echoes. The openvz path
(setns into the container's namespace) runs for real in tests/test_remote_ssh.py and test_os_nodes.py.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ansible_collections.containerize.deploy.plugins.module_utils import ssh_relay
from containerize.commands.ssh import RELAY_MODULES, remote_proxy_argv
from containerize.connection import remote_program
from containerize.expdir import ExperimentDir
from tests.e2e import ENV, REPO

GREETING = b"SSH-2.0-OpenSSH_9.2p1 stand-in\r\n"


class FakeSshd:
    """A loopback TCP server: the first CLOSE_FIRST connections close at once (sshd not up yet behind
    qemu's forward), later ones greet and echo what they get until the client stops sending."""

    def __init__(self, close_first: int = 0):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.close_first = close_first
        self.connections = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _peer = self.server.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections <= self.close_first:
                conn.close()
                continue
            with conn:
                conn.sendall(GREETING)
                while data := conn.recv(65536):
                    conn.sendall(data)

    def close(self):
        self.server.close()


def relay_on_pnode(run_dir: Path, kind: str, node: str, data: bytes, timeout=30) -> subprocess.CompletedProcess:
    return subprocess.run(remote_program(RELAY_MODULES, str(run_dir), kind, node), input=data, capture_output=True,
                          timeout=timeout, check=False)  # fmt: skip


def test_relay_reaches_a_qemu_nodes_forward_and_relays_both_ways(tmp_path):
    sshd = FakeSshd(close_first=2)
    try:
        (tmp_path / "vm.ssh-port").write_text(f"{sshd.port}\n")
        payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
        proc = relay_on_pnode(tmp_path, "qemu", "vm", payload)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == GREETING + payload
        assert sshd.connections == 3  # waited through two closed connections for the greeting
    finally:
        sshd.close()


def test_relay_says_in_one_line_why_it_cannot(tmp_path):
    proc = relay_on_pnode(tmp_path, "qemu", "vm", b"")
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [
        f"containerize ssh-proxy: node 'vm': no ssh port recorded ({tmp_path}/vm.ssh-port); is it swapped in?"]
    proc = relay_on_pnode(tmp_path, "openvz", "ct", b"")
    assert proc.returncode == 2 and b"node 'ct' is an openvz container that is not running here" in proc.stderr
    proc = relay_on_pnode(tmp_path, "qemu", "../x", b"")
    assert proc.returncode == 2 and proc.stderr == b"containerize ssh-proxy: '../x' is not a node name\n"
    proc = relay_on_pnode(tmp_path, "process", "p", b"")
    assert proc.returncode == 2 and b"ssh reaches qemu and openvz nodes" in proc.stderr


def test_connect_gives_up_after_its_timeout(tmp_path):
    sshd = FakeSshd(close_first=1000)
    try:
        (tmp_path / "vm.ssh-port").write_text(f"{sshd.port}\n")
        started = time.monotonic()
        try:
            ssh_relay.connect(str(tmp_path), "qemu", "vm", timeout=1.0)
        except ssh_relay.Unreachable as exc:
            assert str(exc) == "node 'vm': cannot reach its sshd: closed before sshd's greeting"
        else:
            raise AssertionError("connected")
        assert time.monotonic() - started < 5
    finally:
        sshd.close()


def test_ssh_proxy_of_a_remote_node_is_the_relay_over_the_pnodes_ansible_connection(tmp_path, monkeypatch):
    """What ssh-proxy runs for a node on a remote pnode: Ansible's ssh command line for that pnode, whose one
    remote command runs the relay with python3; names travel as quoted arguments, never as shell text."""
    source = tmp_path / "t.tcl"
    source.write_text("set ns [new Simulator]\nsource tb_compat.tcl\nset ct [$ns node]\nset vm [$ns node]\n"
                      "tb-add-node-attribute $ct containers:node_type openvz\n"
                      "tb-add-node-attribute $vm containers:node_type qemu\n$ns run\n")
    proc = subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--out", str(tmp_path / "exp"),
                           "--pnode-hosts", "192.0.2.7,192.0.2.8", "proj", "exp", str(source)],
                          capture_output=True, text=True, env=ENV, cwd=REPO, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    monkeypatch.setitem(os.environ, "ANSIBLE_PRIVATE_KEY_FILE", "/keys/bed")
    expdir = ExperimentDir(tmp_path / "exp")
    for node, kind in (("ct", "openvz"), ("vm", "qemu")):
        argv = remote_proxy_argv(expdir, node)
        pnode = expdir.pnode_of(node)
        assert argv[0] == "ssh" and argv[-2] == expdir.pnode_vars(pnode)["ansible_host"], argv
        assert 'IdentityFile="/keys/bed"' in argv and "-tt" not in argv
        remote = shlex.split(argv[-1])
        assert remote[:2] == ["python3", "-c"] and remote[-4:] == [RELAY_MODULES[-1], expdir.run_dir(pnode), kind, node]
