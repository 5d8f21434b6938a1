#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: the openvz guests of one pnode (OS containers from templates), in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: openvz_guests
short_description: Realize the openvz guests (OS containers from template tarballs) of one pnode
description:
  - Makes every C(openvz) guest planned for this pnode (C(containerize_guests) of
    C(host_vars/pnode-NNNN.yml)) exist as an OS container sharing the pnode's kernel, in one call.
  - "Private area: C(root/openvz/EXP_NAME/NODE/) holds C(root/) (the container's root file
    system), C(private.json) (what the root was made from), C(console.log) and, with O(disk=image),
    C(disk.img). The root is unpacked from the guest's template C(NAME) found as C(DIR/NAME.tar.gz)
    (or C(.tgz), C(.tar.xz), C(.txz), C(.tar.zst), C(.tzst), C(.tar.bz2), C(.tar)) in the first
    directory of O(template_dirs) that has it; an absolute path names the file itself. It is
    unpacked once and kept while the template name stays the same, so changes made inside the
    container survive a re-run; a new template name makes a new root."
  - "Disk space (C(openvz_diskspace): C(2G), C(500M), C(1.5T); a bare number counts 1K blocks as
    vzctl's C(--diskspace) does): with O(disk=image) the root is an ext4 file system in a sparse
    image of that size, loop-mounted on C(root/), so the limit is enforced; a changed size is
    applied offline (the container is stopped, the file system resized, the container started).
    With O(disk=directory) the root is a plain directory and the size is only recorded. With the
    C(vzctl) runtime the size goes to C(DISKSPACE), which OpenVZ enforces."
  - "Configured idempotently in the root (files are rewritten only when they differ, never through
    a symbolic link that leaves the root): C(/etc/hostname), C(/etc/hosts) (the experiment's hosts),
    C(/etc/rc.local) (a script written by this module that records each boot in
    C(/var/containers/log/boot.log) and runs the start command in the background with its status in
    C(/var/containers/log/start_command.log) (C(start TIME), C(exit N), C(end TIME)) and its output in
    C(start_command.out) and C(start_command.err)), C(/etc/containerize/startcmd) (the start command;
    absent for none and for ghosts). The template's init must run C(/etc/rc.local) at boot (systemd's
    rc-local generator, sysvinit's rc.local script and the busybox template of
    C(scripts/build-openvz-template.sh) do)."
  - "C(/var/containers) in the container is the node directory C(root/nodes/EXP_NAME/NODE/) of the
    pnode (with C(pid), C(eid), C(log/)), bind-mounted; so are the O(shares) (C(/users), C(/proj),
    C(/groups), C(/share) by default), left out with a warning when missing on the pnode."
  - "Runtime C(nspawn): the container runs as C(systemd-nspawn --register=no --keep-unit --boot
    --network-namespace-path=/run/netns/NS -D ROOT), started detached with its pid in
    C(run_dir/NODE.openvz.pid) and its argv in C(run_dir/NODE.openvz.json). The network namespace
    C(NS) (the guest's C(namespace)) must exist and be wired already: the C(openvz) role runs the
    C(process_nodes) module with C(kinds=[openvz]) first, which plugs the planned interfaces into VDE
    and sets MACs, addresses, routes, forwarding and end-node C(tbf). The container gets
    O(capabilities) on top of nspawn's default set (C(CAP_NET_ADMIN) by default)."
  - "Runtime C(vzctl) (OpenVZ kernels, C(/proc/vz)): the module writes C(/etc/vz/conf/CTID.conf)
    (C(VE_PRIVATE) is the same root, C(DISKSPACE), C(HOSTNAME), one veth C(NETIF) per interface with
    the planned MAC) and C(CTID.mount) (the bind mounts), starts it with C(vzctl start), plugs each
    host-side veth into its planned VDE switch with C(vde_pcapplug), and configures addresses, routes,
    forwarding and C(tbf) inside from C(/etc/containerize/network.sh), run by C(rc.local). This path
    is written to the vzctl documentation but has not been run on an OpenVZ kernel."
  - "Supervision: a re-run starts a container that is not running, and restarts one whose argv, start
    command, root or disk changed, or whose init is no longer in the guest's network namespace (the
    namespace was made again). Processes left in a root by a killed runtime are killed first. A
    container is stopped by C(SIGTERM) to nspawn, which sends O(kill_signal) to the container's init,
    then after O(stop_timeout) by C(SIGKILL) to its init. Containers of this experiment that are no
    longer planned as C(openvz) are removed."
  - With O(state=absent), every container of the experiment (planned or found under
    C(root/openvz/EXP_NAME)) is stopped, its mounts undone and its private area removed. With
    O(state=query) nothing changes; the result names the runtime and disk mode C(auto) would pick.
version_added: "0.1.0"
author:
  - containerize authors
