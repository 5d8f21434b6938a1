#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: configure an embedded_pnode node (a physical machine of the experiment) in place."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: embedded_nodes
short_description: Configure the embedded_pnode node of one pnode in place
description:
  - An C(embedded_pnode) node is a physical machine taking part in the experiment; it is alone on
    its pnode, so this module configures the machine it runs on (or a simulated one, see O(netns)
    and O(machine_root)) as its guest entry (C(containerize_guests)) says.
  - "Interfaces: each planned interface is the machine's device of the same name, or
    O(interface_map[IFNAME]), or the device with the planned MAC. It is brought up and gets the
    planned IPv4 address and prefix (addresses this module added earlier and no longer planned are
    removed; others are left alone). The MAC is set only with O(set_mac)."
  - "Routes: the planned routes are installed (C(ip route replace)); routes this module installed
    earlier and no longer planned are removed, other routes are left alone. A planned default
    route is skipped with a warning when the machine already has a default route through a device
    that is not an experiment interface (its control network), unless O(replace_default_route)."
  - "Forwarding: C(net.ipv4.ip_forward) as planned inside O(netns); on the machine's own network it
    is only turned on (never off), and its earlier value is restored at O(state=absent)."
  - "End-node shaping (the interface's C(tc)): C(tbf) for bandwidth only; C(netem) (with its C(rate)
    for bandwidth) when delay or loss is planned. A kernel without C(netem) fails with a clear message."
  - "Files in O(machine_root): a block of the experiment's hosts in C(/etc/hosts) (between
    C(# BEGIN containerize experiment EXP_NAME) and C(# END ...)), C(/var/containers/pid),
    C(/var/containers/eid) and C(/var/containers/log/)."
  - "Start command: run once per swap-in, as C(sh -c STARTCMD), by a small supervisor started
    detached (in O(netns) with C(ip netns exec), and under C(chroot O(machine_root)) when that is not
    C(/)), with its pid in C(run_dir/NODE.embedded-start.pid). The status goes to
    C(/var/containers/log/start_command.log) (C(start TIME), C(exit N), C(end TIME)), the output to
    C(start_command.out) and C(start_command.err). A later run leaves a running or finished command
    alone and starts it again when its supervisor was killed or the command changed."
  - "Safety: without O(netns) the module acts on the network of the machine it runs on, and refuses
    unless O(host_network) is set (the C(embedded_pnode) role sets it only for the C(testbed) target).
    It never configures the device that holds the machine's default route."
  - With O(state=absent) the start command is stopped, the planned (and recorded) addresses, routes
    and qdiscs are removed, forwarding restored, the hosts block and the C(/var/containers) files
    removed. The machine (its namespace and root) stays.
version_added: "0.1.0"
author:
  - containerize authors
options:
  run_dir:
    description: Runtime directory of the experiment on this pnode; holds C(NODE.embedded.json), what was done.
    type: path
    required: true
  exp_name:
    description: Experiment name C(EID.PID) (C(containerize_exp_name)).
    type: str
    required: true
  project:
    description: Project id, written to C(/var/containers/pid).
    type: str
    required: true
  experiment:
    description: Experiment id, written to C(/var/containers/eid).
    type: str
    required: true
  hosts:
    description: The experiment's hosts, a list of C({address, names}).
    type: list
    elements: dict
    default: []
  guests:
    description:
      - The guests of this pnode (C(containerize_guests)); only C(kind=embedded_pnode) entries are used,
        and there may be one at most.
    type: list
    elements: dict
    default: []
  machine_root:
    description: File system root of the machine (C(/); a directory for a simulated machine).
    type: path
    default: /
  netns:
    description: Network namespace of the machine; empty for the network of the machine the module runs on.
    type: str
    default: ""
  host_network:
    description: Allow configuring the network of the machine the module runs on (O(netns) empty).
    type: bool
    default: false
  interface_map:
    description: Planned interface name to the machine's device name.
    type: dict
    default: {}
  set_mac:
    description: Give each device its planned MAC.
    type: bool
    default: false
  replace_default_route:
    description: Install a planned default route even when the machine has a default route elsewhere.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for a start command supervisor to go away.
    type: float
    default: 5.0
  state:
    description: C(present) configures the node, C(absent) undoes it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode (nothing is changed; the result lists what would change) and diff mode.
requirements:
  - iproute2 (ip, tc)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Configure this machine as its embedded_pnode node (testbed target)
  embedded_nodes:
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    hosts: "{{ containerize_hosts }}"
    guests: "{{ containerize_guests }}"
    host_network: true
    interface_map: {eth0: enp3s0f1}

- name: Configure a simulated machine (a network namespace and a root directory)
  embedded_nodes:
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    hosts: "{{ containerize_hosts }}"
    guests: "{{ containerize_guests }}"
    netns: sim-e1
    machine_root: /var/tmp/sim-e1
"""

RETURN = r"""
node:
  description: The embedded node configured (empty when the pnode has none).
  returned: always
  type: str
  sample: e1
devices:
  description: Planned interface name to the machine's device.
  returned: always
  type: dict
  sample: {eth0: enp3s0f1}
changes:
  description: What was done (or would be).
  returned: always
  type: list
  elements: str
started:
  description: True when the start command was started.
  returned: always
  type: bool
"""

import json
import os
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    NETNS_DIR,
    check_hosts,
    compact_invocation,
    norm_dest,
    parse_json_stream,
    proc_alive,
    read_json,
    read_pid,
    read_text,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.daemons import run as run_argv
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import tbf_tc_args

SUPERVISOR = r"""# containerize start command supervisor (embedded_nodes): $1 pid file (unused here), $2 command
log=/var/containers/log
mkdir -p "$log" || exit 1
exec 3>"$log/start_command.log" 4>"$log/start_command.out" 5>"$log/start_command.err" || exit 1
echo "start $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&3
cd / || exit 1
sh -c "$2" >&4 2>&5 </dev/null 3>&- 4>&- 5>&-
rc=$?
echo "exit $rc" >&3
echo "end $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&3
exit $rc
"""


def run(argv, stdin=None, timeout=60):
    """run_argv() with this module's default timeout (network commands on the machine)."""
    return run_argv(argv, stdin, timeout)


def kill_group(pid, timeout):
    """TERM the process group PID leads, then KILL it. True when the leader was running."""
    alive = proc_alive(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except OSError:
            pass
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 2)
        while proc_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return alive


def write_file(path, text, mode=0o644):
    """Write in place (keeps the inode: /etc/hosts is often a bind mount)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def hosts_with_block(text, exp_name, block):
    """TEXT with this experiment's block replaced (or removed when BLOCK is empty)."""
    begin, end = f"# BEGIN containerize experiment {exp_name}", f"# END containerize experiment {exp_name}"
    lines = (text or "").splitlines()
    if begin in lines and end in lines[lines.index(begin) :]:
        start = lines.index(begin)
        del lines[start : lines.index(end, start) + 1]
    if block.strip():
        lines += [begin, *block.rstrip("\n").splitlines(), end]
    return "\n".join(lines) + "\n" if lines else ""


class Machine:
    """The (possibly simulated) physical machine: its network namespace and its file system root."""

    def __init__(self, module):
        p = module.params
        self.module = module
        self.check = module.check_mode
        self.netns = p["netns"]
        self.root = os.path.abspath(p["machine_root"])

    def ip(self, *args, stdin=None):
        argv = ["ip"] + (["-n", self.netns] if self.netns else []) + list(args)
        return run(argv, stdin=stdin)

    def tc(self, *args):
        argv = ["tc"] + (["-n", self.netns] if self.netns else []) + list(args)
        return run(argv)

    def observe(self):
        rc, out, err = self.ip("-json", "-batch", "-", stdin="addr show\nroute show table main\n")
        if rc != 0:
            raise RuntimeError(f"cannot read the machine's network: {err.strip()}")
        values = parse_json_stream(out)
        links = {}
        for link in values[0] if values else []:
            links[link["ifname"]] = {
                "mac": (link.get("address") or "").lower(),
                "up": "UP" in link.get("flags", []),
                "addresses": sorted(
                    f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if a.get("family") == "inet"
                ),
            }
        routes = []
        for route in values[1] if len(values) > 1 else []:
            if route.get("protocol") == "kernel" or route.get("type", "unicast") != "unicast":
                continue
            routes.append({"dest": norm_dest(route.get("dst")), "gateway": route.get("gateway"),
                           "dev": route.get("dev")})
        return links, routes

    def sysctl(self, key, value=None):
        path = "/proc/sys/" + key.replace(".", "/")
        if not self.netns:
            if value is None:
                return (read_text(path) or "").strip()
            with open(path, "w", encoding="ascii") as handle:
                handle.write(str(value))
            return str(value)
        if value is None:
            rc, out, _err = run(["ip", "netns", "exec", self.netns, "cat", path])
            return out.strip() if rc == 0 else None
        rc, _out, err = run(["ip", "netns", "exec", self.netns, "sysctl", "-q", "-w", f"{key}={value}"])
        if rc != 0:
            raise RuntimeError(f"sysctl {key}={value}: {err.strip()}")
        return str(value)

    def qdisc(self, dev):
        rc, out, _err = self.tc("-json", "qdisc", "show", "dev", dev)
        if rc != 0:
            return None
        for q in json.loads(out or "[]"):
            if q.get("root"):
                return q.get("kind")
        return None

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def wrap(self, argv):
        """ARGV run inside the machine: its network namespace and its root."""
        if self.root != "/":
            argv = ["chroot", self.root] + argv
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        return argv


def tc_spec(tc):
    """{kind, args} of the root qdisc planned for TC (None: no shaping)."""
    tc = tc or {}
    bandwidth = int(tc.get("bandwidth") or 0)
    delay = float(tc.get("delay_ms") or 0)
    loss = float(tc.get("loss") or 0)
    if delay > 0 or loss > 0:
        args = ["netem"]
        if delay > 0:
            args += ["delay", f"{delay:g}ms"]
        if loss > 0:
            args += ["loss", f"{loss * 100:.6g}%"]
        if bandwidth:
            args += ["rate", f"{bandwidth}bit"]
        return {"kind": "netem", "args": args}
    if bandwidth:
        return {"kind": "tbf", "args": tbf_tc_args(bandwidth)}
    return None


class Node:
    def __init__(self, module, machine, spec):
        p = module.params
        self.module = module
        self.machine = machine
        self.spec = spec
        self.name = spec["name"]
        self.check = module.check_mode
        self.run_dir = os.path.abspath(p["run_dir"])
        self.exp_name = p["exp_name"]
        self.record_path = os.path.join(self.run_dir, f"{self.name}.embedded.json")
        self.pidfile = os.path.join(self.run_dir, f"{self.name}.embedded-start.pid")
        self.record = read_json(self.record_path, {})
        self.changes = []
        self.started = False
        self.devices = {}
        self.startcmd = spec.get("startcmd") or ""
        self.routes = [
            (norm_dest(r.get("dest")), r.get("gateway") or None) for r in spec.get("routes") or []
        ]

    def note(self, what):
        self.changes.append(what)

    def save(self):
        if not self.check:
            os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
            write_json(self.record_path, self.record)

    def device_of(self, iface, links, recorded=False):
        """The machine's device for a planned interface: mapped, (recorded,) same name, or planned MAC."""
        ifname = iface["ifname"]
        dev = self.module.params["interface_map"].get(ifname)
        if not dev and recorded:
            dev = (self.record.get("devices") or {}).get(ifname)
        if dev:
            return dev
        mac = str(iface.get("mac") or "").lower()
        by_mac = [name for name, link in links.items() if mac and link["mac"] == mac]
        return ifname if ifname in links else (by_mac[0] if by_mac else None)

    def resolve_devices(self, links, routes):
        control = {r["dev"] for r in routes if r["dest"] == "default" and r["dev"]}
        for iface in self.spec.get("interfaces") or []:
            ifname = iface["ifname"]
            dev = self.device_of(iface, links)
            if not dev or dev not in links:
                raise RuntimeError(
                    f"{self.name}: no device for planned interface {ifname} (MAC {iface.get('mac')}); the machine has "
                    f"{', '.join(sorted(links))}; map it with interface_map"
                )
            if dev in control and not self.machine.netns:
                raise RuntimeError(f"{self.name}: {dev} holds the machine's default route (its control network); "
                                   "refusing to make it an experiment interface")
            self.devices[ifname] = dev

    def ensure_network(self):
        m = self.machine
        links, routes = m.observe()
        self.resolve_devices(links, routes)
        p = self.module.params
        cmds = []
        added = {dev: set(a) for dev, a in (self.record.get("addresses") or {}).items()}
        for iface in self.spec.get("interfaces") or []:
            dev = self.devices[iface["ifname"]]
            link = links[dev]
            mac = str(iface.get("mac") or "").lower()
            if p["set_mac"] and mac and link["mac"] != mac:
                cmds.append(f"link set dev {dev} address {mac}")
                self.note(f"mac {dev}")
            want = f"{iface['address']}/{int(iface['prefix'])}" if iface.get("address") else None
            for addr in sorted(added.get(dev, set()) - {want} if want else added.get(dev, set())):
                if addr in link["addresses"]:
                    cmds.append(f"addr del {addr} dev {dev}")
                    self.note(f"addr del {dev} {addr}")
            added[dev] = set()
            if want:
                added[dev].add(want)
                if want not in link["addresses"]:
                    cmds.append(f"addr add {want} broadcast + dev {dev}")
                    self.note(f"addr {dev} {want}")
            if not link["up"]:
                cmds.append(f"link set dev {dev} up")
                self.note(f"up {dev}")
        present = {(r["dest"], r["gateway"]) for r in routes}
        experiment_devs = set(self.devices.values())
        elsewhere = [r for r in routes if r["dest"] == "default" and r["dev"] not in experiment_devs]
        installed = {tuple(r) for r in self.record.get("routes") or []}
        keep = set()
        for dest, gateway in self.routes:
            if dest == "default" and elsewhere and not p["replace_default_route"]:
                self.module.warn(f"{self.name}: planned default route via {gateway} not installed: the machine has "
                                 f"one via {elsewhere[0]['dev']} (set replace_default_route to replace it)")
                continue
            keep.add((dest, gateway))
            if (dest, gateway) not in present:
                cmds.append(f"route replace {dest}" + (f" via {gateway}" if gateway else ""))
                self.note(f"route {dest}")
        for dest, gateway in sorted(installed - keep, key=str):
            if (dest, gateway) in present:
                cmds.append(f"route del {dest}" + (f" via {gateway}" if gateway else ""))
                self.note(f"route del {dest}")
        if cmds and not self.check:
            rc, _out, err = m.ip("-batch", "-", stdin="\n".join(cmds) + "\n")
            if rc != 0:
                raise RuntimeError(f"{self.name}: ip -batch failed: {err.strip()} (commands: {cmds})")
        self.record["devices"] = self.devices
        self.record["addresses"] = {dev: sorted(a) for dev, a in added.items() if a}
        self.record["routes"] = sorted([list(r) for r in keep], key=str)

        # forwarding: exact inside a namespace; on the machine's own network only turned on
        want_fwd = "1" if self.spec.get("forwarding") else "0"
        have = m.sysctl("net.ipv4.ip_forward")
        if have != want_fwd and (m.netns or want_fwd == "1"):
            self.note(f"forwarding {want_fwd}")
            self.record.setdefault("forwarding_before", have)
            if not self.check:
                m.sysctl("net.ipv4.ip_forward", want_fwd)

        # end-node shaping
        applied = self.record.get("tc") or {}
        for iface in self.spec.get("interfaces") or []:
            dev = self.devices[iface["ifname"]]
            spec = tc_spec(iface.get("tc"))
            kind = m.qdisc(dev)
            if spec is None:
                if dev in applied and kind in ("tbf", "netem"):
                    self.note(f"tc del {dev}")
                    if not self.check:
                        m.tc("qdisc", "del", "dev", dev, "root")
                applied.pop(dev, None)
                continue
            if kind == spec["kind"] and applied.get(dev) == spec["args"]:
                continue
            self.note(f"tc {dev} {spec['kind']}")
            if not self.check:
                rc, _out, err = m.tc("qdisc", "replace", "dev", dev, "root", *spec["args"])
                if rc != 0:
                    if spec["kind"] == "netem" and ("unknown" in err.lower() or "not supported" in err.lower()):
                        raise RuntimeError(
                            f"{self.name} {iface['ifname']}: end-node delay or loss needs the netem qdisc, which this "
                            "kernel lacks (sch_netem); shape this link elsewhere or use a kernel with netem"
                        )
                    raise RuntimeError(f"{self.name}: tc qdisc replace dev {dev} root {' '.join(spec['args'])}: "
                                       f"{err.strip()}")
            applied[dev] = spec["args"]
        self.record["tc"] = applied

    def ensure_files(self, hosts):
        m = self.machine
        p = self.module.params
        block = "".join(f"{h['address']} {' '.join(h['names'])}\n" for h in hosts)
        hosts_path = m.path("etc/hosts")
        current = read_text(hosts_path)
        wanted = hosts_with_block(current, self.exp_name, block)
        if current != wanted:
            self.note("/etc/hosts")
            if not self.check:
                os.makedirs(os.path.dirname(hosts_path), exist_ok=True)
                write_file(hosts_path, wanted)
        for key, value in (("pid", p["project"]), ("eid", p["experiment"])):
            path = m.path(f"var/containers/{key}")
            if read_text(path) != value + "\n":
                self.note(f"/var/containers/{key}")
                if not self.check:
                    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                    write_file(path, value + "\n")
        if not os.path.isdir(m.path("var/containers/log")):
            self.note("/var/containers/log")
            if not self.check:
                os.makedirs(m.path("var/containers/log"), mode=0o755, exist_ok=True)

    def start_argv(self):
        return self.machine.wrap(["sh", "-c", SUPERVISOR, "supervisor", self.pidfile, self.startcmd])

    def ensure_start(self):
        wants = bool(self.startcmd.strip()) and not self.spec.get("ghost")
        pid = read_pid(self.pidfile)
        running = proc_alive(pid, self.pidfile)
        argv = self.start_argv()
        if not wants:
            if running:
                self.note("stop start command")
                if not self.check:
                    kill_group(pid, self.module.params["timeout"])
                    os.unlink(self.pidfile)
            return
        log = read_text(self.machine.path("var/containers/log/start_command.log")) or ""
        finished = any(line.startswith("exit ") for line in log.splitlines())
        same = self.record.get("start_argv") == argv
        if same and (running or finished):
            return
        self.note("restart start command" if running else "start command")
        self.started = True
        if self.check:
            return
        for old in {pid, self.record.get("start_pid")} - {None}:
            kill_group(old, self.module.params["timeout"])
        try:
            os.unlink(self.machine.path("var/containers/log/start_command.log"))
        except FileNotFoundError:
            pass
        proc = subprocess.Popen(  # noqa: S603 - argv list; the command is one argument
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
        write_file(self.pidfile, f"{proc.pid}\n")
        self.record["start_argv"] = argv
        self.record["start_pid"] = proc.pid

    def present(self, hosts):
        if not self.check:
            os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
        self.ensure_network()
        self.ensure_files(hosts)
        self.ensure_start()
        self.save()

    def absent(self):
        m = self.machine
        p = self.module.params
        pid = read_pid(self.pidfile)
        for old in {pid, self.record.get("start_pid")} - {None}:
            if proc_alive(old):
                self.note("stop start command")
                if not self.check:
                    kill_group(old, p["timeout"])
        if m.present:
            self.undo_machine()
        if not self.check:
            for path in (self.pidfile, self.record_path):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def undo_machine(self):
        """Remove from the machine what present() put there."""
        m = self.machine
        links, routes = m.observe()
        addresses = {dev: set(a) for dev, a in (self.record.get("addresses") or {}).items()}
        for iface in self.spec.get("interfaces") or []:
            dev = self.device_of(iface, links, recorded=True)
            if dev and iface.get("address"):
                addresses.setdefault(dev, set()).add(f"{iface['address']}/{int(iface['prefix'])}")
        cmds = []
        present_routes = {(r["dest"], r["gateway"]) for r in routes}
        for dest, gateway in sorted({tuple(r) for r in self.record.get("routes") or []} | set(self.routes), key=str):
            if (dest, gateway) in present_routes and (dest != "default" or self.record.get("routes")):
                cmds.append(f"route del {dest}" + (f" via {gateway}" if gateway else ""))
                self.note(f"route del {dest}")
        for dev, addrs in sorted(addresses.items()):
            for addr in sorted(addrs):
                if addr in (links.get(dev) or {}).get("addresses", []):
                    cmds.append(f"addr del {addr} dev {dev}")
                    self.note(f"addr del {dev} {addr}")
        if cmds and not self.check:
            m.ip("-force", "-batch", "-", stdin="\n".join(cmds) + "\n")
        for dev in sorted(self.record.get("tc") or {}):
            if dev in links and m.qdisc(dev) in ("tbf", "netem"):
                self.note(f"tc del {dev}")
                if not self.check:
                    m.tc("qdisc", "del", "dev", dev, "root")
        before = self.record.get("forwarding_before")
        if before in ("0", "1") and m.sysctl("net.ipv4.ip_forward") != before:
            self.note(f"forwarding {before}")
            if not self.check:
                m.sysctl("net.ipv4.ip_forward", before)
        hosts_path = m.path("etc/hosts")
        current = read_text(hosts_path)
        if current is not None:
            wanted = hosts_with_block(current, self.exp_name, "")
            if wanted != current:
                self.note("/etc/hosts")
                if not self.check:
                    write_file(hosts_path, wanted)
        for rel in ("var/containers/pid", "var/containers/eid", "var/containers/log"):
            path = m.path(rel)
            if os.path.lexists(path):
                self.note(f"remove /{rel}")
                if not self.check:
                    if os.path.isdir(path) and not os.path.islink(path):
                        for entry in os.listdir(path):
                            os.unlink(os.path.join(path, entry))
                        os.rmdir(path)
                    else:
                        os.unlink(path)


def main():
    module = AnsibleModule(
        argument_spec={
            "run_dir": {"type": "path", "required": True},
            "exp_name": {"type": "str", "required": True},
            "project": {"type": "str", "required": True},
            "experiment": {"type": "str", "required": True},
            "hosts": {"type": "list", "elements": "dict", "default": []},
            "guests": {"type": "list", "elements": "dict", "default": []},
            "machine_root": {"type": "path", "default": "/"},
            "netns": {"type": "str", "default": ""},
            "host_network": {"type": "bool", "default": False},
            "interface_map": {"type": "dict", "default": {}},
            "set_mac": {"type": "bool", "default": False},
            "replace_default_route": {"type": "bool", "default": False},
            "timeout": {"type": "float", "default": 5.0},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    check_hosts(module)
    p = module.params
    guests = [g for g in p["guests"] if g.get("kind") == "embedded_pnode"]
    result = {"changed": False, "node": "", "devices": {}, "changes": [], "started": False}
    if not guests:
        module.exit_json(**result, invocation=compact_invocation(module))
    if len(guests) > 1:
        module.fail_json(msg="an embedded_pnode node is alone on its pnode, but this one has "
                         + ", ".join(g.get("name", "?") for g in guests), **result)
    if not p["netns"] and not p["host_network"]:
        module.fail_json(msg=f"embedded_pnode node {guests[0].get('name')}: refusing to reconfigure the network of "
                         "the machine this runs on; give a simulated machine (netns and machine_root) or set "
                         "host_network on a real physical node", **result)
    machine = Machine(module)
    machine.present = not p["netns"] or os.path.exists(os.path.join(NETNS_DIR, p["netns"]))
    machine.present = machine.present and os.path.isdir(p["machine_root"])
    if not machine.present and p["state"] == "present":
        module.fail_json(msg=f"the machine is missing: network namespace {p['netns'] or '(own)'}, root "
                         f"{p['machine_root']}", **result)
    node = Node(module, machine, guests[0])
    result["node"] = node.name
    before = json.dumps(node.record, sort_keys=True, indent=1)
    try:
        if p["state"] == "present":
            node.present(p["hosts"])
        else:
            node.absent()
    except RuntimeError as exc:
        module.fail_json(msg=str(exc), **result, changes=node.changes)
    result.update(changed=bool(node.changes), devices=node.devices, changes=node.changes, started=node.started)
    if module._diff:
        after = "" if p["state"] == "absent" else json.dumps(node.record, sort_keys=True, indent=1)
        result["diff"] = {"before": before + "\n", "after": after + "\n",
                          "before_header": node.record_path, "after_header": node.record_path}
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
