#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: realize every qemu node of one pnode (images, configuration, VMs, boot status).

The work is in module_utils: image_cache (images), initramfs (kernel and initramfs), qmp (qemu
processes), qemu_config (the plan checked, the configuration files), qemu_node (one node: plan,
then apply) and qemu_exec (`containerize exec` for qemu nodes).
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: qemu_nodes
short_description: Realize the qemu nodes of one pnode
description:
  - Makes every C(qemu) node planned for this pnode (C(containerize_nodes) of C(host_vars/pnode-NNNN.yml))
    run as a supervised C(qemu-system-ARCH) virtual machine, in one call.
  - B(Images.) A node boots from C(qemu_url) of its entry, else O(default_url). A directory or a tarball
    (C(.tar), C(.tar.gz), C(.tgz), C(.tar.xz), C(.tar.zst), C(.tar.bz2)) is a I(rootfs) image; anything else
    is a I(disk) image (raw or qcow2, optionally compressed with gzip, xz, bzip2 or zstd). Local paths and
    C(http(s)) URLs are fetched once per pnode into O(image_cache) and verified by SHA-256 (from
    O(checksums), a C(#sha256=HEX) URL fragment, or a C(URL.sha256) file beside the image; an image without
    any is used with a warning). A directory is used in place.
  - A bad image fails its own nodes only, each named with the image and the cause on the task's one failure
    line (it cannot be fetched or unpacked, its sha256 does not match, a rootfs lacks a shell, an init,
    modprobe or ip, a disk is under 1 MiB); the other nodes are made and booted first, and a failed fetch
    leaves nothing in O(image_cache).
  - Per node, a rootfs image gets a copy-on-write root directory (an overlayfs of the image,
    C(root/qemu/EXP/NODE/root)) that qemu serves as the node's root file system over 9p; a disk image gets
    a qcow2 overlay C(root/qemu/EXP/NODE/disk.qcow2) backed by the cached image.
  - B(Boot.) Every node boots the pnode's kernel (O(kernel), default the newest C(/boot/vmlinuz-*), the
    Debian C(linux-image-amd64)) with a small busybox initramfs built by this module around the qemu role's
    C(files/init) (read from O(scripts_dir)C(/qemu/init); cached in O(image_cache)). The initramfs loads the
    virtio, 9p and file system modules, mounts the root (9p or the first disk partition holding
    C(/sbin/init)), mounts the pnode's C(/lib/modules/VERSION) read-only in the node so the node can load
    any module of its kernel, applies the node's configuration (disk images) and switches to the image's own
    C(/sbin/init).
  - B(Configuration) is rendered per node in C(root/qemu/EXP/NODE/config/) and applied by one POSIX shell
    script (the qemu role's C(files/apply.sh)) before the image's init runs. For a rootfs image it is
    applied on the pnode before qemu starts (C(files/host-apply.sh), chrooted into the node's root with the
    pnode's static busybox, in a private mount namespace); for a disk image the initramfs applies it from a
    read-only 9p share. It writes C(/etc/hostname), C(/etc/hosts), a marked block of 9p lines in
    C(/etc/fstab) (C(/var/containers) and every share of O(shares)), the accounts of O(users) (added to
    C(/etc/passwd), C(/etc/group), C(/etc/shadow) when missing), C(/etc/containerize/) (C(boot.sh),
    C(agent.sh), C(start-command.sh) and the node's plan) and a marked block in C(/etc/rc.local) (plus the
    systemd unit C(files/containerize.service) and an OpenRC C(local.d) script when the image has those)
    that runs C(/etc/containerize/boot.sh) at every boot.
  - C(boot.sh) (in the node, once per boot) mounts the 9p file systems, sets the hostname, finds each
    planned interface by its MAC, names it as planned and gives it its address, sets the routes, IPv4
    forwarding and end-node shaping (C(tc) C(tbf), or C(netem) when delay or loss is planned; the node
    kernel has C(netem)), writes C(/var/containers/log/booted) and prints a marker line on the serial
    console, starts the exec agent and runs the start command (with C(HOME=/root)) through
    C(/etc/containerize/start-command.sh), a copy of O(scripts_dir)C(/hv/start-command.sh), the start
    command supervisor of every kind of node, which writes C(start_command.log) (C(start TIME), C(exit N),
    C(end TIME)), C(.out) and C(.err) in C(/var/containers/log). C(/var/containers) is the node directory
    C(root/nodes/EXP/NODE) (C(pid), C(eid), C(log/), C(exec/)) served over 9p.
  - B(Networking.) One C(-netdev vde) per interface on the planned switch (C(run_dir/SWITCH.ctl)) and port,
    with a C(virtio-net-pci) device carrying the planned MAC.
  - B(Lifecycle.) qemu runs daemonized with a pid file C(run_dir/NODE.qemu.pid), a QMP socket
    C(run_dir/NODE.qmp), its serial console in C(run_dir/NODE.serial.log) and a record
    C(run_dir/NODE.qemu.json) (argv, configuration hash, switch pids, start time). A node is started when
    it is not running; it is stopped and started again when its argv or configuration changed or one of its
    switches was restarted since it started. A running node whose plan did not change is left alone.
    Acceleration is KVM when O(accel=kvm), TCG when O(accel=tcg); O(accel=auto) probes KVM once per pnode
    (the kernel must print on the serial console within O(accel_probe_timeout) seconds) and falls back to
    TCG; the result is cached in O(image_cache).
  - B(Status.) Each node is C(dead) (no qemu), C(running) (qemu runs, the node has not reported) or
    C(booted) (the node wrote C(log/booted) or printed its marker on the serial console since qemu
    started), with the start command's exit status once known. With O(wait_booted) the module waits up to
    O(boot_timeout) seconds for every node to boot and fails naming those that did not, with the end of
    their serial console.
  - With O(state=absent), nodes are powered down (QMP C(system_powerdown)), after O(stop_timeout) seconds
    told to C(quit), then killed; their overlays are unmounted and their disks, root directories, node
    directories, sockets, logs and records removed. Nodes are found from O(nodes), the records in
    O(run_dir) and C(root/qemu/EXP), so a half-failed swap-in is cleaned too. The image cache stays (it is
    per pnode) unless O(purge_cache).
version_added: "0.1.0"
author:
  - containerize authors
extends_documentation_fragment: [containerize.deploy.experiment.node_module]
options:
  nodes:
    description:
      - The nodes of this pnode (C(containerize_nodes)); entries of another C(kind) are ignored
        (an entry without C(kind) is a qemu node), and a qemu node of the experiment that is no
        longer planned as one is removed.
      - Keys used are C(name), C(kind), C(ghost), C(hostname), C(startcmd), C(forwarding),
        C(interfaces) (C({ifname, switch, port, mac, address, prefix, tc})), C(routes)
        (C({dest, gateway})), C(qemu_url), C(qemu_arch) and, when present, C(qemu_memory) (MiB) and
        C(qemu_cpus). Other keys are ignored.
    type: list
    elements: dict
    default: []
  default_url:
    description: Image of nodes whose C(qemu_url) is empty (the site's C(qemu_url)).
    type: str
    default: ""
  authorized_keys:
    description:
      - Public keys that may log into every node as root with ssh (the experiment's key, made by the
        node_ssh role); they go to the node's C(/root/.ssh/authorized_keys).
      - When given, each node also gets a control NIC C(cz-ssh) on qemu's user network, isolated
        (C(restrict=on)) and reachable only through one forward from C(127.0.0.1:PORT) of the pnode to
        the node's port 22; PORT is kept in O(run_dir)C(/NODE.ssh-port) (C(containerize ssh) reads it).
    type: list
    elements: str
    default: []
  checksums:
    description: Expected checksums, a dict from URL or path to C(sha256:HEX).
    type: dict
    default: {}
  image_cache:
    description: Per-pnode cache of fetched images, the initramfs and the KVM probe result (default C(root/images)).
    type: path
  kernel:
    description:
      - Kernel every node boots (default the newest C(/boot/vmlinuz-*)).
      - Its modules must be in C(/lib/modules/VERSION).
    type: path
  kernel_append:
    description: Extra kernel command line arguments.
    type: str
    default: ""
  initramfs_modules:
    description: Kernel modules the initramfs always loads (with their dependencies).
    type: list
    elements: str
    default: [virtio_pci, virtio_blk, 9pnet_virtio, 9p]
  initramfs_filesystems:
    description:
      - File system modules the initramfs loads one at a time, in this order, until a disk image's
        root mounts (not loaded for rootfs images, whose root is 9p).
    type: list
    elements: str
    default: [ext4, xfs, btrfs]
  busybox:
    description: Static busybox used in the initramfs and to apply configuration on the pnode.
    type: path
    default: /bin/busybox
  accel:
    description: C(kvm), C(tcg), or C(auto) (probe KVM once, fall back to TCG).
    type: str
    choices: [auto, kvm, tcg]
    default: auto
  accel_probe_timeout:
    description: Seconds a KVM node has to print on its serial console in the probe.
    type: float
    default: 5.0
  machine:
    description: qemu machine type (site C(qemu_host_hw)).
    type: str
    default: pc
  memory:
    description: Node memory in MiB (a node's C(qemu_memory) wins).
    type: int
    default: 512
  cpus:
    description: Node virtual CPUs (a node's C(qemu_cpus) wins).
    type: int
    default: 1
  tcg_tb_size:
    description:
      - Size in MiB of TCG's translated code cache per node; 0 keeps qemu's default (1024 MiB,
        allocated lazily). Smaller saves some resident memory but slows the boot (16 MiB saves about
        60 MiB per node and doubles the boot time). Ignored under KVM.
    type: int
    default: 0
  shares:
    description:
      - Pnode directories served to every node over 9p and mounted from C(/etc/fstab)
        (C(trans=virtio)). A share whose I(path) does not exist is left out, with a warning.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Share name; the 9p mount tag is C(cz-NAME).
        type: str
        required: true
      path:
        description: Directory on the pnode.
        type: path
        required: true
      mount:
        description: Mount point in the node.
        type: str
        required: true
      readonly:
        description: Serve and mount it read-only.
        type: bool
        default: false
  users:
    description:
      - Accounts to create in every node (C(--qemu-prefer-users)). A name is looked up in the
        pnode's user database (warning and skipped when unknown); a dict gives C(name), C(uid) and
        optionally C(gid), C(group), C(home) (default C(/users/NAME)) and C(shell) (default C(/bin/sh)).
    type: list
    elements: raw
    default: []
  wait_booted:
    description: Wait until every node has booted (state=present).
    type: bool
    default: true
  boot_timeout:
    description: Seconds to wait for the nodes to boot.
    type: float
    default: 600
  stop_timeout:
    description: Seconds a node has to power down before it is told to quit, then killed.
    type: float
    default: 20
  timeout:
    description: Seconds to wait for qemu to start or a helper command to finish.
    type: float
    default: 30
  purge_cache:
    description: With O(state=absent), remove O(image_cache) too.
    type: bool
    default: false
notes:
  - In check mode nothing is fetched, written, started or stopped (nor is KVM probed); the diff is a
    summary per changed node.
  - Run the C(vde_network) module first, the nodes need their switches; put the hv and qemu roles'
    scripts in O(scripts_dir) (C(role_files)) first, O(state=present) needs them.
  - C(containerize exec) for qemu nodes is C(module_utils/qemu_exec.py), also a program, see C(docs/qemu.md).
requirements:
  - qemu-system-x86 (or the qemu-system package of the nodes' architecture)
  - qemu-utils
  - busybox-static
  - linux-image-amd64 (the nodes' kernel)
  - util-linux (unshare, mount)
"""

EXAMPLES = r"""
- name: Realize the qemu nodes of this pnode and wait until they booted
  containerize.deploy.qemu_nodes:
    root: "{{ containerize_root }}"
    run_dir: "{{ containerize_run_dir }}"
    exp_name: "{{ containerize_exp_name }}"
    project: "{{ containerize_project }}"
    experiment: "{{ containerize_experiment }}"
    scripts_dir: "{{ containerize_scripts_dir }}"
    default_url: /var/cache/containerize/test-image/rootfs.tar.gz
    shares:
      - {name: users, path: /users, mount: /users}
      - {name: share, path: /share, mount: /share, readonly: true}
    memory: 256
    boot_timeout: 300

- name: Remove them
  containerize.deploy.qemu_nodes:
    run_dir: "{{ containerize_run_dir }}"
    exp_name: "{{ containerize_exp_name }}"
    project: "{{ containerize_project }}"
    experiment: "{{ containerize_experiment }}"
    state: absent
"""

RETURN = r"""
nodes:
  description: For each node that changed (or would), the list of things done.
  returned: always
  type: dict
  sample:
    a: [node directory, config, root, start]
status:
  description: Per node, its state (C(dead), C(running), C(booted)), qemu pid and start command exit status.
  returned: always
  type: dict
  sample:
    a: {state: booted, pid: 4242, exit: 0}
    b: {state: running, pid: 4250, exit: null}
started:
  description: Nodes started (they were not running).
  returned: always
  type: list
  elements: str
restarted:
  description: Nodes stopped and started again (changed plan or configuration, restarted switch).
  returned: always
  type: list
  elements: str
stopped:
  description: Nodes stopped and removed (absent, or no longer planned).
  returned: always
  type: list
  elements: str
accel:
  description: Acceleration used for the nodes, C(kvm) or C(tcg).
  returned: state=present
  type: str
  sample: tcg
"""

import functools
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    compact_invocation,
    exit_result,
    read_pid,
    read_text,
    wait_for,
)
from ansible_collections.containerize.deploy.plugins.module_utils.image_cache import Image, disk_lacks, root_lacks
from ansible_collections.containerize.deploy.plugins.module_utils.initramfs import (
    default_kernel,
    initramfs_plan,
    is_static_elf,
    kernel_version,
)
from ansible_collections.containerize.deploy.plugins.module_utils.qemu_config import (
    ARCH_BINARY,
    load_scripts,
    resolve_shares,
    resolve_users,
    validate,
)
from ansible_collections.containerize.deploy.plugins.module_utils.qemu_node import (
    Context,
    QemuNode,
    find_recorded,
    remove_apply,
    remove_plan,
)
from ansible_collections.containerize.deploy.plugins.module_utils.qmp import probe_accel, scan_qemu, stop_nodes
from ansible_collections.containerize.deploy.plugins.module_utils.spec import (
    nodes_module,
    note_changes,
)


def pnode_plan(ctx, nodes):
    """Kernel, initramfs and images, the work shared by every node: [(what, action)] still to do."""
    module = ctx.module
    ctx.kernel = ctx.kernel or default_kernel()
    if not ctx.kernel or not os.path.isfile(ctx.kernel):
        module.fail_json(msg="no node kernel: install linux-image-amd64 or set qemu_kernel")
    ctx.kernel_version = kernel_version(ctx.kernel) or os.path.basename(ctx.kernel)
    if not os.path.isdir(f"/lib/modules/{ctx.kernel_version}"):
        module.fail_json(msg=f"kernel {ctx.kernel}: no modules in /lib/modules/{ctx.kernel_version}")
    if not is_static_elf(ctx.busybox):
        module.fail_json(msg=f"{ctx.busybox} is not a static busybox: install busybox-static")
    for prog in ["qemu-img", "unshare", "modprobe", *sorted({ARCH_BINARY[str(g.get('qemu_arch') or 'x86_64')]
                                                            for g in nodes})]:  # fmt: skip
        if not module.get_bin_path(prog):
            module.fail_json(msg=f"{prog} not found (packages qemu-system-x86, qemu-utils, util-linux, kmod)")
    steps = []
    ctx.initrd, build = initramfs_plan(ctx.cache, ctx.kernel_version, ctx.busybox, ctx.scripts["init"],
                                       module.params["initramfs_modules"], module.params["initramfs_filesystems"])
    if not os.path.exists(ctx.initrd):
        steps.append(("initramfs", build))
    ctx.bad_urls = {}  # {url: why} of images refused before any fetch (their nodes fail, not the others)
    for url in sorted({g.get("qemu_url") or ctx.default_url for g in nodes}):
        try:
            image = Image(ctx, url)
        except RuntimeError as exc:
            ctx.bad_urls[url] = str(exc)
            continue
        ctx.images[url] = image
        if not image.ready():
            steps.append((f"fetch {url}", image.fetch))
    return steps


def pnode_apply(ctx, steps):
    """Do the pnode's STEPS; {url: why} of the images that could not be fetched (their nodes fail, not the rest)."""
    bad = {}
    for what, action in steps:
        try:
            ctx.warnings.extend(action() or [])
        except (OSError, RuntimeError, ValueError) as exc:
            if not what.startswith("fetch "):
                raise
            url = what[len("fetch "):]
            bad[url] = str(exc) if str(exc).startswith(f"image {ctx.images[url].base_url}") else f"image {url}: {exc}"
    return bad


def check_images(ctx, bad):
    """Add to BAD ({url: why}) the fetched images that cannot be a node's root: a rootfs that lacks what a
    node needs (a shell, an init, modprobe, ip), a disk too small to hold a file system."""
    for url, image in sorted(ctx.images.items()):
        if url in bad or not image.base:
            continue
        lacks = root_lacks(image.base) if image.kind == "rootfs" else disk_lacks(image.base, image.disk_format())
        if lacks:
            bad[url] = f"image {url}: {'; '.join(lacks)}"
    return bad


def image_errors(ctx, nodes, bad):
    """(the nodes whose image is fine, "NODE: why" for each of the others)."""
    good, errors = [], []
    for g in nodes:
        url = g.get("qemu_url") or ctx.default_url
        if url in bad:
            errors.append(f"{g['name']}: {bad[url]}")
        else:
            good.append(g)
    return good, errors


def wait_booted(nodes, timeout):
    """Wait until every node booted or died; returns {name: status}."""
    statuses = {}

    def done():
        for node in nodes:
            if statuses.get(node.name, {}).get("state") not in ("booted", "dead", "failed"):
                statuses[node.name] = node.status()
        return all(s["state"] in ("booted", "dead", "failed") for s in statuses.values())

    wait_for(done, timeout, step=0.2)
    return statuses


def serial_tail(node, lines=3):
    text = (read_text(node.serial) or "").replace("\r", "")
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) if tail else "(serial console empty)"


def run_absent(ctx, nodes, purge, result):
    names = find_recorded(ctx) | {g["name"] for g in nodes}
    targets, leftovers = remove_plan(ctx, names)
    purge = purge and os.path.isdir(ctx.cache)
    result["changed"] = bool(targets or leftovers or os.path.isdir(ctx.qemu_dir) or purge)
    if result["changed"]:
        result["stopped"] = sorted(names)
    result["diff"] = {"before": {"nodes": sorted(name for name, _pid, _sock in targets)}, "after": {"nodes": []}}
    if ctx.check:
        return
    remove_apply(ctx, targets, leftovers)
    shutil.rmtree(ctx.qemu_dir, ignore_errors=True)
    try:
        os.rmdir(os.path.dirname(ctx.qemu_dir))
    except OSError:
        pass
    if purge:
        shutil.rmtree(ctx.cache, ignore_errors=True)


def run_present(ctx, nodes, result):
    module = ctx.module
    # plan: nodes recorded earlier but no longer planned, and qemu processes of planned nodes whose
    # pid file is lost (stopped, or the node runs twice); then the pnode's share, then each node
    if nodes:
        try:
            ctx.scripts = load_scripts(ctx.scripts_dir, ctx.warnings if ctx.check else None)
        except RuntimeError as exc:
            module.fail_json(msg=str(exc), **result)
    planned = {g["name"] for g in nodes}
    stale = find_recorded(ctx) - planned
    targets, leftovers = remove_plan(ctx, stale)
    if targets or leftovers:
        result["changed"] = True
        result["stopped"].extend(sorted(stale))
    orphans = [(name, pid, ctx.rpath(f"{name}.qmp")) for name, pid in scan_qemu(ctx.run_dir).items()
               if name in planned and read_pid(ctx.rpath(f"{name}.qemu.pid")) != pid]  # fmt: skip
    if orphans:
        result["changed"] = True
        result["stopped"].extend(sorted(f"{name} (orphan pid {pid})" for name, pid, _sock in orphans))
    if not ctx.check:
        for path in (ctx.run_dir, ctx.qemu_dir, ctx.nodes_dir):
            os.makedirs(path, mode=0o755, exist_ok=True)
        remove_apply(ctx, targets, leftovers)
        stop_nodes(orphans, ctx.stop_timeout, ctx.timeout)
    if not nodes:
        return
    steps = pnode_plan(ctx, nodes)
    if steps:
        result["changed"] = True
        result["pnode"].extend(what for what, _action in steps)
    bad = dict(ctx.bad_urls)
    if not ctx.check:
        bad.update(pnode_apply(ctx, steps))
        check_images(ctx, bad)
    nodes, bad_images = image_errors(ctx, nodes, bad)
    if module.params["accel"] == "auto":
        ctx.accel, result["accel_reason"] = probe_accel(ctx.cache, ctx.kernel, module.params["accel_probe_timeout"],
                                                        ctx.check)  # fmt: skip
    else:
        ctx.accel = module.params["accel"]
    result["accel"] = ctx.accel

    def realize(node):
        node.plan()
        return node if ctx.check else node.apply()

    done, errors = ctx.run_each([(g["name"], functools.partial(realize, QemuNode(ctx, g))) for g in nodes])
    for node in note_changes(done, result):
        if node.restarted:
            result["restarted"].append(node.name)
        elif node.started:
            result["started"].append(node.name)
    if errors:
        module.fail_json(msg="some qemu nodes failed: " + "; ".join(sorted(errors + bad_images)), **result,
                         invocation=compact_invocation(module))
    if module.params["wait_booted"] and not ctx.check:
        result["status"] = wait_booted(done, module.params["boot_timeout"])
    else:
        result["status"] = {g.name: g.status() for g in done}
    bad = [g for g in sorted(done, key=lambda g: g.name) if result["status"][g.name]["state"] != "booted"]
    if module.params["wait_booted"] and bad and not ctx.check:
        report = "; ".join(f"{g.name} is {result['status'][g.name]['state']} ("
                           + (result["status"][g.name].get("detail") or f"serial: {serial_tail(g)}") + ")" for g in bad)
        module.fail_json(msg=f"{len(bad)} of {len(done)} qemu nodes did not boot within "
                             f"{module.params['boot_timeout']:g} s: {report}"
                             + "".join(f"; {line}" for line in sorted(bad_images)), **result)  # fmt: skip
    if bad_images:  # (after the other nodes booted: a bad image fails its nodes only)
        module.fail_json(msg="some qemu nodes failed: " + "; ".join(sorted(bad_images)), **result)


def main():
    module = nodes_module(AnsibleModule, {
        "default_url": {"type": "str", "default": ""},
        "checksums": {"type": "dict", "default": {}},
        "authorized_keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
        "image_cache": {"type": "path"},
        "kernel": {"type": "path"},
        "kernel_append": {"type": "str", "default": ""},
        "initramfs_modules": {"type": "list", "elements": "str",
                              "default": ["virtio_pci", "virtio_blk", "9pnet_virtio", "9p"]},  # fmt: skip
        "initramfs_filesystems": {"type": "list", "elements": "str", "default": ["ext4", "xfs", "btrfs"]},
        "busybox": {"type": "path", "default": "/bin/busybox"},
        "accel": {"type": "str", "choices": ["auto", "kvm", "tcg"], "default": "auto"},
        "accel_probe_timeout": {"type": "float", "default": 5.0},
        "machine": {"type": "str", "default": "pc"},
        "memory": {"type": "int", "default": 512},
        "cpus": {"type": "int", "default": 1},
        "tcg_tb_size": {"type": "int", "default": 0},
        "shares": {"type": "list", "elements": "dict", "default": []},
        "users": {"type": "list", "elements": "raw", "default": []},
        "wait_booted": {"type": "bool", "default": True},
        "boot_timeout": {"type": "float", "default": 600},
        "stop_timeout": {"type": "float", "default": 20},
        "timeout": {"type": "float", "default": 30},
        "purge_cache": {"type": "bool", "default": False},
    })
    ctx = Context(module)
    nodes = [g for g in module.params["nodes"] if (g.get("kind") or "qemu") == "qemu"]
    result = {"changed": False, "nodes": {}, "pnode": [], "status": {}, "started": [], "restarted": [],
              "stopped": []}  # fmt: skip
    if module.params["state"] == "absent":
        run_absent(ctx, nodes, module.params["purge_cache"], result)
    else:
        errors = validate(ctx, nodes)
        if errors:
            module.fail_json(msg="invalid qemu nodes: " + "; ".join(errors), errors=errors)
        try:
            ctx.shares = resolve_shares(module.params["shares"], ctx.warnings)
            ctx.accounts = resolve_users(module.params["users"], ctx.warnings)
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        run_present(ctx, nodes, result)
    for warning in ctx.warnings:
        module.warn(warning)
    exit_result(module, result)


if __name__ == "__main__":
    main()
