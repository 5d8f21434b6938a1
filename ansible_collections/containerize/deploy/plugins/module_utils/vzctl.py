"""The vzctl runtime of the openvz nodes, for OpenVZ kernels (module_utils of openvz_nodes).

Written to the vzctl documentation and run here only against a fake vzctl (tests/test_openvz.py).
A container is CTID.conf and CTID.mount in the vzctl configuration directory (VE_PRIVATE is the
same private root the nspawn runtime uses), started with `vzctl start`; the host side of each veth
is plugged into its planned VDE switch with vde_pcapplug, and the container sets its addresses,
routes, forwarding and tbf itself from /etc/containerize/network.sh, run by rc.local.
The functions take a Container (openvz_container.py) and plan steps `(note, action)`.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    proc_alive,
    read_pid,
    read_text,
    remove_path,
    write_json,
    write_new_or_replace,
)
from ansible_collections.containerize.deploy.plugins.module_utils.loop_disk import must, run
from ansible_collections.containerize.deploy.plugins.module_utils.nspawn import kill_all
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import tbf_tc_args


def network_script(spec):
    """Interfaces, routes, forwarding and tbf of node SPEC, set from inside the container."""
    lines = ["#!/bin/sh", "# written by containerize (openvz_nodes): the node's network, run by rc.local",
             "# iproute2 by path: a busybox shell would run its own applets first",
             'IP=ip; for p in /sbin/ip /usr/sbin/ip /bin/ip /usr/bin/ip; do [ -x "$p" ] && IP=$p && break; done',
             'TC=tc; for p in /sbin/tc /usr/sbin/tc /bin/tc /usr/bin/tc; do [ -x "$p" ] && TC=$p && break; done',
             '"$IP" link set dev lo up']
    for iface in spec.get("interfaces") or []:
        dev = iface["ifname"]
        lines.append(f'"$IP" link set dev {dev} up')
        lines.append(f'"$IP" -4 addr flush dev {dev} scope global')
        if iface.get("address"):
            lines.append(f'"$IP" addr add {iface["address"]}/{int(iface["prefix"])} broadcast + dev {dev}')
        bandwidth = (iface.get("tc") or {}).get("bandwidth")
        if bandwidth:
            lines.append(f'"$TC" qdisc replace dev {dev} root {" ".join(tbf_tc_args(int(bandwidth)))}')
    for route in spec.get("routes") or []:
        dest = route.get("dest") or "default"
        lines.append(f'"$IP" route replace {dest}' + (f" via {route['gateway']}" if route.get("gateway") else ""))
    lines.append(f"echo {1 if spec.get('forwarding') else 0} > /proc/sys/net/ipv4/ip_forward")
    return "\n".join(lines) + "\n"


def vz_conf(c, ctid):
    """CTID.conf of container C. It is sourced by shells (vzctl's scripts, CTID.mount): a value is data,
    never code, so one with quotes, backslashes, '$', backquotes or newlines is refused."""
    netif = []
    for index, iface in enumerate(c.spec.get("interfaces") or []):
        mac = str(iface.get("mac") or "").upper()
        netif.append(f"ifname={iface['ifname']},mac={mac},host_ifname=veth{ctid}.{index}")
    lines = []
    for key, value in (
        ("ONBOOT", "no"), ("VE_LAYOUT", "simfs"), ("VE_ROOT", os.path.join(c.private, "mnt")),
        ("VE_PRIVATE", c.rootfs), ("OSTEMPLATE", c.template), ("HOSTNAME", c.hostname),
        ("DISKSPACE", f"{c.size >> 10}:{c.size >> 10}"), ("PHYSPAGES", "0:unlimited"),
        ("SWAPPAGES", "0:unlimited"), ("NETIF", ";".join(netif)),
    ):  # fmt: skip
        if re.search(r'["\\$`\n]', str(value)):
            raise RuntimeError(f"{key} {value!r} cannot be written to {ctid}.conf: no quotes, backslashes, "
                               "'$', backquotes or newlines")
        lines.append(f'{key}="{value}"\n')
    return "".join(lines)


def vz_mount_script(c):
    """CTID.mount of container C: the node directory on /var/containers and the shares."""
    binds = [(c.nodedir, "/var/containers", False), *c.shares()]
    lines = ["#!/bin/sh", "# written by containerize (openvz_nodes): bind mounts of the container",
             ". /etc/vz/vz.conf", '. "${VE_CONFFILE}"']
    for path, mount, readonly in binds:
        lines.append(f'mkdir -p "${{VE_ROOT}}{mount}" && mount -n --bind {path} "${{VE_ROOT}}{mount}" || exit 1')
        if readonly:
            lines.append(f'mount -n -o remount,ro,bind "${{VE_ROOT}}{mount}" || exit 1')
    return "\n".join(lines) + "\nexit 0\n"


def running(ctid):
    """True when container CTID runs (vzctl status)."""
    if not ctid:
        return False
    rc, out, _err = run(["vzctl", "status", str(ctid)])
    return rc == 0 and " running" in out


def stop(c, ctid):
    """Stop container CTID (container C) and the plugs of its veths."""
    if ctid and running(ctid):
        run(["vzctl", "stop", str(ctid)], timeout=c.ctx.stop_timeout + 60)
    head = f"{c.name}."
    run_dir = c.ctx.run_dir
    for entry in os.listdir(run_dir) if os.path.isdir(run_dir) else []:
        if not (entry.startswith(head) and entry.endswith(".pcap.pid")):
            continue
        pidfile = os.path.join(run_dir, entry)
        pid = read_pid(pidfile)
        if proc_alive(pid, pidfile):
            kill_all([pid], signal.SIGTERM)
        remove_path(pidfile)


def remove(c, ctid):
    """Stop container CTID and remove its configuration."""
    stop(c, ctid)
    if ctid:
        for ext in ("conf", "mount"):
            remove_path(os.path.join(c.ctx.vz_conf_dir, f"{ctid}.{ext}"))


def allocate_ctid(c, record):
    """(CTID of container C, True when it is new): the recorded one, or the lowest free one."""
    if record.get("ctid"):
        return int(record["ctid"]), False
    conf_dir = c.ctx.vz_conf_dir
    taken = set()
    if os.path.isdir(conf_dir):
        taken = {int(f[:-5]) for f in os.listdir(conf_dir) if f.endswith(".conf") and f[:-5].isdigit()}
    ctid = c.ctx.module.params["vzctl_first_ctid"]
    while ctid in taken:
        ctid += 1
    return ctid, True


def plug(c, ctid, index, iface, pidfile):
    """Plug the host side of container CTID's veth INDEX into its planned switch."""
    host_if = f"veth{ctid}.{index}"
    run(["ip", "link", "set", "dev", host_if, "up"])
    argv = ["vde_pcapplug", "-d", "-P", pidfile, "-s", c.ctx.rpath(f"{iface['switch']}.ctl")]
    if iface.get("port"):
        argv += ["-p", str(int(iface["port"]))]
    must(argv + [host_if], f"plug {host_if}")


def start(c, ctid):
    c.boot_lines = c.boot_count()
    must(["vzctl", "start", str(ctid)], f"start container {ctid}", timeout=300)


def plan_running(c, o, rebuilt, reboot_files):
    """Steps that leave container C configured, running and plugged in; notes what and why."""
    ctx = c.ctx
    if not shutil.which("vzctl"):
        raise RuntimeError("vzctl not found (runtime vzctl)")
    record = o["record"]
    ctid, new = allocate_ctid(c, record)
    steps = []
    if new:
        steps.append((None, lambda: write_json(c.record_path, {**record, "ctid": ctid})))
    changed_conf = False
    for path, content, mode in ((os.path.join(ctx.vz_conf_dir, f"{ctid}.conf"), vz_conf(c, ctid), 0o644),
                                (os.path.join(ctx.vz_conf_dir, f"{ctid}.mount"), vz_mount_script(c), 0o755)):
        if read_text(path) != content:
            changed_conf = True
            steps.append((path, lambda path=path, content=content, mode=mode: (
                os.makedirs(ctx.vz_conf_dir, exist_ok=True), write_new_or_replace(path, content, mode))))
    is_running = running(ctid)
    if is_running and (rebuilt or changed_conf or reboot_files):
        c.restarted = True
        steps.append(("restart container",
                      lambda: run(["vzctl", "stop", str(ctid)], timeout=ctx.stop_timeout + 60)))
        is_running = False
    elif not is_running:
        c.started = True
        steps.append(("start container", None))
    if not is_running:
        steps.append((None, lambda: start(c, ctid)))
    for index, iface in enumerate(c.spec.get("interfaces") or []):
        pidfile = ctx.rpath(f"{c.name}.{index}.pcap.pid")
        if proc_alive(read_pid(pidfile), pidfile) and is_running:
            continue
        steps.append((f"plug {iface['ifname']}",
                      lambda index=index, iface=iface, pidfile=pidfile: plug(c, ctid, index, iface, pidfile)))
    return steps
