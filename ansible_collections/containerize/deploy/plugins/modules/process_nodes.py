#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: realize every process guest of one pnode (namespaces, taps, routes, start commands)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: process_nodes
short_description: Realize the process guests of one pnode
description:
  - Makes every C(process) guest planned for this pnode (C(containerize_guests) of
    C(host_vars/pnode-NNNN.yml)) exist as a network namespace wired into VDE, in one call.
  - Per guest it ensures the namespace C(namespace) (C(ip netns add)), C(/etc/netns/NS/hosts) (and
    C(/etc/netns/NS/hostname) when the host has C(/etc/hostname)), the node directory
    C(root/nodes/exp_name/NAME/) with C(pid), C(eid) and C(log/), the loopback up, one
    C(vde_plug2tap) per interface (pid file C(run_dir/NODE.IFNAME.plug.pid)) whose tap has the
    planned MAC, address and prefix and is up,
    exactly the planned routes (missing ones added, other non-kernel routes removed),
    C(net.ipv4.ip_forward) as planned, and end-node C(tbf) shaping on interfaces with C(tc) set.
  - No process is spawned per guest except its plugs and start command. A worker thread enters the
    guest's namespace (setns) to start C(vde_plug2tap) there and to open a netlink socket that stays
    bound to it; the links, addresses, routes and C(tbf) qdiscs are read and set over that socket
    with the requests C(ip) and C(tc) send (module_utils containerize_netlink), and the namespaces are
    made with one C(ip -batch). Guests are handled by a small thread pool (O(workers)).
  - A plug is restarted when it died, when its switch was started after it (the kernel's start
    times of the two processes), when it runs in another namespace (the namespace was deleted and
    made again) or when its arguments (its C(/proc/PID/cmdline)) are not the planned ones. A new tap
    gets its MAC, address, state and routes again.
  - The start command (C(startcmd)), unless empty or the guest is a ghost, runs once per swap-in
    under a small supervisor shell script (C(run_dir/start-supervisor.sh), written by this module),
    started detached as C(ip netns exec NS unshare --uts -- sh SUPERVISOR PIDFILE NODEDIR HOSTNAME
    STARTCMD) with pid file C(run_dir/NODE.start.pid). The supervisor bind-mounts the node directory
    on C(/var/containers) (in the node's own mount namespace), sets the node's hostname, writes
    C(log/start_command.log) (C(start TIME), then C(exit N) and C(end TIME)) and runs
    C(sh -c STARTCMD) with output in C(log/start_command.out) and C(log/start_command.err).
    The command is passed as one argument, never pasted into a shell string.
  - A later run leaves a running or finished start command alone. If the supervisor died without
    recording an exit status (it was killed), its process group is killed and the command started
    again.
  - Guests whose C(kind) is not in O(kinds) (by default only C(process)) are ignored. Guests recorded
    in O(run_dir) (C(NODE.ns)) that are no longer planned (under any kind) are removed.
  - Other kinds reuse the same network part; the C(openvz) role calls this module with
    O(kinds=[openvz]) and O(start_commands=false), then starts each container in its namespace.
  - With O(state=absent), supervisors (with their process groups) and plugs are killed, remaining
    processes in the namespaces are killed, the namespaces, C(/etc/netns/NS) and
    C(root/nodes/exp_name) are removed. The namespaces are found from O(guests), from the
    C(NODE.ns) records in O(run_dir), and by scanning C(/run/netns) for C(PREFIX*.EID.PID), so a
    half-failed swap-in is cleaned too. When O(kinds) does not contain C(process), only the
    guests of O(guests) whose kind is in O(kinds) are removed (their namespaces, C(/etc/netns/NS),
    node directories and records), and nothing is scanned.
version_added: "0.1.0"
author:
  - containerize authors
options:
  root:
    description: Pnode root (C(containerize_root)), holds C(nodes/EXP_NAME/NODE/).
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
  prefix:
    description: Name prefix of this pnode (C(containerize_prefix)), used when scanning for namespaces.
    type: str
    default: ""
  hosts:
    description:
      - The experiment's hosts for C(/etc/hosts) inside every node, as the compiler's list of
        C({address, names}) (localhost lines are added), or as the file's whole text.
      - Left out of a task, the module's action plugin passes the host's C(containerize_hosts) as the
        inventory holds it (no template pass).
    type: raw
    default: []
  guests:
    description:
      - The guests of this pnode (C(containerize_guests)); entries whose C(kind) is not in O(kinds) are
        ignored, but their names count as planned.
      - Left out of a task, the module's action plugin passes the host's C(containerize_guests) as the
        inventory holds it (no template pass, and the task does not carry the list back).
      - Keys other than the ones below are ignored.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Node name.
        type: str
        required: true
      kind:
        description: Guest kind; only kinds in O(kinds) are handled.
        type: str
        default: process
      ghost:
        description: A ghost gets its namespace and configuration but no start command.
        type: bool
        default: false
      namespace:
        description: Network namespace name (C(PREFIX NODE.EID.PID)).
        type: str
        required: true
      hostname:
        description: Host name inside the node.
        type: str
      startcmd:
        description: Start command, run as C(sh -c STARTCMD) inside the node; empty for none.
        type: str
        default: ""
      forwarding:
        description: Value of C(net.ipv4.ip_forward) in the node.
        type: bool
        default: false
      interfaces:
        description:
          - Interfaces, each C({ifname, switch, port, mac, address, prefix, tc}).
          - C(switch) is the VDE switch id in O(run_dir) the tap plugs into, C(port) its port.
          - C(tc) is null or C({bandwidth, delay_ms, loss}); only I(bandwidth) (bit/s) can be
            realized (with C(tbf)); delay or loss fails, this kernel has no C(netem).
        type: list
        elements: dict
        default: []
      routes:
        description: Routes C({dest, gateway}) (C(dest) may be C(default)); the only non-kernel routes kept.
        type: list
        elements: dict
        default: []
  kinds:
    description: The guest kinds this call realizes (their network part).
    type: list
    elements: str
    default: [process]
  start_commands:
    description:
      - Run the start commands of the guests under the supervisor. C(false) when the guests run them
        themselves (an C(openvz) container runs its own from C(rc.local)); a supervisor left running
        from an earlier call is stopped.
    type: bool
    default: true
  state:
    description: C(present) realizes the guests, C(absent) removes every process guest of the experiment.
    type: str
    choices: [present, absent]
    default: present
  workers:
    description: Guests handled in parallel.
    type: int
    default: 4
  timeout:
    description: Seconds to wait for a plug or process to come up or go away.
    type: float
    default: 5.0
notes:
  - Supports check mode (nothing is changed; the result lists what would change) and diff mode
    (a summary per changed guest).
  - Run the C(vde_network) module first, the plugs need their switches.
requirements:
  - iproute2
  - vde2
  - util-linux (unshare)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Realize the process guests of this pnode
  process_nodes:
    root: /var/containers
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    hosts: |
      127.0.0.1 localhost
      10.0.0.1 a a-lan0
      10.0.0.2 b b-lan0
    guests: "{{ containerize_guests | selectattr('kind', 'equalto', 'process') | list }}"

- name: Remove them
  process_nodes:
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    state: absent
"""

RETURN = r"""
guests:
  description: For each guest that changed (or would), the list of things done.
  returned: always
  type: dict
  sample:
    a: [namespace, plug eth0, addr eth0 10.0.0.1/24, start command]
started:
  description: Nodes whose start command was started (first time or after its supervisor died).
  returned: always
  type: list
  elements: str
restarted:
  description: Plugs (C(NODE.IFNAME)) restarted, and supervisors restarted, as C(NODE.start).
  returned: always
  type: list
  elements: str
stopped:
  description: Nodes removed (absent, or no longer planned) and supervisors stopped (C(NODE.start)).
  returned: always
  type: list
  elements: str
"""

import concurrent.futures
import ipaddress
import os
import re
import shutil
import subprocess

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    NETNS_DIR,
    check_hosts,
    compact_invocation,
    kill_many,
    kill_pid,
    netns_inode,
    netns_path,
    norm_dest,
    proc_alive,
    proc_cmdline,
    proc_netns_inode,
    proc_start_ticks,
    read_json,
    read_pid,
    read_text,
    remove_path,
    run,
    short_hash,
    spawn_daemon,
    stop_strays,
    wait_for,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.netlink import Rtnl, in_netns
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import TBF_LATENCY_MS, tbf_burst

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
NS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SUN_PATH_MAX = 107
ETC_NETNS = "/etc/netns"
SUPERVISOR_NAME = "start-supervisor.sh"
SUPERVISOR = r"""#!/bin/sh
# containerize start command supervisor, written by the process_nodes module: do not edit.
# usage: start-supervisor.sh PIDFILE NODEDIR HOSTNAME STARTCMD
# Runs inside the node (ip netns exec NS unshare --uts), so mounts and hostname stay private.
nodedir=$2
host=$3
cmd=$4
log=$nodedir/log
mkdir -p "$log" || exit 1
# open the logs before the bind mount: the node directory may live below /var/containers
exec 3>"$log/start_command.log" 4>"$log/start_command.out" 5>"$log/start_command.err" || exit 1
if [ -n "$host" ]; then
    echo "$host" > /proc/sys/kernel/hostname 2>/dev/null || true
fi
if [ -d /var/containers ]; then
    mount --bind "$nodedir" /var/containers 2>&5 || true
fi
echo "start $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&3
cd / || exit 1
sh -c "$cmd" >&4 2>&5 </dev/null 3>&- 4>&- 5>&-
rc=$?
echo "exit $rc" >&3
echo "end $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&3
exit $rc
"""


# ----------------------------------------------------------------------------------------------
# process helpers (the same few functions live in vde_network.py: modules ship alone)


def write_in_place(path, text, mode=0o644):
    """Write TEXT into PATH keeping its inode: files bind-mounted into nodes see the new content."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


# ----------------------------------------------------------------------------------------------
# network namespaces

def sysctl_in_netns(ns, key, value=None):
    """A net sysctl inside namespace NS, read from this thread without spawning; set to VALUE if given.

    Returns what it was before (None when it cannot be read); a failed write raises.
    """
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with in_netns(netns_path(ns)):
            with open(path, "r" if value is None else "r+", encoding="ascii") as handle:
                old = handle.read().strip()
                if value is not None and old != str(value):
                    handle.seek(0)
                    handle.write(str(value))
            return old
    except OSError as exc:
        if value is None:
            return None
        raise RuntimeError(f"sysctl {key}={value} in {ns}: {exc}") from None


def observe_ip(nl):
    """Links (by name) and non-kernel main-table IPv4 routes of the namespace of netlink socket NL."""
    addresses = nl.addresses()
    links = {
        name: {
            "mac": (link["mac"] or "").lower(),
            "up": link["up"],
            "qdisc": link["qdisc"],
            "addresses": addresses.get(name, []),
        }
        for name, link in nl.links().items()
    }
    return {"links": links, "routes": nl.routes()}


# ----------------------------------------------------------------------------------------------
# the guests


def render_hosts(hosts):
    """/etc/hosts text for the nodes: given as text, or as the compiler's list of {address, names}."""
    if isinstance(hosts, str):
        return hosts if hosts.endswith("\n") else hosts + "\n"
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{h['address']} {' '.join(h['names'])}" for h in hosts]
    return "\n".join(lines) + "\n"


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
        self.prefix = p["prefix"] or ""
        self.hosts = render_hosts(p["hosts"])
        self.timeout = p["timeout"]
        self.start_commands = p["start_commands"]
        self.exp_dir = os.path.join(self.root, "nodes", self.exp_name)
        self.supervisor = os.path.join(self.run_dir, SUPERVISOR_NAME)
        self.write_hostname = os.path.exists("/etc/hostname")
        self.switches = {}
        try:
            self.run_entries = sorted(os.listdir(self.run_dir))
        except OSError:
            self.run_entries = []

    def rpath(self, name):
        return os.path.join(self.run_dir, name)

    def switch(self, switch):
        """(pid, start time in clock ticks) of the running SWITCH, (None, None) when it does not run.

        Worker threads share this cache: each entry is one tuple, stored at once.
        """
        if switch not in self.switches:
            pidfile = self.rpath(f"{switch}.pid")
            pid = read_pid(pidfile)
            alive = bool(pid and proc_alive(pid, pidfile))
            self.switches[switch] = (pid, proc_start_ticks(pid)) if alive else (None, None)
        return self.switches[switch]


def validate(ctx, guests):
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
        ns = str(g.get("namespace") or "")
        if not NS_RE.match(ns):
            errors.append(f"guest {name}: namespace {ns!r} is not a valid name")
        for iface in g.get("interfaces") or []:
            ifname = str(iface.get("ifname", ""))
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$", ifname):
                errors.append(f"guest {name}: interface name {ifname!r} is not valid")
            if not NAME_RE.match(str(iface.get("switch", ""))):
                errors.append(f"guest {name} {ifname}: switch {iface.get('switch')!r} is not a valid id")
            elif len(os.path.join(ctx.rpath(f"{iface['switch']}.ctl"), "ctl")) >= SUN_PATH_MAX:
                errors.append(f"guest {name} {ifname}: socket path under {ctx.run_dir} is too long")
            tc = iface.get("tc")
            if tc:
                if float(tc.get("delay_ms") or 0) > 0 or float(tc.get("loss") or 0) > 0:
                    errors.append(
                        f"guest {name} {ifname}: end-node shaping with delay or loss needs the netem qdisc,"
                        " which this kernel lacks; use switch shaping (wirefilters)"
                    )
        for route in g.get("routes") or []:
            try:
                norm_dest(route.get("dest"))
                if route.get("gateway"):
                    ipaddress.ip_address(route["gateway"])
            except ValueError as exc:
                errors.append(f"guest {name}: bad route {route}: {exc}")
    return errors


class Guest:
    """Observation, decisions and actions for one process guest."""

    def __init__(self, ctx, spec, created=False):
        self.ctx = ctx
        self.spec = spec
        self.created = created  # its namespace was just made by the batch in run_present
        self.name = spec["name"]
        self.ns = spec["namespace"]
        self.ghost = bool(spec.get("ghost"))
        self.hostname = spec.get("hostname") or self.name
        self.startcmd = spec.get("startcmd") or ""
        self.forwarding = bool(spec.get("forwarding"))
        self.interfaces = list(spec.get("interfaces") or [])
        self.routes = [
            {"dest": norm_dest(r.get("dest")), "gateway": r.get("gateway") or None, "dev": r.get("dev")}
            for r in spec.get("routes") or []
        ]
        self.nodedir = os.path.join(ctx.exp_dir, self.name)
        self.changes = []
        self.started = False
        self.restarted = []
        self.stopped = []
        self.before = {}
        self.after = {}
        self._nl = None

    def rtnl(self):
        """This node's netlink socket (made inside its namespace on first use: it stays bound there)."""
        if self._nl is None:
            try:
                with in_netns(netns_path(self.ns)):
                    self._nl = Rtnl()
            except OSError as exc:
                raise RuntimeError(f"cannot enter namespace {self.ns}: {exc}") from None
        return self._nl

    def close(self):
        if self._nl is not None:
            self._nl.close()
            self._nl = None

    def has_link(self, ifname):
        try:
            self.rtnl().index(ifname)
        except OSError:
            return False
        return True

    def netlink(self, ops):
        """Send OPS, (method, args...) of Rtnl, in order; a refusal names the node and the request."""
        nl = self.rtnl()
        for method, *args in ops:
            try:
                getattr(nl, method)(*args)
            except OSError as exc:
                raise RuntimeError(f"{self.name} ({self.ns}): {exc}") from None

    # -- names
    def plug_pidfile(self, iface):
        return self.ctx.rpath(f"{self.name}.{iface['ifname']}.plug.pid")

    def plug_argv(self, iface):
        """vde_plug2tap's argv; it is started from a thread inside the namespace (no `ip netns exec`)."""
        argv = ["vde_plug2tap", "-d", "-P", self.plug_pidfile(iface)]
        argv += ["-s", self.ctx.rpath(f"{iface['switch']}.ctl")]
        if iface.get("port"):
            argv += ["-p", str(int(iface["port"]))]
        return argv + [iface["ifname"]]

    def start_pidfile(self):
        return self.ctx.rpath(f"{self.name}.start.pid")

    def start_argv(self):
        return [
            "ip", "netns", "exec", self.ns, "unshare", "--uts", "--", "sh", self.ctx.supervisor,
            self.start_pidfile(), self.nodedir, self.hostname, self.startcmd,
        ]  # fmt: skip

    def wants_start(self):
        return bool(self.startcmd.strip()) and not self.ghost and self.ctx.start_commands

    def etc_dir(self):
        return os.path.join(ETC_NETNS, self.ns)

    # -- observation
    def observe(self):
        ctx = self.ctx
        o = {}
        o["registered"] = read_text(ctx.rpath(f"{self.name}.ns"))
        o["ns_inode"] = netns_inode(self.ns)
        o["hosts"] = read_text(os.path.join(self.etc_dir(), "hosts"))
        o["hostname"] = read_text(os.path.join(self.etc_dir(), "hostname"))
        o["pid"] = read_text(os.path.join(self.nodedir, "pid"))
        o["eid"] = read_text(os.path.join(self.nodedir, "eid"))
        o["logdir"] = os.path.isdir(os.path.join(self.nodedir, "log"))
        if self.created:  # just made: nothing but a down lo, no need to ask `ip` (one process per node)
            o["ip"] = {"links": {"lo": {"mac": None, "up": False, "addresses": [], "qdisc": None}}, "routes": []}
        else:
            o["ip"] = observe_ip(self.rtnl()) if o["ns_inode"] else None
        o["forwarding"] = None
        if o["ns_inode"] and not self.created:  # a new one inherits it: set (and compared) once, in _ensure
            value = sysctl_in_netns(self.ns, "net.ipv4.ip_forward")
            o["forwarding"] = value == "1" if value is not None else None
        o["tc"] = read_json(ctx.rpath(f"{self.name}.tc.json")) or {}
        o["plugs"] = {}
        for iface in self.interfaces:
            pidfile = self.plug_pidfile(iface)
            pid = read_pid(pidfile)
            alive = bool(pid and proc_alive(pid, pidfile))
            # what the kernel says of the running plug, not a record of it: nothing to write per plug
            o["plugs"][iface["ifname"]] = {
                "pid": pid if alive else None,
                "in_ns": alive and bool(o["ns_inode"]) and proc_netns_inode(pid) == o["ns_inode"],
                "argv": proc_cmdline(pid) if alive else None,
                "started": proc_start_ticks(pid) if alive else None,
            }
        pidfile = self.start_pidfile()
        pid = read_pid(pidfile)
        alive = bool(pid and proc_alive(pid, pidfile))
        record = read_json(ctx.rpath(f"{self.name}.start.json")) or {}
        log = read_text(os.path.join(self.nodedir, "log", "start_command.log")) or ""
        exits = [line.split()[1] for line in log.splitlines() if line.startswith("exit ") and len(line.split()) > 1]
        o["start"] = {
            "pid": pid if alive else None,
            "old_pid": record.get("pid"),
            "in_ns": alive and bool(o["ns_inode"]) and proc_netns_inode(pid) == o["ns_inode"],
            "argv": record.get("argv"),
            "exit": exits[-1] if exits else None,
            "started": log.startswith("start "),
        }
        return o

    def summary(self, o):
        """Before-state summary for diff mode."""
        ip = o["ip"] or {"links": {}, "routes": []}
        s = {
            "namespace": self.ns if o["ns_inode"] else None,
            "hosts": short_hash(o["hosts"]),
            "forwarding": o["forwarding"],
            "interfaces": {},
            "routes": sorted(f"{r['dest']} via {r['gateway']}" for r in ip["routes"]),
        }
        for iface in self.interfaces:
            link = ip["links"].get(iface["ifname"])
            plug = o["plugs"][iface["ifname"]]
            s["interfaces"][iface["ifname"]] = {
                "plug": "running" if plug["pid"] else "stopped",
                "mac": link["mac"] if link else None,
                "addresses": link["addresses"] if link else [],
                "up": link["up"] if link else False,
            }
        st = o["start"]
        if st["pid"]:
            s["start"] = "running"
        elif st["exit"] is not None:
            s["start"] = f"exit {st['exit']}"
        else:
            s["start"] = "killed" if st["started"] else "not started"
        return s

    def planned_summary(self, o):
        s = {
            "namespace": self.ns,
            "hosts": short_hash(self.ctx.hosts),
            "forwarding": self.forwarding,
            "interfaces": {
                i["ifname"]: {
                    "plug": "running",
                    "mac": str(i.get("mac") or "").lower() or None,
                    "addresses": [f"{i['address']}/{i['prefix']}"] if i.get("address") else [],
                    "up": True,
                }
                for i in self.interfaces
            },
            "routes": sorted(f"{r['dest']} via {r['gateway']}" for r in self.routes),
        }
        if not self.wants_start():
            s["start"] = "none"
        else:
            st = o["start"]
            s["start"] = f"exit {st['exit']}" if (st["exit"] is not None and not self._start_needed(o)) else "running"
        return s

    # -- decisions and actions
    def note(self, what):
        self.changes.append(what)

    def ensure(self):
        """Observe, then (unless check mode) repair. Returns self."""
        try:
            return self._ensure()
        finally:
            self.close()

    def _ensure(self):
        ctx = self.ctx
        o = self.observe()
        self.before = self.summary(o)
        self.after = self.planned_summary(o)

        # bookkeeping record first, so a failure later still leaves a trace for swap-out
        if o["registered"] != self.ns + "\n":
            self.note("record")
            if not ctx.check:
                write_in_place(ctx.rpath(f"{self.name}.ns"), self.ns + "\n")

        # /etc/netns/NS files
        if o["hosts"] != ctx.hosts:
            self.note("hosts")
            if not ctx.check:
                os.makedirs(self.etc_dir(), mode=0o755, exist_ok=True)
                write_in_place(os.path.join(self.etc_dir(), "hosts"), ctx.hosts)
        if ctx.write_hostname and o["hostname"] != self.hostname + "\n":
            self.note("hostname")
            if not ctx.check:
                os.makedirs(self.etc_dir(), mode=0o755, exist_ok=True)
                write_in_place(os.path.join(self.etc_dir(), "hostname"), self.hostname + "\n")

        # namespace
        fresh_ns = self.created
        if self.created:
            self.note("namespace")
        elif not o["ns_inode"]:
            fresh_ns = True
            self.note("namespace")
            if not ctx.check:
                if o["ns_inode"] == 0:  # a file that is not a namespace (half-made): remove it
                    run(["ip", "netns", "delete", self.ns])
                    remove_path(netns_path(self.ns))
                self.close()  # a socket of the namespace that was there
                rc, _out, err = run(["ip", "netns", "add", self.ns])
                if rc != 0:
                    raise RuntimeError(f"ip netns add {self.ns}: {err.strip()}")
                o["ns_inode"] = netns_inode(self.ns)

        # node directory
        if o["pid"] != ctx.project + "\n" or o["eid"] != ctx.experiment + "\n" or not o["logdir"]:
            self.note("node directory")
            if not ctx.check:
                os.makedirs(os.path.join(self.nodedir, "log"), mode=0o755, exist_ok=True)
                write_in_place(os.path.join(self.nodedir, "pid"), ctx.project + "\n")
                write_in_place(os.path.join(self.nodedir, "eid"), ctx.experiment + "\n")

        # plugs of interfaces no longer planned
        planned_ifs = {iface["ifname"] for iface in self.interfaces}
        head = self.name + "."
        unplugged = sorted(
            {
                entry[len(head) :].rsplit(".", 2)[0]
                for entry in ctx.run_entries
                if entry.startswith(head) and entry.endswith((".plug.pid", ".plug.json"))
            }
            - planned_ifs
        )
        for ifname in unplugged:
            pidfile = ctx.rpath(f"{self.name}.{ifname}.plug.pid")
            self.note(f"unplug {ifname}")
            pid = read_pid(pidfile)
            if proc_alive(pid, pidfile):
                self.stopped.append(f"{self.name}.{ifname}")
            if not ctx.check:
                kill_pid(pid, pidfile, ctx.timeout)
                remove_path(pidfile)
                remove_path(pidfile[: -len(".pid")] + ".json")

        # plugs
        links = (o["ip"] or {}).get("links", {}) if not fresh_ns else {}
        replugged = []
        for iface in self.interfaces:
            ifname = iface["ifname"]
            plug = o["plugs"][ifname]
            argv = self.plug_argv(iface)
            switch_pid, switch_started = ctx.switch(iface["switch"])
            if switch_pid is None and not ctx.check:
                raise RuntimeError(
                    f"switch {iface['switch']} of {self.name} {ifname} is not running (run vde_network first)"
                )
            healthy = (
                plug["pid"]
                and plug["in_ns"]
                and plug["argv"] == argv
                # a plug older than its switch is attached to the switch that was there before
                and None not in (plug["started"], switch_started)
                and plug["started"] >= switch_started
                and ifname in links
            )
            if healthy:
                continue
            replugged.append(ifname)
            if plug["pid"]:
                self.restarted.append(f"{self.name}.{ifname}")
                self.note(f"replug {ifname}")
            else:
                self.note(f"plug {ifname}")
            if ctx.check:
                continue
            pidfile = self.plug_pidfile(iface)
            kill_pid(read_pid(pidfile), pidfile, ctx.timeout)
            remove_path(pidfile)
            try:
                with in_netns(netns_path(self.ns)):
                    rc, out = spawn_daemon(argv, ctx.timeout)
            except OSError as exc:
                rc, out = 127, f"cannot enter namespace {self.ns}: {exc}"
            # vde_plug2tap writes its pid file before it makes the tap: ready means both
            ok = rc == 0 and wait_for(
                lambda pf=pidfile, name=ifname: proc_alive(read_pid(pf), pf) and self.has_link(name),
                ctx.timeout,
                step=0.002,
            )
            if not ok:
                raise RuntimeError(f"vde_plug2tap for {self.name} {ifname} did not start (rc={rc}): {out}")

        # links, addresses, routes: one ip batch
        gone = set(replugged) | set(unplugged)
        if fresh_ns and not gone - set(replugged) and not ctx.check:
            # A new namespace holds only its down lo and the fresh taps: no need to ask `ip`.
            blank = {"mac": None, "up": False, "addresses": []}
            o["ip"] = {"links": {"lo": blank, **{name: blank for name in replugged}}, "routes": []}
        elif (fresh_ns or gone) and not ctx.check:
            o["ip"] = observe_ip(self.rtnl())
        ip = o["ip"] or {"links": {}, "routes": []}
        if ctx.check and (fresh_ns or gone):
            # taps of restarted plugs come back empty, those of stopped plugs go away
            ip = {
                "links": {k: v for k, v in ip["links"].items() if k not in gone and not fresh_ns},
                "routes": [r for r in ip["routes"] if r["dev"] not in gone and not fresh_ns],
            }
        tc_ops, tc_record = self.plan_tc(ip, o["tc"])
        self.apply_ip(ip, tc_ops)

        # forwarding
        want_fwd = "1" if self.forwarding else "0"
        if fresh_ns and not ctx.check:
            # a new namespace inherits the pnode's forwarding (net.core.devconf_inherit_init_net=0)
            if sysctl_in_netns(self.ns, "net.ipv4.ip_forward", want_fwd) != want_fwd:
                self.note(f"forwarding {want_fwd}")
            have_fwd = want_fwd
        elif fresh_ns:
            have_fwd = (read_text("/proc/sys/net/ipv4/ip_forward") or "").strip()
        else:
            have_fwd = None if o["forwarding"] is None else ("1" if o["forwarding"] else "0")
        if have_fwd != want_fwd:
            self.note(f"forwarding {want_fwd}")
            if not ctx.check:
                sysctl_in_netns(self.ns, "net.ipv4.ip_forward", want_fwd)

        self.record_tc(tc_record, o["tc"])
        self.apply_start(o, fresh_ns)
        return self

    def apply_ip(self, ip, tc_ops):
        """Links up with their MACs, qdiscs (TC_OPS: {ifname: ops}), addresses and routes as planned.

        One sequence of netlink requests. A qdisc is set before its link goes up: on a running link
        the kernel waits for an RCU grace period to swap it, milliseconds per interface.
        """
        ctx = self.ctx
        links = ip["links"]
        ops = []
        lo = links.get("lo")
        if not lo or not lo["up"]:
            ops.append(("link_set", "lo", True))
            self.note("lo up")
        for iface in self.interfaces:
            ifname = iface["ifname"]
            link = links.get(ifname) or {"mac": None, "up": False, "addresses": []}
            if not links.get(ifname) and not ctx.check:
                raise RuntimeError(f"{self.name}: tap {ifname} is missing in {self.ns} after plugging")
            mac = str(iface.get("mac") or "").lower()
            if mac and link["mac"] != mac:
                ops.append(("link_set", ifname, None, mac))
                self.note(f"mac {ifname}")
            ops += tc_ops.get(ifname, [])
            want = [f"{iface['address']}/{int(iface['prefix'])}"] if iface.get("address") else []
            for addr in link["addresses"]:
                if addr not in want:
                    ops.append(("addr_del", ifname, addr))
                    self.note(f"addr del {ifname} {addr}")
            for addr in want:
                if addr not in link["addresses"]:
                    ops.append(("addr_add", ifname, addr))
                    self.note(f"addr {ifname} {addr}")
            if not link["up"]:
                ops.append(("link_set", ifname, True))
                self.note(f"up {ifname}")
        planned = {(r["dest"], r["gateway"]) for r in self.routes}
        present = set()
        for route in ip["routes"]:
            key = (route["dest"], route["gateway"])
            if key in planned and key not in present:
                present.add(key)
                continue
            ops.append(("route_del", route["dest"], route["gateway"], route["dev"]))
            self.note(f"route del {route['dest']}")
        for route in self.routes:
            key = (route["dest"], route["gateway"])
            if key in present:
                continue
            present.add(key)
            ops.append(("route_replace", route["dest"], route["gateway"], route.get("dev")))
            self.note(f"route {route['dest']}")
        if ops and not ctx.check:
            self.netlink(ops)

    def plan_tc(self, ip, recorded):
        """({ifname: netlink ops}, record): a root tbf where a bandwidth is planned, none elsewhere."""
        links = ip["links"]
        ops = {}
        record = {}
        for iface in self.interfaces:
            ifname = iface["ifname"]
            bandwidth = (iface.get("tc") or {}).get("bandwidth")
            qdisc = (links.get(ifname) or {}).get("qdisc")
            if bandwidth:
                rate = int(bandwidth)
                want = {"rate": rate, "burst": tbf_burst(rate)}
                record[ifname] = want
                if qdisc != "tbf" or recorded.get(ifname) != want:
                    ops[ifname] = [("qdisc_replace_tbf", ifname, rate, want["burst"], TBF_LATENCY_MS * 1000)]
                    self.note(f"tc {ifname}")
            elif qdisc == "tbf":
                ops[ifname] = [("qdisc_del_root", ifname)]
                self.note(f"tc del {ifname}")
        return ops, record

    def record_tc(self, record, recorded):
        """Keep RECORD (from plan_tc) in run_dir/NODE.tc.json (a tbf's parameters are not read back)."""
        if self.ctx.check or record == recorded:
            return
        tc_file = self.ctx.rpath(f"{self.name}.tc.json")
        if record:
            write_json(tc_file, record)
        else:
            remove_path(tc_file)

    def _start_needed(self, o):
        st = o["start"]
        argv = self.start_argv()
        if st["pid"]:
            return not (st["in_ns"] and st["argv"] == argv)
        if st["exit"] is not None and st["argv"] in (None, argv):
            return False  # finished: never rerun within a swap-in
        return True

    def apply_start(self, o, fresh_ns):
        ctx = self.ctx
        st = o["start"]
        pidfile = self.start_pidfile()
        if not self.wants_start():
            if st["pid"]:
                self.note("stop start command")
                self.stopped.append(f"{self.name}.start")
                if not ctx.check:
                    kill_pid(st["pid"], pidfile, ctx.timeout, group=True)
                    remove_path(pidfile)
            return
        if not self._start_needed(o):
            return
        if st["pid"]:
            self.note("restart start command")
            self.restarted.append(f"{self.name}.start")
        else:
            self.note("start command")
        self.started = True
        if ctx.check:
            return
        # whatever is left of an earlier run (a killed supervisor leaves its children behind)
        for old in {st["pid"], st["old_pid"]} - {None}:
            kill_pid(old, None, ctx.timeout, group=True)
        remove_path(pidfile)
        argv = self.start_argv()
        os.makedirs(os.path.join(self.nodedir, "log"), mode=0o755, exist_ok=True)
        log = os.path.join(self.nodedir, "log", "start_command.log")
        remove_path(log)
        proc = subprocess.Popen(  # noqa: S603 - argv list; the command is one argument
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        write_in_place(pidfile, f"{proc.pid}\n")
        write_json(ctx.rpath(f"{self.name}.start.json"), {"argv": argv, "pid": proc.pid})


# ----------------------------------------------------------------------------------------------
# state=absent (and guests no longer planned)


def processes_by_netns():
    """{netns inode: [pid, ...]} for every live process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        inode = proc_netns_inode(int(entry))
        if inode is not None:
            found.setdefault(inode, []).append(int(entry))
    return found


def remove_nodes(ctx, nodes, namespaces, result):
    """Stop and remove NODES ({name: namespace}) and extra NAMESPACES. Returns True if anything existed."""
    changed = False
    all_ns = sorted(set(nodes.values()) | set(namespaces))
    entries = sorted(os.listdir(ctx.run_dir)) if os.path.isdir(ctx.run_dir) else []
    # supervisors (with their process groups) and plugs, all at once
    targets, pidfiles = [], []
    for entry in entries:
        parts = entry.split(".")
        if len(parts) < 3 or parts[0] not in nodes or parts[-1] != "pid" or parts[-2] not in ("start", "plug"):
            continue
        pidfile = ctx.rpath(entry)
        pid = read_pid(pidfile)
        pidfiles.append(pidfile)
        if pid and proc_alive(pid, pidfile):
            changed = True
        group = parts[-2] == "start"
        targets.append((pid, pidfile, group))
        if group:
            record = read_json(ctx.rpath(f"{parts[0]}.start.json")) or {}
            if record.get("pid") and record["pid"] != pid:
                targets.append((record["pid"], None, True))
    if not ctx.check:
        kill_many(targets, ctx.timeout)
        for pidfile in pidfiles:
            remove_path(pidfile)
    # anything still running inside the namespaces
    inodes = {netns_inode(ns): ns for ns in all_ns}
    inodes.pop(None, None)
    inodes.pop(0, None)
    if inodes:
        leftovers = [pid for inode, pids in processes_by_netns().items() if inode in inodes for pid in pids]
        leftovers = [pid for pid in leftovers if proc_alive(pid)]
        if leftovers:
            changed = True
            if not ctx.check:
                kill_many([(pid, None, False) for pid in leftovers], ctx.timeout)
    # namespaces
    existing = [ns for ns in all_ns if os.path.lexists(netns_path(ns))]
    if existing:
        changed = True
        if not ctx.check:
            run(["ip", "-force", "-batch", "-"], stdin="".join(f"netns delete {ns}\n" for ns in existing))
            for ns in existing:
                if os.path.lexists(netns_path(ns)):
                    run(["umount", netns_path(ns)])
                    remove_path(netns_path(ns))
    for ns in all_ns:
        if os.path.lexists(os.path.join(ETC_NETNS, ns)):
            changed = True
            if not ctx.check:
                remove_path(os.path.join(ETC_NETNS, ns))
    # node directories and records
    for name in sorted(nodes):
        if os.path.lexists(os.path.join(ctx.exp_dir, name)):
            changed = True
            if not ctx.check:
                remove_path(os.path.join(ctx.exp_dir, name))
    for entry in entries:
        parts = entry.split(".")
        if parts[0] in nodes and (entry.endswith((".plug.json", ".start.json", ".tc.json")) or parts[1:] == ["ns"]):
            changed = True
            if not ctx.check:
                remove_path(ctx.rpath(entry))
    return changed


def recorded_nodes(ctx):
    """{node: namespace} from the NODE.ns records of the run directory."""
    nodes = {}
    if os.path.isdir(ctx.run_dir):
        for entry in os.listdir(ctx.run_dir):
            if entry.endswith(".ns") and entry.count(".") == 1:
                ns = (read_text(ctx.rpath(entry)) or "").strip()
                if NS_RE.match(ns):
                    nodes[entry[:-3]] = ns
    return nodes


def scanned_namespaces(ctx):
    suffix = "." + ctx.exp_name
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return {}
    found = {}
    for ns in names:
        if ns.startswith(ctx.prefix) and ns.endswith(suffix):
            node = ns[len(ctx.prefix) : -len(suffix)]
            if NAME_RE.match(node):
                found[node] = ns
    return found


def run_absent(ctx, guests, result):
    if "process" not in ctx.module.params["kinds"]:
        # another kind's role removes its own guests only; the process role sweeps the rest
        nodes = {g["name"]: g["namespace"] for g in guests}
        before = sorted(ns for ns in nodes.values() if os.path.lexists(netns_path(ns)))
        result["changed"] = remove_nodes(ctx, nodes, (), result)
        if result["changed"]:
            result["stopped"] = sorted(nodes)
        result["diff"] = {"before": {"namespaces": before}, "after": {"namespaces": []}}
        return
    nodes = recorded_nodes(ctx)
    scanned = scanned_namespaces(ctx)
    for node, ns in scanned.items():
        nodes.setdefault(node, ns)
    for g in guests:
        nodes[g["name"]] = g["namespace"]
    extra = set(scanned.values())
    before = {
        "namespaces": sorted(ns for ns in set(nodes.values()) | extra if os.path.lexists(netns_path(ns))),
        "node_dirs": sorted(n for n in nodes if os.path.isdir(os.path.join(ctx.exp_dir, n))),
    }
    changed = remove_nodes(ctx, nodes, extra, result)
    if os.path.isdir(ctx.exp_dir):
        changed = True
        if not ctx.check:
            shutil.rmtree(ctx.exp_dir, ignore_errors=True)
    if os.path.exists(ctx.supervisor):
        changed = True
        if not ctx.check:
            remove_path(ctx.supervisor)
    if changed:
        result["stopped"] = sorted(nodes)
    result["changed"] = changed
    result["diff"] = {"before": before, "after": {"namespaces": [], "node_dirs": []}}


def create_namespaces(ctx, guests):
    """Make every missing namespace with one `ip -batch` (one process instead of one per node).

    Each guest's record is written first, so a swap-out after a failure here still finds it.
    Returns the namespaces made; a namespace path that exists but is broken is left to the guest.
    """
    missing = [g for g in guests if not os.path.lexists(netns_path(g["namespace"]))]
    if ctx.check or not missing:
        return set()
    for guest in missing:
        write_in_place(ctx.rpath(f"{guest['name']}.ns"), guest["namespace"] + "\n")
    run(["ip", "-batch", "-"], stdin="".join(f"netns add {g['namespace']}\n" for g in missing))
    return {g["namespace"] for g in missing if netns_inode(g["namespace"])}


def is_ours(ctx, argv):
    """True for the processes this module runs: node plugs and start command supervisors."""
    return any(arg.endswith(".plug.pid") for arg in argv) or ctx.supervisor in argv


def run_present(ctx, guests, workers, result, planned):
    module = ctx.module
    if not ctx.check:
        os.makedirs(ctx.run_dir, mode=0o755, exist_ok=True)
        os.makedirs(ctx.exp_dir, mode=0o755, exist_ok=True)
    if any(Guest(ctx, g).wants_start() for g in guests):
        if read_text(ctx.supervisor) != SUPERVISOR:
            result["changed"] = True
            if not ctx.check:
                write_in_place(ctx.supervisor, SUPERVISOR, 0o755)
        if not os.path.isdir("/var/containers"):
            result["changed"] = True
            if not ctx.check:
                os.makedirs("/var/containers", mode=0o755, exist_ok=True)

    # plugs and supervisors whose pid file is lost (run directory removed by hand) still hold taps and
    # run start commands: stop them before starting their replacements
    strays = stop_strays(ctx.run_dir, lambda argv: is_ours(ctx, argv), ctx.timeout, ctx.check)
    if strays:
        result["changed"] = True
        result["stopped"].extend(f"pid {pid}" for pid in strays)

    # guests recorded earlier but no longer planned
    stale = {n: ns for n, ns in recorded_nodes(ctx).items() if n not in planned}
    if stale:
        if remove_nodes(ctx, stale, (), result):
            result["changed"] = True
            result["stopped"].extend(sorted(stale))

    created = create_namespaces(ctx, guests)
    errors = []
    done = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(Guest(ctx, g, g["namespace"] in created).ensure): g["name"] for g in guests}
        for future in concurrent.futures.as_completed(futures):
            try:
                done.append(future.result())
            except Exception as exc:  # noqa: BLE001 - reported per guest below
                errors.append(f"{futures[future]}: {exc}")
    before, after = {}, {}
    for guest in sorted(done, key=lambda g: g.name):
        if guest.changes:
            result["changed"] = True
            result["guests"][guest.name] = guest.changes
            before[guest.name] = guest.before
            after[guest.name] = guest.after
        if guest.started:
            result["started"].append(guest.name)
        result["restarted"].extend(guest.restarted)
        result["stopped"].extend(guest.stopped)
    result["diff"] = {"before": before, "after": after}
    if errors:
        module.fail_json(msg="some process guests failed: " + "; ".join(sorted(errors)), **result,
                         invocation=compact_invocation(module))


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/var/containers"},
            "run_dir": {"type": "path", "required": True},
            "exp_name": {"type": "str", "required": True},
            "project": {"type": "str", "required": True},
            "experiment": {"type": "str", "required": True},
            "prefix": {"type": "str", "default": ""},
            "hosts": {"type": "raw", "default": []},
            "guests": {"type": "list", "elements": "dict", "default": []},
            "kinds": {"type": "list", "elements": "str", "default": ["process"]},
            "start_commands": {"type": "bool", "default": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "workers": {"type": "int", "default": 4},
            "timeout": {"type": "float", "default": 5.0},
        },
        supports_check_mode=True,
    )
    check_hosts(module)
    ctx = Context(module)
    for key in ("exp_name", "project", "experiment"):
        if not NS_RE.match(module.params[key]) or "/" in module.params[key]:
            module.fail_json(msg=f"{key} {module.params[key]!r} is not a valid name")
    kinds = module.params["kinds"]
    guests = [g for g in module.params["guests"] if (g.get("kind") or "process") in kinds]
    planned = {str(g.get("name")) for g in module.params["guests"]}
    result = {"changed": False, "guests": {}, "started": [], "restarted": [], "stopped": []}
    errors = validate(ctx, guests)
    if errors:
        module.fail_json(msg="invalid process guests: " + "; ".join(errors), errors=errors)
    if module.params["state"] == "absent":
        run_absent(ctx, guests, result)
    else:
        for prog in ("ip", "vde_plug2tap", "unshare"):
            if guests and not module.get_bin_path(prog):
                module.fail_json(msg=f"{prog} not found (packages iproute2, vde2, util-linux)")
        run_present(ctx, guests, module.params["workers"], result, planned)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