options:
  root:
    description: Pnode root (C(containerize_root)); private areas live in C(root/openvz/EXP_NAME/).
    type: path
    default: /var/containers
  run_dir:
    description: Runtime directory of the experiment on this pnode (C(root/run/EXP_TAG)).
    type: path
    required: true
  exp_name:
    description: Experiment name C(EID.PID) (C(containerize_exp_name)).
    type: str
    required: true
  project:
    description: Project id, written to the node's C(pid) file.
    type: str
    required: true
  experiment:
    description: Experiment id, written to the node's C(eid) file.
    type: str
    required: true
  hosts:
    description: The experiment's hosts for C(/etc/hosts), as a list of C({address, names}) or as text.
    type: raw
    default: []
  guests:
    description:
      - The guests of this pnode (C(containerize_guests)); entries of another C(kind) are ignored.
      - Each is C({name, kind, ghost, namespace, hostname, startcmd, forwarding, interfaces, routes,
        openvz_template, openvz_diskspace}); other keys are ignored.
    type: list
    elements: dict
    default: []
  template_dirs:
    description: Directories searched, in order, for template tarballs (C(containerize_openvz_template_dirs)).
    type: list
    elements: path
    default: []
  template:
    description: Template of guests without C(openvz_template).
    type: str
    default: ""
  diskspace:
    description: Disk space of guests without C(openvz_diskspace).
    type: str
    default: 2G
  runtime:
    description:
      - C(nspawn) (systemd-nspawn in the guest's network namespace), C(vzctl) (an OpenVZ kernel), or
        C(auto) (C(vzctl) when C(/proc/vz) exists and C(vzctl) is installed, C(nspawn) otherwise).
    type: str
    choices: [auto, nspawn, vzctl]
    default: auto
  disk:
    description:
      - C(image) (an ext4 image of the disk space, loop-mounted, so the limit is enforced),
        C(directory) (the limit is recorded only), or C(auto) (C(image) when C(mkfs.ext4) and
        C(/dev/loop-control) are there). Ignored by the C(vzctl) runtime, which enforces C(DISKSPACE).
      - The mode of an existing private area is kept until it is made again.
    type: str
    choices: [auto, image, directory]
    default: auto
  shares:
    description:
      - Pnode directories bind-mounted into every container, C({path, mount, readonly}).
      - A share whose C(path) does not exist on the pnode is left out with a warning.
    type: list
    elements: dict
    default: []
  capabilities:
    description: Capabilities given to the containers on top of nspawn's default set.
    type: list
    elements: str
    default: [CAP_NET_ADMIN]
  nspawn_args:
    description: Extra C(systemd-nspawn) arguments, placed before C(-D ROOT).
    type: list
    elements: str
    default: []
  kill_signal:
    description:
      - Signal nspawn sends to the container's init to shut it down. Empty picks C(SIGUSR2) (poweroff)
        when C(/sbin/init) of the root is busybox and nspawn's default (C(SIGRTMIN+3), systemd's)
        otherwise.
    type: str
    default: ""
  vzctl_first_ctid:
    description: Lowest container id the C(vzctl) runtime allocates.
    type: int
    default: 1000
  vzctl_conf_dir:
    description: Where the C(vzctl) runtime writes C(CTID.conf) and C(CTID.mount).
    type: path
    default: /etc/vz/conf
  wait_booted:
    description: Wait until every started container has run its C(rc.local) (a new line in C(log/boot.log)).
    type: bool
    default: true
  boot_timeout:
    description: Seconds a container has to boot when O(wait_booted) is set.
    type: float
    default: 60
  stop_timeout:
    description: Seconds a container has to shut down before its init is killed.
    type: float
    default: 10
  workers:
    description: Guests prepared in parallel (unpacking, file systems).
    type: int
    default: 4
  state:
    description:
      - C(present) realizes the guests, C(absent) removes every openvz guest of the experiment.
      - C(query) changes nothing and reports the runtime and disk mode.
    type: str
    choices: [present, absent, query]
    default: present
notes:
  - Supports check mode (nothing is changed; the result lists what would change) and diff mode.
  - Run C(vde_network) and C(process_nodes) (C(kinds=[openvz]), C(start_commands=false)) first.
requirements:
  - systemd-container (systemd-nspawn), tar and the compressors of the templates
  - e2fsprogs and loop devices for O(disk=image)
  - vzctl and vde2 (vde_pcapplug) for the vzctl runtime
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Realize the openvz guests of this pnode
  openvz_guests:
    root: /var/containers
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    hosts: "{{ containerize_hosts }}"
    guests: "{{ containerize_guests }}"
    template_dirs: [/share/containers/images/openvz]
    shares:
      - {path: /users, mount: /users, readonly: false}
      - {path: /share, mount: /share, readonly: true}

- name: Which runtime would be used here?
  openvz_guests:
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    state: query
  register: openvz_probe

- name: Remove them
  openvz_guests:
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    state: absent
"""

RETURN = r"""
runtime:
  description: The runtime used (C(nspawn) or C(vzctl)).
  returned: always
  type: str
  sample: nspawn
disk:
  description: The disk mode new private areas get (C(image) or C(directory); C(vzctl) with that runtime).
  returned: always
  type: str
  sample: image
guests:
  description: For each guest that changed (or would), the list of things done.
  returned: always
  type: dict
  sample:
    c-2: [private root from busybox, disk image 2G, /etc/hosts, /etc/rc.local, start container]
started:
  description: Containers started (first time, or because they were not running).
  returned: always
  type: list
  elements: str
restarted:
  description: Running containers restarted because something they boot with changed.
  returned: always
  type: list
  elements: str
stopped:
  description: Containers stopped and removed (absent, or no longer planned).
  returned: always
  type: list
  elements: str
"""

import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    NETNS_DIR,
    check_hosts,
    compact_invocation,
    netns_inode,
    proc_alive,
    proc_netns_inode,
    read_json,
    read_pid,
    read_text,
    remove_path,
    short_hash,
    wait_for,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.daemons import run as run_argv
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import tbf_tc_args

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
NS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
TEMPLATE_EXTS = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tar.zstd", ".tzst", ".tar.bz2", ".tbz2", ".tar")
SIZE_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?$", re.I)
MIN_IMAGE = 32 << 20
RC_LOCAL = r"""#!/bin/sh
# Written by containerize (openvz_guests) at every swap-in: do not edit, changes are undone.
# Runs at boot: the network script (vzctl runtime), the node's start command in the background
# (status in /var/containers/log/start_command.log, output in start_command.out and .err), then
# records the boot in /var/containers/log/boot.log.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
log=/var/containers/log
mkdir -p "$log"
if [ -x /etc/containerize/network.sh ]; then
    /etc/containerize/network.sh >"$log/network.log" 2>&1
fi
if [ -s /etc/containerize/startcmd ]; then
    (
        exec 3>"$log/start_command.log" 4>"$log/start_command.out" 5>"$log/start_command.err"
        echo "start $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&3
        cd /
        sh -c "$(cat /etc/containerize/startcmd)" >&4 2>&5 </dev/null 3>&- 4>&- 5>&-
        rc=$?
        echo "exit $rc" >&3
        echo "end $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&3
    ) </dev/null >/dev/null 2>&1 &
fi
echo "boot $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$log/boot.log"
exit 0
"""


# ----------------------------------------------------------------------------------------------
# process and file helpers (the same few functions live in process_nodes.py: modules ship alone)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(p) for p in handle.read().split()]
    except (OSError, ValueError):
        return []


def run(argv, stdin=None, timeout=600):
    """run_argv() with this module's default timeout (unpacking templates and mkfs take minutes)."""
    return run_argv(argv, stdin, timeout)


def must(argv, what, **kwargs):
    rc, out, err = run(argv, **kwargs)
    if rc != 0:
        raise RuntimeError(f"{what}: {' '.join(argv)}: {(err or out).strip()[-400:]}")
    return out


