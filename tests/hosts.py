"""A test bed of real hosts on this machine: Debian 12 systemd-nspawn machines on one bridge, over SSH.

Each host is what a user's own machine is to containerize: its own root file system (an overlay with
its own upper directory over one shared Debian root), its own network namespace with two interfaces
(eth0, a veth into the bridge `cztb0` with the host's address, and exp0, a spare NIC on the same bridge,
down and without an address, for an embedded_pnode node to take over), its own systemd and sshd,
reached from this machine as root with a key made for the test bed. The Debian root is built once
with mmdebstrap and cached under /var/cache/containerize/testbed/HASH (HASH of the package list and
this recipe), with everything the roles need, so no host ever needs a package registry.

    python3 -m tests.hosts up 3      # boot host1..host3, print their addresses and the key
    python3 -m tests.hosts down      # stop them all; leaves no namespace, link, mount or process
    python3 -m tests.hosts build     # only build (or find) the cached Debian root

Host i has the address 10.254.0.(10+i)/24; this machine has 10.254.0.1 on the bridge. The addresses
exist only on the bridge and in the hosts' namespaces. `power_cycle` cuts a host's power (its init is
killed, so everything it ran dies and its network namespace is made anew) and boots it again on the
same disk; `sshd_down` stops its sshd and ends the SSH sessions it had.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("CONTAINERIZE_TESTBED_CACHE", "/var/cache/containerize/testbed"))
STATE = Path("/var/lib/containerize-testbed")  # the hosts' disks (upper dirs) and consoles
BRIDGE = "cztb0"
SPARE_NIC = "exp0"  # each host's second NIC, on the bridge too: down, no address, until an experiment takes it
NETWORK = ipaddress.IPv4Network("10.254.0.0/24")
GATEWAY = "10.254.0.1"
SUITE = "bookworm"
# What the roles run on a pnode (hv, vde, process, openvz with the nspawn runtime, qemu under TCG)
# and what Ansible needs (python3, sshd): installed in the root so that hosts need no registry.
PACKAGES = (
    "systemd-sysv", "udev", "kmod", "dbus", "openssh-server", "python3", "iproute2", "iputils-ping",
    "procps", "psmisc", "vde2", "systemd-container", "busybox-static", "qemu-system-x86", "qemu-utils",
    "linux-image-amd64", "e2fsprogs", "cpio", "zstd", "xz-utils", "util-linux",
    "gcc", "libc6-dev",  # the vde role compiles its shaping element (cz-wire) on the pnode
)
RECIPE_VERSION = "1"  # bump when the way the root is made changes
BOOT_TIMEOUT = 150.0  # a loaded CI machine boots three hosts at once
SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=5")


def _run(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, **kwargs)


def _quiet(*argv: str) -> None:
    subprocess.run(list(argv), check=False, capture_output=True)


def root_key() -> str:
    """The cache key of the Debian root: its package list and recipe."""
    text = "\n".join([SUITE, RECIPE_VERSION, *sorted(PACKAGES)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Build:
    """The cached Debian root and the test bed's SSH key."""

    path: Path

    @property
    def root(self) -> Path:
        return self.path / "root"

    @property
    def key(self) -> Path:
        return self.path / "id_ed25519"


def build(log=print) -> Build:
    """Build the Debian root once (keyed by root_key()); later calls return the cached one."""
    built = Build(CACHE / root_key())
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (built.path / "done").exists():
            return built
        staging = CACHE / f".{root_key()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        log(f"building the test bed's Debian root in {built.path} (mmdebstrap, about a minute)")
        start = time.monotonic()
        _run("mmdebstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
             "--dpkgopt=path-exclude=/usr/share/{doc,man,locale}/*",
             "--dpkgopt=path-include=/usr/share/doc/*/copyright",
             "--customize-hook=rm -f $1/etc/hostname $1/etc/ssh/ssh_host_*",
             SUITE, str(staging / "root"))
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "containerize-testbed",
             "-f", str(staging / "id_ed25519"))
        _prepare_root(staging / "root", (staging / "id_ed25519.pub").read_text())
        (staging / "done").write_text(f"{time.monotonic() - start:.1f}\n")
        shutil.rmtree(built.path, ignore_errors=True)
        staging.rename(built.path)
        log(f"built in {time.monotonic() - start:.0f} s")
    return built


