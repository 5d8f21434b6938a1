"""qemu processes on a pnode: the QMP client, stopping nodes, finding them in /proc, probing KVM.

Standard library only (see daemons.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    kill_many,
    proc_alive,
    read_json,
    read_text,
    wait_for,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import NAME_RE


def qopt(value):
    """Escape a value for a qemu -option list (commas are doubled)."""
    return str(value).replace(",", ",,")


def qmp(path, command, timeout=2.0):
    """Send one QMP COMMAND to the socket PATH; True when qemu accepted it."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            reader = sock.makefile("rb")
            json.loads(reader.readline())  # greeting
            for execute in ("qmp_capabilities", command):
                sock.sendall(json.dumps({"execute": execute}).encode() + b"\n")
                while True:
                    reply = json.loads(reader.readline() or b"{}")
                    if "event" not in reply:
                        break
                if "error" in reply or not reply:
                    return False
            return True
    except (OSError, ValueError):
        return False


def stop_nodes(nodes, stop_timeout, timeout):
    """Stop NODES [(name, pid, qmp socket)]: power down, then quit, then kill."""
    alive = [(name, pid, sock) for name, pid, sock in nodes if pid and proc_alive(pid)]
    if not alive:
        return
    asked = [(pid, sock) for _name, pid, sock in alive if qmp(sock, "system_powerdown")]

    def all_dead(items):
        return not any(proc_alive(pid) for pid, _sock in items)

    if asked:
        wait_for(lambda: all_dead(asked), stop_timeout)
    rest = [(pid, sock) for _name, pid, sock in alive if proc_alive(pid)]
    quit_asked = [(pid, sock) for pid, sock in rest if qmp(sock, "quit")]
    if quit_asked:
        wait_for(lambda: all_dead(quit_asked), min(timeout, 10))
    kill_many([(pid, None) for _name, pid, _sock in alive], min(timeout, 10))


def scan_qemu(run_dir):
    """{node name: pid} of live qemu processes whose -pidfile is in RUN_DIR (found in /proc, so
    nodes whose pid file was removed are still found)."""
    found = {}
    prefix = run_dir + os.sep
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        for flag, value in zip(args, args[1:], strict=False):
            if flag == "-pidfile" and value.startswith(prefix) and value.endswith(".qemu.pid"):
                name = value[len(prefix) : -len(".qemu.pid")]
                if NAME_RE.match(name) and proc_alive(int(entry)):
                    found[name] = int(entry)
    return found


def probe_accel(cache, kernel, probe_timeout, check):
    """('kvm' or 'tcg', why): kvm when a KVM node prints on its serial console within PROBE_TIMEOUT.

    The answer is kept in CACHE (per qemu binary, kernel and pnode kernel); in CHECK mode nothing
    is probed or written.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "no usable /dev/kvm"
    qemu_bin = shutil.which("qemu-system-x86_64")
    if not qemu_bin:
        return "tcg", "no qemu-system-x86_64"
    key = hashlib.sha256(
        f"{qemu_bin}:{os.stat(qemu_bin).st_mtime}:{kernel}:{os.uname().release}".encode()
    ).hexdigest()[:12]
    path = os.path.join(cache, f"accel-{key}.json")
    cached = read_json(path)
    if cached and cached.get("accel") in ("kvm", "tcg"):
        return cached["accel"], cached.get("why", "cached")
    if check:
        return "tcg", "not probed (check mode)"
    os.makedirs(cache, mode=0o755, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cz-kvm-probe.") as tmp:
        serial = os.path.join(tmp, "serial")
        argv = [qemu_bin, "-machine", "pc,accel=kvm", "-cpu", "host", "-m", "128", "-nodefaults", "-no-user-config",
                "-display", "none", "-kernel", kernel, "-append", "console=ttyS0 panic=-1",
                "-chardev", f"file,id=s0,path={qopt(serial)}", "-serial", "chardev:s0", "-no-reboot"]  # fmt: skip
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # noqa: S603
                                    stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        except OSError as exc:
            return "tcg", f"probe failed: {exc}"
        try:
            ok = wait_for(lambda: "Linux version" in (read_text(serial) or ""), probe_timeout, step=0.05)
        finally:
            proc.kill()
            proc.wait()
    result = ("kvm", "probe booted") if ok else ("tcg", f"KVM node silent for {probe_timeout:g} s")
    write_json(path, {"accel": result[0], "why": result[1]})
    return result