def write_in_place(path, text, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def render_hosts(hosts):
    if isinstance(hosts, str):
        return hosts if hosts.endswith("\n") else hosts + "\n"
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{h['address']} {' '.join(h['names'])}" for h in hosts]
    return "\n".join(lines) + "\n"


def parse_size(text):
    """Bytes of a disk space like 2G, 500M, 1.5T; a bare number counts 1K blocks (vzctl --diskspace)."""
    match = SIZE_RE.match(str(text).strip())
    if not match:
        raise ValueError(f"disk space {text!r} is not a size like 2G or 500M")
    number, unit = float(match.group(1)), match.group(2).upper() or "K"
    return int(number * (1 << (10 * "KMGT".index(unit) + 10)))


def human_size(size):
    for unit, shift in (("T", 40), ("G", 30), ("M", 20)):
        if size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return f"{size >> 10}K"


def mounts_below(path):
    """Mount points at or below PATH (deepest first), from this process's mountinfo."""
    path = os.path.realpath(path)
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                point = fields[4].encode().decode("unicode_escape") if len(fields) > 4 else ""
                if point == path or point.startswith(path + "/"):
                    found.append(point)
    except OSError:
        pass
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def mount_propagation(path):
    """The optional fields (shared:N, master:N) of the mount at PATH; None when PATH is not a mount point."""
    path = os.path.realpath(path)
    found = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 6 and fields[4].encode().decode("unicode_escape") == path:
                    found = fields[6 : fields.index("-")]
    except (OSError, ValueError):
        return None
    return found


def ensure_shared(path):
    """Make PATH a mount point with shared propagation. Returns True when it had to.

    A loop mount is copied into every mount namespace made while it is mounted (ip netns exec
    makes one per command); where / is private those copies never see the unmount and keep the
    loop device busy. Below a shared mount, the copies are peers or slaves and follow the unmount.
    """
    fields = mount_propagation(path)
    if fields is not None and any(f.startswith("shared:") for f in fields):
        return False
    os.makedirs(path, mode=0o755, exist_ok=True)
    if fields is None:
        must(["mount", "--bind", path, path], f"make {path} a mount point")
    must(["mount", "--make-shared", path], f"make {path} shared")
    return True


def mount_source(path):
    """The device mounted at PATH, or None."""
    path = os.path.realpath(path)
    source = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 4 and fields[4].encode().decode("unicode_escape") == path:
                    sep = fields.index("-")
                    source = fields[sep + 2]
    except (OSError, ValueError):
        return None
    return source


def loop_backing_file(device):
    name = os.path.basename(device or "")
    text = read_text(f"/sys/block/{name}/loop/backing_file") if name.startswith("loop") else None
    return text.strip() if text else None


def loop_devices(image):
    """Loop devices attached to IMAGE."""
    rc, out, _err = run(["losetup", "-n", "-O", "NAME", "-j", image])
    return out.split() if rc == 0 else []


def detach_loops(image, timeout=10.0):
    """Detach every loop device of IMAGE (an unmounted one may linger until its autoclear)."""
    for device in loop_devices(image):
        run(["losetup", "-d", device])
    if not wait_for(lambda: not loop_devices(image), timeout):
        raise RuntimeError(f"loop devices of {image} stay attached: {', '.join(loop_devices(image))}")


def mount_image(image, target, shared_dir):
    """Loop-mount IMAGE on TARGET below SHARED_DIR; a reused loop device gets the image's current size."""
    ensure_shared(shared_dir)
    must(["mount", "-o", "loop", image, target], "mount the disk image")
    device = mount_source(target)
    if device and device.startswith("/dev/loop"):
        rc, out, _err = run(["blockdev", "--getsize64", device])
        if rc == 0 and out.strip().isdigit() and int(out) != os.path.getsize(image):
            must(["losetup", "-c", device], f"refresh the size of {device}")


def unmount_all(path):
    """Undo every mount at or below PATH. Returns the mount points that remain."""
    for point in mounts_below(path):
        if run(["umount", point])[0] != 0:
            run(["umount", "-l", point])
    return mounts_below(path)


def inside(root, path):
    root = os.path.realpath(root)
    return path == root or path.startswith(root + os.sep)


def safe_target(root, rel):
    """ROOT/REL for writing, refusing a parent that is (or goes through) a link leaving ROOT."""
    path = os.path.join(root, rel.lstrip("/"))
    parent = os.path.realpath(os.path.dirname(path))
    if not inside(root, parent):
        raise RuntimeError(f"{rel} in {root} leads outside the container root; refusing to write it")
    return os.path.join(parent, os.path.basename(path))


def processes_rooted_at(roots):
    """{root: [pid, ...]}: live processes whose root directory is one of ROOTS (any mount namespace)."""
    keys = {}
    for root in roots:
        try:
            st = os.stat(root)
            keys[(st.st_dev, st.st_ino)] = root
        except OSError:
            pass
    found = {}
    if not keys:
        return found
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                st = os.stat(f"/proc/{entry}/root")
            except OSError:
                continue
            root = keys.get((st.st_dev, st.st_ino))
            if root and proc_alive(int(entry)):
                found.setdefault(root, []).append(int(entry))
    return found


def kill_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


# ----------------------------------------------------------------------------------------------
# the experiment on this pnode


class Context:
    def __init__(self, module):
        p = module.params
        self.module = module
        self.check = module.check_mode
        self.root = os.path.abspath(p["root"])
        self.run_dir = os.path.abspath(p["run_dir"])
        self.exp_name = p["exp_name"]
        self.project = p["project"]
        self.experiment = p["experiment"]
        self.hosts = render_hosts(p["hosts"])
        self.base = os.path.join(self.root, "openvz", self.exp_name)
        self.nodes_dir = os.path.join(self.root, "nodes", self.exp_name)
        self.stop_timeout = p["stop_timeout"]
        self.vz_conf_dir = p["vzctl_conf_dir"]
        self.runtime = self.pick_runtime(p["runtime"])
        self.disk = "vzctl" if self.runtime == "vzctl" else self.pick_disk(p["disk"])

    @staticmethod
    def pick_runtime(wanted):
        if wanted != "auto":
            return wanted
        return "vzctl" if os.path.isdir("/proc/vz") and shutil.which("vzctl") else "nspawn"

    @staticmethod
    def pick_disk(wanted):
        if wanted != "auto":
            return wanted
        usable = shutil.which("mkfs.ext4") and shutil.which("losetup") and os.path.exists("/dev/loop-control")
        return "image" if usable else "directory"

    def rpath(self, name):
        return os.path.join(self.run_dir, name)

    def existing(self):
        """Node names with a private area of this experiment."""
        try:
            return sorted(n for n in os.listdir(self.base) if NAME_RE.match(n))
        except OSError:
            return []


def find_template(name, dirs):
    """Path of template NAME: itself when absolute, else the first DIR/NAME.EXT that exists."""
    if os.path.isabs(name):
        return (name if os.path.isfile(name) else None), [name]
    tried = []
    names = [name] if name.endswith(TEMPLATE_EXTS) else [name + ext for ext in TEMPLATE_EXTS]
    for directory in dirs:
        if not directory:
            continue
        for candidate in names:
            path = os.path.join(directory, candidate)
            tried.append(path)
            if os.path.isfile(path):
                return path, tried
    return None, tried


class Container:
    """Observation, decisions and actions for one openvz guest."""

    def __init__(self, ctx, spec):
        p = ctx.module.params
        self.ctx = ctx
        self.spec = spec
        self.name = spec["name"]
        self.ns = spec.get("namespace") or ""
        self.hostname = spec.get("hostname") or self.name
        self.ghost = bool(spec.get("ghost"))
        self.startcmd = spec.get("startcmd") or ""
        self.template = spec.get("openvz_template") or p["template"]
        self.diskspace = str(spec.get("openvz_diskspace") or p["diskspace"])
        self.private = os.path.join(ctx.base, self.name)
        self.rootfs = os.path.join(self.private, "root")
        self.image = os.path.join(self.private, "disk.img")
        self.record_path = os.path.join(self.private, "private.json")
        self.console = os.path.join(self.private, "console.log")
        self.nodedir = os.path.join(ctx.nodes_dir, self.name)
        self.pidfile = ctx.rpath(f"{self.name}.openvz.pid")
        self.statefile = ctx.rpath(f"{self.name}.openvz.json")
        self.changes = []
        self.started = False
        self.restarted = False
        self.before = {}
        self.after = {}
        self.boot_lines = 0
        self.bounced = None  # why a running container was stopped on the way (root, disk)
        self.proc = None
        self.template_path = None
        self.size = None

    def note(self, what):
        self.changes.append(what)

    def wants_start(self):
        return bool(self.startcmd.strip()) and not self.ghost

    # -- what the container boots with
    def files(self):
        files = {
            "etc/hostname": (self.hostname + "\n", 0o644),
            "etc/hosts": (self.ctx.hosts, 0o644),
            "etc/rc.local": (RC_LOCAL, 0o755),
            "etc/containerize/startcmd": (self.startcmd + "\n" if self.wants_start() else None, 0o644),
            "etc/containerize/network.sh": (self.network_script() if self.ctx.runtime == "vzctl" else None, 0o755),
        }
        return files

    def shares(self):
        result = []
        for share in self.ctx.module.params["shares"]:
            path, mount = share.get("path"), share.get("mount") or share.get("path")
            if not path or not os.path.isdir(path):
                continue
            result.append((path, mount, bool(share.get("readonly"))))
        return result

    def kill_signal(self):
        wanted = self.ctx.module.params["kill_signal"]
        if wanted:
            return wanted
        init = os.path.join(self.rootfs, "sbin/init")
        try:
            target = os.readlink(init)
        except OSError:
            return ""
        return "SIGUSR2" if os.path.basename(target) == "busybox" else ""

    def machine(self):
        name = self.ns if len(self.ns) <= 64 else f"{self.name[:50]}-{short_hash(self.ns)}"
        return name

    def nspawn_argv(self):
        p = self.ctx.module.params
        argv = [
            "systemd-nspawn", "--register=no", "--keep-unit", "--boot",
            f"--machine={self.machine()}", f"--hostname={self.hostname}",
            f"--network-namespace-path={os.path.join(NETNS_DIR, self.ns)}",
            "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
        ]  # fmt: skip
        signal_name = self.kill_signal()
        if signal_name:
            argv.append(f"--kill-signal={signal_name}")
        if p["capabilities"]:
            argv.append("--capability=" + ",".join(p["capabilities"]))
        argv.append(f"--bind={self.nodedir}:/var/containers")
        for path, mount, readonly in self.shares():
            argv.append(f"--bind{'-ro' if readonly else ''}={path}:{mount}")
        return argv + list(p["nspawn_args"]) + ["-D", self.rootfs]

    def network_script(self):
        """Interfaces, routes, forwarding and tbf from inside (the vzctl runtime only)."""
        lines = ["#!/bin/sh", "# written by containerize (openvz_guests): the node's network, run by rc.local",
                 "# iproute2 by path: a busybox shell would run its own applets first",
                 'IP=ip; for p in /sbin/ip /usr/sbin/ip /bin/ip /usr/bin/ip; do [ -x "$p" ] && IP=$p && break; done',
                 'TC=tc; for p in /sbin/tc /usr/sbin/tc /bin/tc /usr/bin/tc; do [ -x "$p" ] && TC=$p && break; done',
                 '"$IP" link set dev lo up']
        for iface in self.spec.get("interfaces") or []:
            dev = iface["ifname"]
            lines.append(f'"$IP" link set dev {dev} up')
            lines.append(f'"$IP" -4 addr flush dev {dev} scope global')
            if iface.get("address"):
                lines.append(f'"$IP" addr add {iface["address"]}/{int(iface["prefix"])} broadcast + dev {dev}')
            bandwidth = (iface.get("tc") or {}).get("bandwidth")
            if bandwidth:
                rate = int(bandwidth)
                lines.append(f'"$TC" qdisc replace dev {dev} root {" ".join(tbf_tc_args(rate))}')
        for route in self.spec.get("routes") or []:
            dest = route.get("dest") or "default"
            lines.append(f'"$IP" route replace {dest}' + (f" via {route['gateway']}" if route.get("gateway") else ""))
        lines.append(f"echo {1 if self.spec.get('forwarding') else 0} > /proc/sys/net/ipv4/ip_forward")
        return "\n".join(lines) + "\n"

    # -- observation
    def observe(self):
        o = {"record": read_json(self.record_path) or {}}
        o["root_exists"] = os.path.isdir(self.rootfs)
        o["mounted"] = mount_source(self.rootfs)
        o["files"] = {}
        if o["root_exists"] and (o["record"].get("disk") != "image" or o["mounted"]):
            for rel in self.files():
                path = os.path.join(self.rootfs, rel)
                o["files"][rel] = None if os.path.islink(path) else read_text(path)
        state = read_json(self.statefile) or {}
        pid = read_pid(self.pidfile)
        o["state"] = state
        o["pid"] = pid if pid and proc_alive(pid, self.rootfs) else None
        o["init"] = None
        if o["pid"]:
            kids = [k for k in children(o["pid"]) if proc_alive(k)]
            o["init"] = kids[0] if kids else None
        return o

    def running_summary(self, o):
        if self.ctx.runtime == "vzctl":
            return "running" if self.vz_running(o) else "stopped"
        return "running" if o["pid"] else "stopped"

    # -- the private area
    def ensure_private(self, o):
        """Root from the template and the disk; returns True when the root was made (or resized)."""
        ctx = self.ctx
        record = o["record"]
        self.size = parse_size(self.diskspace)
        self.template_path, tried = find_template(self.template, ctx.module.params["template_dirs"])
        if self.template_path is None and not (record.get("complete") and record.get("template") == self.template):
            raise RuntimeError(f"template {self.template!r} not found (tried {', '.join(tried) or 'no directory'})")
        disk = record.get("disk") if record.get("complete") else ctx.disk
        if disk == "image" and self.size < MIN_IMAGE:
            raise RuntimeError(f"disk space {self.diskspace} is too small for a disk image (at least 32M)")
        fresh = not (record.get("complete") and record.get("template") == self.template and o["root_exists"])
        if fresh:
            self.note(f"private root from {self.template}")
            if record.get("complete") and record.get("template") != self.template:
                self.note(f"template changed from {record.get('template')}")
            if ctx.check:
                return True
            self.stop(o, "root")
            self.wipe()
            os.makedirs(self.rootfs, mode=0o755, exist_ok=True)
            if disk == "image":
                self.make_image()
            must(["tar", "--numeric-owner", "-xpf", self.template_path, "-C", self.rootfs], f"unpack {self.template}")
            os.chmod(self.rootfs, 0o755)
            write_json(self.record_path, {"template": self.template, "template_path": self.template_path,
                                          "disk": disk, "size": self.size, "complete": True})
            o["record"] = read_json(self.record_path)
            o["mounted"] = mount_source(self.rootfs)
            o["files"] = {}
            return True
        changed = False
        if disk == "image":
            if not o["mounted"]:
                self.note("mount disk image")
                if not ctx.check:
                    mount_image(self.image, self.rootfs, os.path.dirname(self.ctx.base))
                    o["mounted"] = mount_source(self.rootfs)
                    o["files"] = {rel: None if os.path.islink(os.path.join(self.rootfs, rel))
                                  else read_text(os.path.join(self.rootfs, rel)) for rel in self.files()}
                changed = True
            elif loop_backing_file(o["mounted"]) not in (None, self.image, self.image + " (deleted)"):
                raise RuntimeError(f"{self.rootfs} has another file system mounted ({o['mounted']})")
        if record.get("size") != self.size:
            self.note(f"disk space {human_size(record.get('size') or 0)} -> {human_size(self.size)}")
            if disk == "image" and not ctx.check:
                self.stop(o, "disk")
                self.resize_image()
                o["mounted"] = mount_source(self.rootfs)
            if not ctx.check:
                write_json(self.record_path, {**record, "size": self.size})
            changed = True
        return changed

    def wipe(self):
        ctx = self.ctx
        if os.path.lexists(self.private):
            left = unmount_all(self.private)
            if left:
                raise RuntimeError(f"cannot unmount {', '.join(left)}; not removing {self.private}")
            shutil.rmtree(self.private)
        os.makedirs(self.private, mode=0o700, exist_ok=True)
        if not os.path.isdir(ctx.base):
            os.makedirs(ctx.base, mode=0o755, exist_ok=True)

    def make_image(self):
        with open(self.image, "wb") as handle:
            handle.truncate(self.size)
        must(["mkfs.ext4", "-q", "-F", "-m", "0", "-J", "size=8", "-E", "nodiscard,lazy_itable_init=1", self.image],
             "make the disk image")
        mount_image(self.image, self.rootfs, os.path.dirname(self.ctx.base))

    def resize_image(self):
        if mounts_below(self.rootfs) and unmount_all(self.rootfs):
            raise RuntimeError(f"cannot unmount {self.rootfs} to resize its disk image")
        detach_loops(self.image)
        run(["e2fsck", "-f", "-y", self.image])
        if self.size > os.path.getsize(self.image):
            with open(self.image, "r+b") as handle:
                handle.truncate(self.size)
            must(["resize2fs", self.image], "grow the disk image")
        else:
            must(["resize2fs", self.image, f"{self.size >> 10}K"], "shrink the disk image (does the data fit?)")
            with open(self.image, "r+b") as handle:
                handle.truncate(self.size)
        mount_image(self.image, self.rootfs, os.path.dirname(self.ctx.base))

    # -- files in the root and the node directory
    def ensure_files(self, o):
        """Write what differs; returns the names of files whose change needs a new boot."""
        ctx = self.ctx
        reboot = []
        for rel, (content, mode) in self.files().items():
            current = o["files"].get(rel)
            path = os.path.join(self.rootfs, rel)
            if content is None:
                if current is not None or os.path.islink(path):
                    self.note(f"remove /{rel}")
                    if not ctx.check:
                        remove_path(safe_target(self.rootfs, rel))
                    reboot.append(rel)
                continue
            if current == content and (ctx.check or os.stat(path).st_mode & 0o777 == mode):
                continue
            self.note(f"/{rel}")
            if rel.endswith(("startcmd", "network.sh")):
                reboot.append(rel)  # what a running container only reads at boot
            if ctx.check:
                continue
            target = safe_target(self.rootfs, rel)
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            if os.path.islink(target):
                os.unlink(target)
            tmp = f"{target}.containerize-tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        for rel in ["var/containers"] + [mount.lstrip("/") for _p, mount, _r in self.shares()]:
            if not os.path.isdir(os.path.join(self.rootfs, rel)):
                self.note(f"mount point /{rel}")
                if not ctx.check:
                    target = safe_target(self.rootfs, rel)
                    if os.path.lexists(target):
                        os.unlink(target)
                    os.makedirs(target, mode=0o755, exist_ok=True)
        return reboot

    def ensure_nodedir(self):
        ctx = self.ctx
        want = {"pid": ctx.project + "\n", "eid": ctx.experiment + "\n"}
        if all(read_text(os.path.join(self.nodedir, k)) == v for k, v in want.items()) and os.path.isdir(
            os.path.join(self.nodedir, "log")
        ):
            return
        self.note("node directory")
        if not ctx.check:
            os.makedirs(os.path.join(self.nodedir, "log"), mode=0o755, exist_ok=True)
            for key, value in want.items():
                write_in_place(os.path.join(self.nodedir, key), value)

    # -- runtime: nspawn
    def boot_count(self):
        return len((read_text(os.path.join(self.nodedir, "log", "boot.log")) or "").splitlines())

    def stop(self, o, reason=None):
        """Stop the container (whatever runs in its root) and forget its pid."""
        if reason and (o.get("pid") or self.ctx.runtime == "vzctl" and self.vz_running(o)):
            self.bounced = reason
        if self.ctx.runtime == "vzctl":
            self.vz_stop(o)
            return
        stop_many([self], self.ctx.stop_timeout)
        o["pid"], o["init"] = None, None

    def start_nspawn(self):
        ctx = self.ctx
        if not shutil.which("systemd-nspawn"):
            raise RuntimeError("systemd-nspawn not found (package systemd-container)")
        if not netns_inode(self.ns):
            raise RuntimeError(f"network namespace {self.ns} is missing (run process_nodes with kinds=[openvz] first)")
        leftovers = processes_rooted_at([self.rootfs]).get(self.rootfs, [])
        if leftovers:
            kill_all(leftovers, signal.SIGKILL)
            wait_for(lambda: not any(proc_alive(p) for p in leftovers), ctx.stop_timeout)
        argv = self.nspawn_argv()
        self.boot_lines = self.boot_count()
        with open(self.console, "ab") as console:
            console.write(f"--- start {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode())
            console.flush()
            proc = subprocess.Popen(  # noqa: S603 - argv list
                argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        self.proc = proc
        write_in_place(self.pidfile, f"{proc.pid}\n")
        write_json(self.statefile, {"argv": argv, "pid": proc.pid, "startcmd": short_hash(self.startcmd),
                                    "boots": self.boot_lines})

    def booted(self):
        if self.ctx.runtime == "nspawn":
            # the child we started is judged by its exit status: until it has exec'd systemd-nspawn, its
            # /proc cmdline is still this module's (a busy machine stretches that moment)
            if self.proc is not None:
                status = self.proc.poll()
                running = status is None
            else:
                status, running = None, proc_alive(read_pid(self.pidfile), self.rootfs)
            if not running:
                raise RuntimeError(f"{self.name}: systemd-nspawn exited (status {status}); "
                                   f"console: {self.console_tail()}")
        return self.boot_count() > self.boot_lines

    def console_tail(self):
        text = read_text(self.console) or ""
        return " | ".join(text.strip().splitlines()[-8:])

    def ensure_running_nspawn(self, o, rebuilt):
        ctx = self.ctx
        state = o["state"]
        argv = self.nspawn_argv() if o["root_exists"] or not ctx.check else None
        reasons = []
        if o["pid"]:
            if rebuilt:
                reasons.append("root")
            if argv is not None and state.get("argv") != argv:
                reasons.append("arguments")
            if state.get("startcmd") != short_hash(self.startcmd):
                reasons.append("start command")
            init_ns = proc_netns_inode(o["init"]) if o["init"] else None
            if init_ns is not None and init_ns != netns_inode(self.ns):
                reasons.append("network namespace")
            if not reasons:
                return
            self.note(f"restart container ({', '.join(reasons)})")
            self.restarted = True
            if not ctx.check:
                self.stop(o)
        elif self.bounced:
            self.note(f"restart container ({self.bounced})")
            self.restarted = True
        else:
            self.note("start container")
            self.started = True
        if not ctx.check:
            self.start_nspawn()

    # -- runtime: vzctl (not run on an OpenVZ kernel here)
    def ctid(self, o):
        record = o["record"]
        if record.get("ctid"):
            return int(record["ctid"])
        taken = set()
        if os.path.isdir(self.ctx.vz_conf_dir):
            taken = {int(f[:-5]) for f in os.listdir(self.ctx.vz_conf_dir) if f.endswith(".conf") and f[:-5].isdigit()}
        ctid = self.ctx.module.params["vzctl_first_ctid"]
        while ctid in taken:
            ctid += 1
        if not self.ctx.check:
            record["ctid"] = ctid
            write_json(self.record_path, record)
        return ctid

    def vz_conf(self, ctid):
        netif = []
        for index, iface in enumerate(self.spec.get("interfaces") or []):
            mac = str(iface.get("mac") or "").upper()
            netif.append(f"ifname={iface['ifname']},mac={mac},host_ifname=veth{ctid}.{index}")
        lines = []
        for key, value in (
            ("ONBOOT", "no"), ("VE_LAYOUT", "simfs"), ("VE_ROOT", os.path.join(self.private, "mnt")),
            ("VE_PRIVATE", self.rootfs), ("OSTEMPLATE", self.template), ("HOSTNAME", self.hostname),
            ("DISKSPACE", f"{self.size >> 10}:{self.size >> 10}"), ("PHYSPAGES", "0:unlimited"),
            ("SWAPPAGES", "0:unlimited"), ("NETIF", ";".join(netif)),
        ):  # fmt: skip
            # CTID.conf is sourced by shells (vzctl's scripts, CTID.mount): a value is data, never code
            if re.search(r'["\\$`\n]', str(value)):
                raise RuntimeError(f"{key} {value!r} cannot be written to {ctid}.conf: no quotes, backslashes, "
                                   "'$', backquotes or newlines")
            lines.append(f'{key}="{value}"\n')
        return "".join(lines)

    def vz_mount_script(self):
        binds = [(self.nodedir, "/var/containers", False), *self.shares()]
        lines = ["#!/bin/sh", "# written by containerize (openvz_guests): bind mounts of the container",
                 ". /etc/vz/vz.conf", '. "${VE_CONFFILE}"']
        for path, mount, readonly in binds:
            lines.append(f'mkdir -p "${{VE_ROOT}}{mount}" && mount -n --bind {path} "${{VE_ROOT}}{mount}" || exit 1')
            if readonly:
                lines.append(f'mount -n -o remount,ro,bind "${{VE_ROOT}}{mount}" || exit 1')
        return "\n".join(lines) + "\nexit 0\n"

    def vz_running(self, o):
        ctid = o["record"].get("ctid")
        if not ctid:
            return False
        rc, out, _err = run(["vzctl", "status", str(ctid)])
        return rc == 0 and " running" in out

    def vz_stop(self, o):
        ctid = o["record"].get("ctid")
        if ctid and self.vz_running(o):
            run(["vzctl", "stop", str(ctid)], timeout=self.ctx.stop_timeout + 60)
        head = f"{self.name}."
        for entry in os.listdir(self.ctx.run_dir) if os.path.isdir(self.ctx.run_dir) else []:
            if not (entry.startswith(head) and entry.endswith(".pcap.pid")):
                continue
            pidfile = self.ctx.rpath(entry)
            pid = read_pid(pidfile)
            if proc_alive(pid, pidfile):
                kill_all([pid], signal.SIGTERM)
            remove_path(pidfile)

    def ensure_running_vzctl(self, o, rebuilt, reboot_files):
        ctx = self.ctx
        if not shutil.which("vzctl"):
            raise RuntimeError("vzctl not found (runtime vzctl)")
        ctid = self.ctid(o)
        conf = os.path.join(ctx.vz_conf_dir, f"{ctid}.conf")
        mount = os.path.join(ctx.vz_conf_dir, f"{ctid}.mount")
        changed_conf = False
        for path, content, mode in ((conf, self.vz_conf(ctid), 0o644), (mount, self.vz_mount_script(), 0o755)):
            if read_text(path) != content:
                self.note(f"{path}")
                changed_conf = True
                if not ctx.check:
                    os.makedirs(ctx.vz_conf_dir, exist_ok=True)
                    write_in_place(path, content, mode)
        running = self.vz_running(o)
        if running and (rebuilt or changed_conf or reboot_files):
            self.note("restart container")
            self.restarted = True
            if not ctx.check:
                run(["vzctl", "stop", str(ctid)], timeout=ctx.stop_timeout + 60)
            running = False
        elif not running:
            self.note("start container")
            self.started = True
        if not running and not ctx.check:
            self.boot_lines = self.boot_count()
            must(["vzctl", "start", str(ctid)], f"start container {ctid}", timeout=300)
        # the host side of each veth, plugged into its planned switch
        for index, iface in enumerate(self.spec.get("interfaces") or []):
            pidfile = ctx.rpath(f"{self.name}.{index}.pcap.pid")
            if proc_alive(read_pid(pidfile), pidfile) and running:
                continue
            self.note(f"plug {iface['ifname']}")
            if ctx.check:
                continue
            host_if = f"veth{ctid}.{index}"
            run(["ip", "link", "set", "dev", host_if, "up"])
            argv = ["vde_pcapplug", "-d", "-P", pidfile, "-s", ctx.rpath(f"{iface['switch']}.ctl")]
            if iface.get("port"):
                argv += ["-p", str(int(iface["port"]))]
            must(argv + [host_if], f"plug {host_if}")

    # -- all of it
    def ensure(self):
        ctx = self.ctx
        o = self.observe()
        self.before = {"template": o["record"].get("template"), "disk": o["record"].get("disk"),
                       "size": o["record"].get("size"), "state": self.running_summary(o),
                       "files": {rel: short_hash(text) for rel, text in sorted(o["files"].items())}}
        rebuilt = self.ensure_private(o)
        self.ensure_nodedir()
        reboot_files = self.ensure_files(o)
        if ctx.runtime == "vzctl":
            self.ensure_running_vzctl(o, rebuilt, reboot_files)
        else:
            self.ensure_running_nspawn(o, rebuilt)
        self.after = {"template": self.template, "disk": (o["record"].get("disk") or ctx.disk),
                      "size": self.size, "state": "running",
                      "files": {rel: short_hash(content) for rel, (content, _m) in sorted(self.files().items())}}
        return self


def stop_many(containers, timeout):
    """Stop nspawn containers at once: TERM to nspawn, then KILL their init and anything left in their roots."""
    pids = {}
    for c in containers:
        pid = read_pid(c.pidfile)
        if proc_alive(pid, c.rootfs):
            pids[c.name] = pid
            kill_all([pid], signal.SIGTERM)
    stopped = set(pids)

    def all_dead():
        return not any(proc_alive(pid) for pid in pids.values())

    if pids and not wait_for(all_dead, timeout):
        for pid in pids.values():
            kill_all([k for k in children(pid)], signal.SIGKILL)
        wait_for(all_dead, 5)
        kill_all(list(pids.values()), signal.SIGKILL)
    rooted = processes_rooted_at([c.rootfs for c in containers])
    leftovers = [pid for pid_list in rooted.values() for pid in pid_list]
    if leftovers:
        kill_all(leftovers, signal.SIGKILL)
        wait_for(lambda: not any(proc_alive(p) for p in leftovers), 5)
        stopped |= {c.name for c in containers if c.rootfs in rooted}
    for c in containers:
        remove_path(c.pidfile)
    return stopped


def remove_containers(ctx, containers, result):
    """Stop and remove CONTAINERS (their private areas and records). Returns True if anything existed."""
    changed = False
    present = [c for c in containers if os.path.lexists(c.private) or os.path.lexists(c.pidfile)
               or os.path.lexists(c.statefile)]
    if not present:
        return False
    changed = True
    result["stopped"].extend(sorted(c.name for c in present))
    if ctx.check:
        return changed
    if ctx.runtime == "vzctl":
        for c in present:
            o = {"record": read_json(c.record_path) or {}}
            c.vz_stop(o)
            if o["record"].get("ctid"):
                for ext in ("conf", "mount"):
                    remove_path(os.path.join(ctx.vz_conf_dir, f"{o['record']['ctid']}.{ext}"))
    stop_many(present, ctx.stop_timeout)
    errors = []
    for c in present:
        left = unmount_all(c.private)
        if left:
            errors.append(f"{c.name}: cannot unmount {', '.join(left)}")
            continue
        if os.path.exists(c.image):
            try:
                detach_loops(c.image)
            except RuntimeError as exc:
                ctx.module.warn(str(exc))
        remove_path(c.private)
        remove_path(c.statefile)
    if errors:
        raise RuntimeError("; ".join(errors))
    return changed


def validate(guests):
    errors = []
    seen = set()
    for g in guests:
        name = str(g.get("name", ""))
        if not NAME_RE.match(name):
            errors.append(f"guest name {name!r} is not a valid node name")
            continue
        if name in seen:
            errors.append(f"guest {name} planned twice")
        seen.add(name)
        if not NS_RE.match(str(g.get("namespace") or "")):
            errors.append(f"guest {name}: namespace {g.get('namespace')!r} is not a valid name")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9.-]*$", str(g.get("hostname") or name)):
            errors.append(f"guest {name}: hostname {g.get('hostname')!r} is not valid")
        try:
            parse_size(g.get("openvz_diskspace") or "1G")
        except ValueError as exc:
            errors.append(f"guest {name}: {exc}")
        template = str(g.get("openvz_template") or "")
        if template and ("\0" in template or (not os.path.isabs(template) and "/" in template)):
            errors.append(f"guest {name}: template {template!r} is not a name or an absolute path")
    return errors


def run_present(ctx, guests, result):
    module = ctx.module
    for share in module.params["shares"]:
        if share.get("path") and not os.path.isdir(share["path"]):
            module.warn(f"share {share['path']} does not exist on this pnode; containers go without it")
    planned = {g["name"] for g in guests}
    stale = [Container(ctx, {"name": n, "namespace": ""}) for n in ctx.existing() if n not in planned]
    if stale and remove_containers(ctx, stale, result):
        result["changed"] = True
    if guests and not ctx.check:
        os.makedirs(ctx.base, mode=0o755, exist_ok=True)
    containers = [Container(ctx, g) for g in guests]
    errors = []
    done = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, module.params["workers"])) as pool:
        futures = {pool.submit(c.ensure): c for c in containers}
        for future in concurrent.futures.as_completed(futures):
            try:
                done.append(future.result())
            except Exception as exc:  # noqa: BLE001 - reported per guest below
                errors.append(f"{futures[future].name}: {exc}")
    if module.params["wait_booted"] and not ctx.check:
        booting = [c for c in done if c.started or c.restarted]
        deadline = time.monotonic() + module.params["boot_timeout"]
        while booting and time.monotonic() < deadline:
            still = []
            for c in booting:
                try:
                    if not c.booted():
                        still.append(c)
                except RuntimeError as exc:
                    errors.append(str(exc))
            booting = still
            if booting:
                time.sleep(0.1)
        for c in booting:
            errors.append(f"{c.name}: not booted after {module.params['boot_timeout']:.0f} s (its init did not run "
                          f"/etc/rc.local?); console: {c.console_tail()}")
    before, after = {}, {}
    for c in sorted(done, key=lambda c: c.name):
        if c.changes:
            result["changed"] = True
            result["guests"][c.name] = c.changes
            before[c.name], after[c.name] = c.before, c.after
        if c.started:
            result["started"].append(c.name)
        if c.restarted:
            result["restarted"].append(c.name)
    result["diff"] = {"before": before, "after": after}
    if errors:
        module.fail_json(msg="some openvz guests failed: " + "; ".join(sorted(errors)), **result,
                         invocation=compact_invocation(module))


