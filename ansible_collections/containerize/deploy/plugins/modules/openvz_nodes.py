#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: the openvz nodes of one pnode (OS containers from templates), in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: openvz_nodes
short_description: Realize the openvz nodes (OS containers from template tarballs) of one pnode
description:
  - Makes every C(openvz) node planned for this pnode (C(containerize_nodes) of
    C(host_vars/pnode-NNNN.yml)) exist as an OS container sharing the pnode's kernel, in one call.
  - "Private area: C(root/openvz/EXP_NAME/NODE/) holds C(root/) (the container's root file
    system), C(private.json) (what the root was made from), C(console.log) and, with O(disk=image),
    C(disk.img) (with O(disk=overlay), C(upper/) and C(work/)). The root is unpacked from the
    node's template C(NAME) found as C(DIR/NAME.tar.gz)
    (or C(.tgz), C(.tar.xz), C(.txz), C(.tar.zst), C(.tzst), C(.tar.bz2), C(.tar)) in the first
    directory of O(template_dirs) that has it; an absolute path names the file itself. It is
    unpacked once and kept while the template name stays the same, so changes made inside the
    container survive a re-run; a new template name makes a new root."
  - "Disk space (C(openvz_diskspace): C(2G), C(500M), C(1.5T); a bare number counts 1K blocks as
    vzctl's C(--diskspace) does): with O(disk=image) the root is an ext4 file system in a sparse
    image of that size, loop-mounted on C(root/), so the limit is enforced; a changed size is
    applied offline (the container is stopped, the file system resized, the container started).
    With O(disk=overlay) the root is an overlayfs: the template unpacked once per pnode in
    C(root/images/openvz/root-KEY/) (read-only, shared by every container of it) under the
    container's own C(upper/) and C(work/); the size is only recorded and what a container writes
    counts against the pnode's file system. With O(disk=directory) the root is a plain directory
    and the size is only recorded. With the C(vzctl) runtime the size goes to C(DISKSPACE), which
    OpenVZ enforces."
  - "Configured idempotently in the root (files are rewritten only when they differ, never through
    a symbolic link that leaves the root): C(/etc/hostname), C(/etc/hosts) (the experiment's hosts),
    C(/etc/rc.local) (a copy of O(scripts_dir)C(/openvz/rc.local), the openvz role's C(files/rc.local),
    which records each boot in C(/var/containers/log/boot.log) and runs the start command in the
    background), C(/etc/containerize/start-command.sh) (a copy of O(scripts_dir)C(/hv/start-command.sh),
    the start command supervisor of every kind of node: status in
    C(/var/containers/log/start_command.log) (C(start TIME), C(exit N), C(end TIME)), output in
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
    C(NS) (the node's C(namespace)) must exist and be wired already: the C(openvz) role runs the
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
    command, root or disk changed, or whose init is no longer in the node's network namespace (the
    namespace was made again). A running container that is left alone gets its network checked from
    the pnode (each interface with an address and each route, as rc.local checks at boot); its
    C(log/failed) is made to name what is missing, or removed when all is in place. Processes left
    in a root by a killed runtime are killed first. A
    container is stopped by C(SIGTERM) to nspawn, which sends O(kill_signal) to the container's init,
    then after O(stop_timeout) by C(SIGKILL) to its init. Containers of this experiment that are no
    longer planned as C(openvz) are removed."
  - With O(state=absent), every container of the experiment (planned or found under
    C(root/openvz/EXP_NAME)) is stopped, its mounts undone and its private area removed. With
    O(state=query) nothing changes; the result names the runtime and disk mode C(auto) would pick.
version_added: "0.1.0"
author:
  - containerize authors
extends_documentation_fragment: [containerize.deploy.experiment.node_module]
options:
  authorized_keys:
    description:
      - Public keys that may log into every container as root with ssh (the experiment's key, made by the
        node_ssh role), written to its C(/root/.ssh/authorized_keys). C(containerize ssh) reaches the
        container's sshd from inside its network namespace, so nothing listens on a pnode address.
    type: list
    elements: str
    default: []
  template_dirs:
    description: Directories searched, in order, for template tarballs (C(containerize_openvz_template_dirs)).
    type: list
    elements: path
    default: []
  template:
    description: Template of nodes without C(openvz_template).
    type: str
    default: ""
  diskspace:
    description: Disk space of nodes without C(openvz_diskspace).
    type: str
    default: 2G
  runtime:
    description:
      - C(nspawn) (systemd-nspawn in the node's network namespace), C(vzctl) (an OpenVZ kernel), or
        C(auto) (C(vzctl) when C(/proc/vz) exists and C(vzctl) is installed, C(nspawn) otherwise).
    type: str
    choices: [auto, nspawn, vzctl]
    default: auto
  disk:
    description:
      - C(image) (an ext4 image of the disk space, loop-mounted, so the limit is enforced),
        C(overlay) (an overlay on the shared unpacked template, the limit is recorded only),
        C(directory) (the limit is recorded only), or C(auto) (C(overlay) when the kernel has
        overlayfs, except for a node whose C(openvz_diskspace) differs from O(diskspace), which is
        asked for and gets C(image) when C(mkfs.ext4) and C(/dev/loop-control) are there).
        Ignored by the C(vzctl) runtime, which enforces C(DISKSPACE).
      - The mode of an existing private area is kept until it is made again.
    type: str
    choices: [auto, image, overlay, directory]
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
  state:
    description:
      - C(present) realizes the nodes, C(absent) removes every openvz node of the experiment.
      - C(query) changes nothing and reports the runtime and disk mode.
    type: str
    choices: [present, absent, query]
    default: present
notes:
  - Run C(vde_network) and C(process_nodes) (C(kinds=[openvz]), C(start_commands=false)) first, and put
    the hv and openvz roles' scripts in O(scripts_dir) (C(role_files)); O(state=present) needs them.
requirements:
  - systemd-container (systemd-nspawn), tar and the compressors of the templates
  - e2fsprogs and loop devices for O(disk=image)
  - vzctl and vde2 (vde_pcapplug) for the vzctl runtime
"""

EXAMPLES = r"""
- name: Realize the openvz nodes of this pnode
  containerize.deploy.openvz_nodes:
    root: "{{ containerize_root }}"
    run_dir: "{{ containerize_run_dir }}"
    exp_name: "{{ containerize_exp_name }}"
    project: "{{ containerize_project }}"
    experiment: "{{ containerize_experiment }}"
    scripts_dir: "{{ containerize_scripts_dir }}"
    template_dirs: [/share/containers/images/openvz]
    shares:
      - {path: /users, mount: /users, readonly: false}
      - {path: /share, mount: /share, readonly: true}

- name: Which runtime would be used here?
  containerize.deploy.openvz_nodes:
    run_dir: "{{ containerize_run_dir }}"
    exp_name: "{{ containerize_exp_name }}"
    project: "{{ containerize_project }}"
    experiment: "{{ containerize_experiment }}"
    state: query
  register: openvz_probe

- name: Remove them
  containerize.deploy.openvz_nodes:
    run_dir: "{{ containerize_run_dir }}"
    exp_name: "{{ containerize_exp_name }}"
    project: "{{ containerize_project }}"
    experiment: "{{ containerize_experiment }}"
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
nodes:
  description: For each node that changed (or would), the list of things done.
  returned: always
  type: dict
  sample:
    c-2: [private root from busybox, node directory, /etc/hosts, /etc/rc.local, start container]
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

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils import nspawn, vzctl
from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    compact_invocation,
    exit_result,
    read_json,
    remove_path,
)
from ansible_collections.containerize.deploy.plugins.module_utils.loop_disk import (
    detach_loops,
    ensure_shared,
    mount_propagation,
    parse_size,
    run,
    unmount_all,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import NS_RE, planned_names
from ansible_collections.containerize.deploy.plugins.module_utils.openvz_container import Container, Context
from ansible_collections.containerize.deploy.plugins.module_utils.spec import (
    nodes_module,
    note_changes,
)

HOSTNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


def remove_containers(ctx, containers, result):
    """Stop and remove CONTAINERS (their private areas and records). Returns True if anything existed."""
    present = [c for c in containers if os.path.lexists(c.private) or os.path.lexists(c.pidfile)
               or os.path.lexists(c.statefile)]
    if not present:
        return False
    result["stopped"].extend(sorted(c.name for c in present))
    if ctx.check:
        return True
    if ctx.runtime == "vzctl":
        for c in present:
            vzctl.remove(c, (read_json(c.record_path) or {}).get("ctid"))
    nspawn.stop_many(present, ctx.stop_timeout)
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
    return True


def validate(nodes):
    errors = []
    for name, g in planned_names(nodes, errors):
        if not NS_RE.match(str(g.get("namespace") or "")):
            errors.append(f"node {name}: namespace {g.get('namespace')!r} is not a valid name")
        if not HOSTNAME_RE.match(str(g.get("hostname") or name)):
            errors.append(f"node {name}: hostname {g.get('hostname')!r} is not valid")
        try:
            parse_size(g.get("openvz_diskspace") or "1G")
        except ValueError as exc:
            errors.append(f"node {name}: {exc}")
        template = str(g.get("openvz_template") or "")
        if template and ("\0" in template or (not os.path.isabs(template) and "/" in template)):
            errors.append(f"node {name}: template {template!r} is not a name or an absolute path")
    return errors


def wait_booted(containers, timeout):
    """Wait until the started CONTAINERS have run their rc.local; the errors of those that did not."""
    errors = []
    booting = [c for c in containers if c.started or c.restarted]
    deadline = time.monotonic() + timeout
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
        errors.append(f"{c.name}: not booted after {timeout:.0f} s (its init did not run /etc/rc.local?); "
                      f"console: {c.console_tail()}")
    return errors


def run_present(ctx, nodes, result):
    module = ctx.module
    for share in module.params["shares"]:
        if share.get("path") and not os.path.isdir(share["path"]):
            module.warn(f"share {share['path']} does not exist on this pnode; containers go without it")
    if nodes:
        ctx.load_scripts()
    planned = {g["name"] for g in nodes}
    stale = [Container(ctx, {"name": n, "namespace": ""}) for n in ctx.existing() if n not in planned]
    if stale and remove_containers(ctx, stale, result):
        result["changed"] = True
    if nodes and not ctx.check:
        os.makedirs(ctx.base, mode=0o755, exist_ok=True)
        if ctx.disk in ("image", "overlay"):
            # before the threads: a bind mount of root/openvz made while a container's root is already
            # mounted below it would hide that root from the module and from systemd-nspawn
            ensure_shared(os.path.dirname(ctx.base))
    done, errors = ctx.run_each([(g["name"], Container(ctx, g).ensure) for g in nodes])
    if module.params["wait_booted"] and not ctx.check:
        errors += wait_booted(done, module.params["boot_timeout"])
    for c in note_changes(done, result):
        if c.started:
            result["started"].append(c.name)
        if c.restarted:
            result["restarted"].append(c.name)
    if errors:
        module.fail_json(msg="some openvz nodes failed: " + "; ".join(sorted(errors)), **result,
                         invocation=compact_invocation(module))


def run_absent(ctx, nodes, result):
    names = sorted({g["name"] for g in nodes} | set(ctx.existing()))
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
    module = nodes_module(AnsibleModule, {
        "template_dirs": {"type": "list", "elements": "path", "default": []},
        "authorized_keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
        "template": {"type": "str", "default": ""},
        "diskspace": {"type": "str", "default": "2G"},
        "runtime": {"type": "str", "choices": ["auto", "nspawn", "vzctl"], "default": "auto"},
        "disk": {"type": "str", "choices": ["auto", "image", "overlay", "directory"], "default": "auto"},
        "shares": {"type": "list", "elements": "dict", "default": []},
        "capabilities": {"type": "list", "elements": "str", "default": ["CAP_NET_ADMIN"]},
        "nspawn_args": {"type": "list", "elements": "str", "default": []},
        "kill_signal": {"type": "str", "default": ""},
        "vzctl_first_ctid": {"type": "int", "default": 1000},
        "vzctl_conf_dir": {"type": "path", "default": "/etc/vz/conf"},
        "wait_booted": {"type": "bool", "default": True},
        "boot_timeout": {"type": "float", "default": 60.0},
        "stop_timeout": {"type": "float", "default": 10.0},
    }, states=("present", "absent", "query"))
    ctx = Context(module)
    nodes = [g for g in module.params["nodes"] if g.get("kind") == "openvz"]
    result = {"changed": False, "runtime": ctx.runtime, "disk": ctx.disk, "nodes": {}, "started": [],
              "restarted": [], "stopped": []}
    errors = validate(nodes)
    if errors:
        module.fail_json(msg="invalid openvz nodes: " + "; ".join(errors), errors=errors, **result)
    state = module.params["state"]
    try:
        if state == "absent":
            run_absent(ctx, nodes, result)
        elif state == "present":
            run_present(ctx, nodes, result)
    except RuntimeError as exc:
        module.fail_json(msg=str(exc), **result)
    exit_result(module, result)


if __name__ == "__main__":
    main()
