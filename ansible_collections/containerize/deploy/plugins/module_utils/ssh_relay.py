"""Where a qemu or openvz node's sshd is, and a relay of bytes to it: the pnode side of `containerize ssh`.

The ssh client runs where the playbook ran, with the experiment's key (which never leaves that
machine); its ProxyCommand (`containerize ssh-proxy EXPDIR NODE`) needs a byte stream to the node's
sshd made on the node's pnode, without any pnode address:

- ``openvz``: enter the container's network namespace (setns on its init's /proc/PID/ns/net, the
  child of the systemd-nspawn whose pid is in RUN_DIR/NODE.openvz.pid) and connect to 127.0.0.1:22;
- ``qemu``: connect to 127.0.0.1:PORT, qemu's forward of the node's control NIC to its port 22 (PORT
  in RUN_DIR/NODE.ssh-port, written by the qemu module).

Nothing listens anywhere: the relay only connects. On the local target ssh-proxy calls proxy() in its
own process; on a remote pnode this file (with names.py) is sent over the pnode's ssh connection
(containerize/connection.py remote_program) and main() runs it there with python3, the ssh connection's
standard input and output being the stream. Standard library only (see daemons.py).
"""

from __future__ import annotations

import ctypes
import os
import selectors
import socket
import sys
import time

from ansible_collections.containerize.deploy.plugins.module_utils.names import valid_name

CLONE_NEWNET = 0x40000000
KINDS = ("qemu", "openvz")


class Unreachable(RuntimeError):
    """The node's sshd cannot be reached (the message says why, naming the node)."""


def openvz_leader(run_dir, node):
    """Pid of the init of NODE's container: the child of systemd-nspawn (the openvz role's NODE.openvz.pid)."""
    pidfile = os.path.join(run_dir, f"{node}.openvz.pid")
    try:
        with open(pidfile, encoding="ascii") as handle:
            nspawn = int(handle.read().split()[0])
        with open(f"/proc/{nspawn}/task/{nspawn}/children", encoding="ascii") as handle:
            children = handle.read().split()
    except (OSError, ValueError, IndexError):
        raise Unreachable(f"node {node!r} is an openvz container that is not running here "
                          f"(no live systemd-nspawn in {pidfile}); swap in first") from None
    if not children:
        raise Unreachable(f"node {node!r}: its container has no init yet (systemd-nspawn {nspawn} is starting)")
    return int(children[0])


def enter_netns(path):
    """Move this process (its only thread) into the network namespace at PATH."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise Unreachable(f"cannot enter {path}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def sshd_address(run_dir, kind, node):
    """(host, port) of NODE's sshd as this process sees it; an openvz node's namespace is entered first."""
    if not valid_name(node):
        raise Unreachable(f"{node!r} is not a node name")
    if kind == "openvz":
        enter_netns(f"/proc/{openvz_leader(run_dir, node)}/ns/net")
        return ("127.0.0.1", 22)
    if kind != "qemu":
        raise Unreachable(f"node {node!r} is a {kind} node; ssh reaches {' and '.join(KINDS)} nodes")
    port_file = os.path.join(run_dir, f"{node}.ssh-port")
    try:
        with open(port_file, encoding="ascii") as handle:
            return ("127.0.0.1", int(handle.read().split()[0]))
    except (OSError, ValueError, IndexError):
        raise Unreachable(f"node {node!r}: no ssh port recorded ({port_file}); is it swapped in?") from None


def connect(run_dir, kind, node, timeout=60.0):
    """A TCP connection to NODE's sshd and sshd's greeting.

    A node that just booted may not run sshd yet (it makes its host keys first): qemu's forward then
    accepts and closes at once. Wait for the greeting, trying again until TIMEOUT.
    """
    address = sshd_address(run_dir, kind, node)
    deadline = time.monotonic() + timeout
    why = "no answer"
    while True:
        try:
            sock = socket.create_connection(address, timeout=5)
            greeting = sock.recv(4096)
            if greeting:
                sock.settimeout(None)
                return sock, greeting
            sock.close()
            why = "closed before sshd's greeting"
        except OSError as exc:
            why = exc.strerror or str(exc)
        if time.monotonic() >= deadline:
            raise Unreachable(f"node {node!r}: cannot reach its sshd: {why}")
        time.sleep(0.5)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def relay(sock, stdin=0, stdout=1):
    """Copy STDIN to SOCK and SOCK to STDOUT until the node closes the connection.

    The socket is never written while it would block (what waits is kept, and STDIN is not read
    meanwhile), so the node's answer keeps flowing however much the client sends.
    """
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(stdin, selectors.EVENT_READ, "in")
    selector.register(sock, selectors.EVENT_READ, "sock")
    pending = b""
    reading = True
    while True:
        for key, events in selector.select():
            if key.data == "in":
                pending = os.read(stdin, 65536)
                selector.unregister(stdin)
                if pending:
                    selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, "sock")
                else:  # the client is done sending: tell sshd, keep reading its answer
                    reading = False
                    sock.shutdown(socket.SHUT_WR)
                continue
            if events & selectors.EVENT_WRITE and pending:
                try:
                    pending = pending[sock.send(pending):]
                except BlockingIOError:
                    pass
                if not pending:
                    selector.modify(sock, selectors.EVENT_READ, "sock")
                    if reading:
                        selector.register(stdin, selectors.EVENT_READ, "in")
            if events & selectors.EVENT_READ:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    return
                write_all(stdout, data)


def proxy(run_dir, kind, node, stdin=0, stdout=1, timeout=60.0):
    """Connect to NODE's sshd and relay STDIN/STDOUT to it until either side closes."""
    sock, greeting = connect(run_dir, kind, node, timeout)
    try:
        write_all(stdout, greeting)
        relay(sock, stdin, stdout)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()


def main(argv):
    """`RUN_DIR KIND NODE`: the relay on a pnode (see the module's doc); 2 with one line when it cannot."""
    if len(argv) != 3:
        print("usage: ssh_relay RUN_DIR KIND NODE", file=sys.stderr)
        return 2
    try:
        proxy(*argv)
    except Unreachable as exc:
        print(f"containerize ssh-proxy: {exc}", file=sys.stderr)
        return 2
    return 0