def _prepare_root(root: Path, public_key: str) -> None:
    """Root's key, sshd that accepts it, a console on the log, nothing on boot that a container lacks."""
    ssh = root / "root" / ".ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh / "authorized_keys").write_text(public_key)
    (ssh / "authorized_keys").chmod(0o600)
    (root / "etc" / "ssh" / "sshd_config.d" / "testbed.conf").write_text(
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\nMaxSessions 64\nMaxStartups 64\n")
    # host keys made on each host's first boot (its own disk), as on a newly installed machine
    unit = root / "etc" / "systemd" / "system" / "ssh.service.d"
    unit.mkdir(parents=True, exist_ok=True)
    (unit / "hostkeys.conf").write_text(
        "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n")
    # eth0's address comes from the kernel command line's stand-in: a file each host has in its upper dir
    (root / "etc" / "systemd" / "system" / "testbed-net.service").write_text(
        "[Unit]\nDescription=test bed address\nBefore=ssh.service network-online.target\n"
        "ConditionPathExists=/etc/testbed-address\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        "ExecStart=/bin/sh -c 'ip link set lo up; ip link set eth0 up; "
        "ip address replace \"$(cat /etc/testbed-address)\" dev eth0; ip route replace default via " + GATEWAY + "'\n\n"
        "[Install]\nWantedBy=multi-user.target\n")
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        (wants / "testbed-net.service").symlink_to("/etc/systemd/system/testbed-net.service")
    # a minbase root has no /etc/hosts: kept that way, as some users' hosts are
    (root / "etc" / "hosts").unlink(missing_ok=True)


@dataclass(frozen=True)
class Host:
    """Host INDEX of the test bed (1-based)."""

    index: int

    @property
    def name(self) -> str:
        return f"host{self.index}"

    @property
    def address(self) -> str:
        return str(NETWORK.network_address + 10 + self.index)

    @property
    def netns(self) -> str:
        return f"cztb-{self.name}"

    @property
    def veth(self) -> str:
        return f"cztb-{self.name}"

    @property
    def spare_veth(self) -> str:
        """This machine's end of the host's spare NIC (SPARE_NIC), in the bridge."""
        return f"cztb-{self.name}x"

    @property
    def dir(self) -> Path:
        return STATE / self.name

    @property
    def merged(self) -> Path:
        return self.dir / "merged"

    @property
    def pid_file(self) -> Path:
        return self.dir / "nspawn.pid"

    def nspawn_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pid_file.read_text())
            if _alive(pid):
                return pid
        return None

    def init_pid(self) -> int | None:
        """The host's PID 1 as seen from here (the child of its systemd-nspawn)."""
        pid = self.nspawn_pid()
        if pid is None:
            return None
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if children:
                return int(children[0])
        return None