def run_absent(ctx, guests, result):
    names = sorted({g["name"] for g in guests} | set(ctx.existing()))
    containers = [Container(ctx, {"name": n, "namespace": ""}) for n in names]
    before = [c.name for c in containers if os.path.lexists(c.private)]
    result["changed"] = remove_containers(ctx, containers, result)
    if not ctx.check:
        try:
            os.rmdir(ctx.base)
        except OSError:
            pass
        top = os.path.dirname(ctx.base)  # root/openvz, shared by the experiments of this pnode
        if os.path.isdir(top) and not os.listdir(top):
            if mount_propagation(top) is not None:
                run(["umount", top])
            try:
                os.rmdir(top)
            except OSError:
                pass
    result["diff"] = {"before": {"containers": before}, "after": {"containers": []}}


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/var/containers"},
            "run_dir": {"type": "path", "required": True},
            "exp_name": {"type": "str", "required": True},
            "project": {"type": "str", "required": True},
            "experiment": {"type": "str", "required": True},
            "hosts": {"type": "raw", "default": []},
            "guests": {"type": "list", "elements": "dict", "default": []},
            "template_dirs": {"type": "list", "elements": "path", "default": []},
            "template": {"type": "str", "default": ""},
            "diskspace": {"type": "str", "default": "2G"},
            "runtime": {"type": "str", "choices": ["auto", "nspawn", "vzctl"], "default": "auto"},
            "disk": {"type": "str", "choices": ["auto", "image", "directory"], "default": "auto"},
            "shares": {"type": "list", "elements": "dict", "default": []},
            "capabilities": {"type": "list", "elements": "str", "default": ["CAP_NET_ADMIN"]},
            "nspawn_args": {"type": "list", "elements": "str", "default": []},
            "kill_signal": {"type": "str", "default": ""},
            "vzctl_first_ctid": {"type": "int", "default": 1000},
            "vzctl_conf_dir": {"type": "path", "default": "/etc/vz/conf"},
            "wait_booted": {"type": "bool", "default": True},
            "boot_timeout": {"type": "float", "default": 60.0},
            "stop_timeout": {"type": "float", "default": 10.0},
            "workers": {"type": "int", "default": 4},
            "state": {"type": "str", "choices": ["present", "absent", "query"], "default": "present"},
        },
        supports_check_mode=True,
    )
    check_hosts(module)
    for key in ("exp_name", "project", "experiment"):
        if not NS_RE.match(module.params[key]):
            module.fail_json(msg=f"{key} {module.params[key]!r} is not a valid name")
    ctx = Context(module)
    guests = [g for g in module.params["guests"] if g.get("kind") == "openvz"]
    result = {"changed": False, "runtime": ctx.runtime, "disk": ctx.disk, "guests": {}, "started": [],
              "restarted": [], "stopped": []}
    errors = validate(guests)
    if errors:
        module.fail_json(msg="invalid openvz guests: " + "; ".join(errors), errors=errors, **result)
    state = module.params["state"]
    try:
        if state == "absent":
            run_absent(ctx, guests, result)
        elif state == "present":
            run_present(ctx, guests, result)
    except RuntimeError as exc:
        module.fail_json(msg=str(exc), **result)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