def _alive(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "Z" not in line.split()[1]
    except OSError:
        return False
    return False


def hosts(count: int) -> list[Host]:
    return [Host(i) for i in range(1, count + 1)]


def running() -> list[Host]:
    """The hosts that have state here (booted or not)."""
    if not STATE.is_dir():
        return []
    found = [Host(int(p.name[4:])) for p in STATE.iterdir() if p.name.startswith("host") and p.name[4:].isdigit()]
    return sorted(found, key=lambda h: h.index)


def ssh_argv(host: Host | str, key: Path, *command: str) -> list[str]:
    address = host.address if isinstance(host, Host) else host
    return ["ssh", "-i", str(key), *SSH_OPTIONS, f"root@{address}", *command]


def ssh(host: Host, key: Path, *command: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(ssh_argv(host, key, *command), capture_output=True, text=True, timeout=timeout, check=check)


def _bridge_up() -> None:
    if _run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "address", "add", f"{GATEWAY}/{NETWORK.prefixlen}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")


def _network_up(host: Host) -> None:
    """The host's namespace, with eth0 and exp0 veths into the bridge (made anew after a power cut)."""
    _network_down(host)
    _run("ip", "netns", "add", host.netns)
    for outside, inside in ((host.veth, "eth0"), (host.spare_veth, SPARE_NIC)):
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", host.netns)
        _run("ip", "link", "set", outside, "master", BRIDGE, "up")


def _network_down(host: Host) -> None:
    _quiet("ip", "link", "delete", host.veth)
    _quiet("ip", "link", "delete", host.spare_veth)
    if Path(f"/run/netns/{host.netns}").exists():
        _quiet("ip", "netns", "delete", host.netns)


def _mount(host: Host, lower: Path) -> None:
    # containers: the host's /var/containers, on this machine's file system, not the overlay root (a qemu
    # node's root is an overlay whose upper directory cannot be on an overlay, as on a real disk it is not)
    for part in ("upper", "work", "merged", "containers"):
        (host.dir / part).mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(host.merged):
        _run("mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={lower},upperdir={host.dir / 'upper'},workdir={host.dir / 'work'}", str(host.merged))
    (host.merged / "etc" / "hostname").write_text(host.name + "\n")
    (host.merged / "etc" / "testbed-address").write_text(f"{host.address}/{NETWORK.prefixlen}\n")


def _umount(host: Host) -> None:
    if os.path.ismount(host.merged):
        if _run("umount", str(host.merged), check=False).returncode != 0:
            _run("umount", "-l", str(host.merged))


def _boot(host: Host, binds: tuple[str, ...]) -> None:
    """Start the host's systemd-nspawn (nohup: its pid is the machine's) without waiting for it."""
    argv = ["nohup", "systemd-nspawn", "-D", str(host.merged), "--register=no", "--keep-unit", "--boot",
            "--capability=all", f"--network-namespace-path=/run/netns/{host.netns}", f"--machine=cztb-{host.name}",
            "--console=read-only", "--bind=/dev/net/tun", "--property=DeviceAllow=/dev/net/tun rwm",
            f"--bind={host.dir / 'containers'}:/var/containers", *(f"--bind-ro={path}" for path in binds)]
    env = {**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "1"}
    with open(host.dir / "console.log", "ab") as console:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, env=env,
                                start_new_session=False)
    host.pid_file.write_text(f"{proc.pid}\n")


def _wait_ssh(host: Host, key: Path, deadline: float) -> None:
    while True:
        with contextlib.suppress(OSError):
            with socket.create_connection((host.address, 22), timeout=1):
                if ssh(host, key, "true", timeout=10, check=False).returncode == 0:
                    return
        if host.nspawn_pid() is None:
            raise RuntimeError(f"{host.name} stopped while booting: {_tail(host)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host.name} ({host.address}) has no sshd after {BOOT_TIMEOUT:.0f} s: {_tail(host)}")
        time.sleep(0.5)


def _tail(host: Host) -> str:
    with contextlib.suppress(OSError):
        return " | ".join((host.dir / "console.log").read_text(errors="replace").splitlines()[-8:])
    return "(no console log)"


def up(count: int, binds: tuple[str, ...] = (), log=print) -> tuple[list[Host], Path]:
    """Boot host1..hostCOUNT (those already running are kept); return them and the SSH key."""
    built = build(log)
    _bridge_up()
    group = hosts(count)
    for host in group:
        if host.nspawn_pid() is None:
            _network_up(host)
            _mount(host, built.root)
            _boot(host, binds)
    deadline = time.monotonic() + BOOT_TIMEOUT
    for host in group:
        _wait_ssh(host, built.key, deadline)
    return group, built.key


def _stop(host: Host, graceful: bool) -> None:
    """Stop the machine: a clean shutdown (SIGTERM to nspawn) or a power cut (SIGKILL to its init)."""
    pid = host.nspawn_pid()
    if pid is None:
        return
    init = host.init_pid()
    if graceful:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    if _alive(pid) and init is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(init, signal.SIGKILL)  # ends everything in the host's pid namespace
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def power_cycle(host: Host, binds: tuple[str, ...] = (), down_for: float = 0.0) -> None:
    """Cut the host's power (all it ran dies, its network is made anew), keep its disk, boot it again."""
    built = build()
    _stop(host, graceful=False)
    _umount(host)
    time.sleep(down_for)
    _network_up(host)
    _mount(host, built.root)
    _boot(host, binds)
    _wait_ssh(host, built.key, time.monotonic() + BOOT_TIMEOUT)


def power_off(host: Host) -> None:
    """Cut the host's power and leave it off (its disk is kept until down())."""
    _stop(host, graceful=False)
    _umount(host)
    _network_down(host)


def sshd_down(host: Host) -> None:
    """Stop the host's sshd and end its sessions (the host and what it runs go on)."""
    init = host.init_pid()
    if init is None:
        raise RuntimeError(f"{host.name} is not running")
    _run("nsenter", "-t", str(init), "-m", "-u", "-i", "-n", "-p", "systemctl", "stop", "ssh.service", "ssh.socket",
         check=False)
    pidns = os.readlink(f"/proc/{init}/ns/pid")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "ns" / "pid") == pidns and (entry / "comm").read_text().strip() == "sshd":
                os.kill(int(entry.name), signal.SIGKILL)


def sshd_up(host: Host) -> None:
    init = host.init_pid()
    if init is None:
        raise RuntimeError(f"{host.name} is not running")
    _run("nsenter", "-t", str(init), "-m", "-u", "-i", "-n", "-p", "systemctl", "start", "ssh.service")


def down(log=print) -> None:
    """Stop every host and remove all the test bed made here except the cached root."""
    for host in running():
        _stop(host, graceful=True)
        _umount(host)
        _network_down(host)
        shutil.rmtree(host.dir, ignore_errors=True)
        log(f"{host.name} down")
    _quiet("ip", "link", "delete", BRIDGE)
    with contextlib.suppress(OSError):
        STATE.rmdir()


def leftovers() -> list[str]:
    """What of the test bed is still on this machine (empty after down())."""
    found = []
    if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        found.append(f"bridge {BRIDGE}")
    found += [f"link {line.split(':')[1].strip().split('@')[0]}" for line in
              _run("ip", "-o", "link", "show", check=False).stdout.splitlines() if "cztb-" in line]
    netns = Path("/run/netns")
    if netns.is_dir():
        found += [f"netns {p.name}" for p in netns.iterdir() if p.name.startswith("cztb-")]
    found += [f"mount {line.split()[1]}" for line in Path("/proc/mounts").read_text().splitlines()
              if str(STATE) in line.split()[1]]
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and b"cztb-host" in (entry / "cmdline").read_bytes():
                found.append(f"process {entry.name}")
    if STATE.exists():
        found.append(f"directory {STATE}")
    return found


def fixture(count: int, binds: tuple[str, ...] = ()):
    """A pytest fixture (assign it to a name in a test module) that boots COUNT hosts and takes them down.

    It yields (hosts, key). Hosts left by an earlier run that died are taken down first.
    """
    import pytest

    @pytest.fixture(scope="module")
    def testbed():
        down(log=lambda _line: None)
        try:
            yield up(count, binds, log=lambda _line: None)
        finally:
            down(log=lambda _line: None)
            left = leftovers()
            assert not left, f"the test bed left {left}"

    return testbed


def main(argv: list[str]) -> int:
    usage = "usage: python3 -m tests.hosts up N | down | build | leftovers"
    if not argv or argv[0] not in ("up", "down", "build", "leftovers"):
        print(usage, file=sys.stderr)
        return 2
    if argv[0] == "build":
        print(build().path)
    elif argv[0] == "up":
        if len(argv) != 2 or not argv[1].isdigit() or not 1 <= int(argv[1]) <= 200:
            print(usage + " (N from 1 to 200)", file=sys.stderr)
            return 2
        group, key = up(int(argv[1]))
        for host in group:
            print(f"{host.name} {host.address}")
        print(f"key {key}")
    elif argv[0] == "down":
        down()
    else:
        left = leftovers()
        print("\n".join(left) or "nothing left")
        return 1 if left else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

