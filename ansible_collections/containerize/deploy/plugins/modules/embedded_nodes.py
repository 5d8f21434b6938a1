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
    and O(machine_root)) as its node entry (C(containerize_nodes)) says.
  - "Interfaces: each planned interface is the machine's device of the same name, or
    O(interface_map[IFNAME]), or the device with the planned MAC. It is brought up and gets the
    planned IPv4 address and prefix (addresses this module added earlier and no longer planned are
    removed; others are left alone). The MAC is set only with O(set_mac)."
  - "An interface planned with C(vxlan) (testbed target, its link crossing pnodes) and not in O(interface_map)
    is a VXLAN device made on the machine, flooding to the other pnodes' uplinks (C(vxlan.peers)) from
    O(pnet.address), which is added to the experiment interface when missing, as vde_uplinks does."
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
  - "Start command: run once per swap-in, as C(sh -c STARTCMD), by the start command supervisor of
    every kind of node (O(scripts_dir)C(/hv/start-command.sh), put in place by the hv role; run where it
    is when O(machine_root) is C(/), else copied into the machine as C(/etc/containerize/start-command.sh)),
    started detached (in O(netns) with C(ip netns exec), and under C(chroot O(machine_root)) when that is
    not C(/)), with its pid in C(run_dir/NODE.embedded-start.pid). The status goes to
    C(/var/containers/log/start_command.log) (C(start TIME), C(exit N), C(end TIME)), the output to
    C(start_command.out) and C(start_command.err). A later run leaves a running or finished command
    alone and starts it again when its supervisor was killed or the command changed."
  - "Safety: without O(netns) the module acts on the network of the machine it runs on, and refuses
    unless O(host_network) is set (the C(embedded_pnode) role sets it only for the C(testbed) target).
    It never configures the device that holds the machine's default route."
  - With O(state=absent) the start command is stopped, the planned (and recorded) addresses, routes
    and qdiscs are removed, each device is given back the up/down state (and, after O(set_mac), the MAC)
    it had when the module first took it, forwarding restored, the hosts block and the C(/var/containers) files
    removed (and the supervisor's copy in the machine). The machine (its namespace and root) stays.
version_added: "0.1.0"
author:
  - containerize authors
extends_documentation_fragment: [containerize.deploy.experiment.node_module]
options:
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
  pnet:
    description: This pnode's place on the experiment network (C(containerize_pnet)), for VXLAN interfaces.
    type: dict
  vxlan_port:
    description: UDP port of the VXLAN devices (the vde role's C(vde_uplink_port)).
    type: int
    default: 4789
  timeout:
    description: Seconds to wait for a start command supervisor to go away.
    type: float
    default: 5.0
notes:
  - Only C(kind=embedded_pnode) entries of O(nodes) are used, and there may be one at most; O(root) and
    O(workers) do not matter here (one node, the machine itself).
  - The diff shows the module's record of what it did (C(run_dir/NODE.embedded.json)) before and after.
requirements:
  - iproute2 (ip, tc)
"""

EXAMPLES = r"""
- name: Configure this machine as its embedded_pnode node (testbed target)
  containerize.deploy.embedded_nodes:
    run_dir: "{{ containerize_run_dir }}"
    scripts_dir: "{{ containerize_scripts_dir }}"
    exp_name: "{{ containerize_exp_name }}"
    project: "{{ containerize_project }}"
    experiment: "{{ containerize_experiment }}"
    host_network: true
    interface_map: {eth0: enp3s0f1}
  # hosts and nodes left out: the action plugin passes containerize_hosts and containerize_nodes

- name: Undo the configuration of a simulated machine (a network namespace and a root directory)
  containerize.deploy.embedded_nodes:
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: emb.proj
    project: proj
    experiment: emb
    netns: sim-e1
    machine_root: /var/tmp/sim-e1
    state: absent
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
import subprocess

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    NETNS_DIR,
    compact_invocation,
    kill_pid,
    norm_dest,
    proc_alive,
    read_json,
    read_pid,
    read_text,
    remove_path,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.hosts import host_lines, with_block
from ansible_collections.containerize.deploy.plugins.module_utils.machine import (
    Machine,
    device_for,
    planned_device,
    tc_spec,
    write_in_place,
)
from ansible_collections.containerize.deploy.plugins.module_utils.node_status import start_needle
from ansible_collections.containerize.deploy.plugins.module_utils.spec import nodes_module
from ansible_collections.containerize.deploy.plugins.module_utils.start_log import LOG_NAME, SCRIPT_NAME
from ansible_collections.containerize.deploy.plugins.module_utils.vxlan import Side, experiment_device, vxlan_commands

LOG_DIR = "/var/containers/log"  # inside the machine
SUPERVISOR_COPY = f"/etc/containerize/{SCRIPT_NAME}"  # inside a simulated machine (machine_root not /)


def stop(pid, timeout):
    """TERM the process group PID leads, then KILL it."""
    kill_pid(pid, None, timeout, group=True)


class Node:
    """The embedded_pnode node: plan what makes the machine match its node entry, then apply it.

    The plan methods only read (the machine, the record) and queue their changes (``act``) with a
    description (``note``); ``apply`` runs the queue, except in check mode.
    """

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
        self.actions = []
        self.started = False
        self.devices = {}
        self.startcmd = spec.get("startcmd") or ""
        self.routes = [
            (norm_dest(r.get("dest")), r.get("gateway") or None) for r in spec.get("routes") or []
        ]

    # -- plan and apply

    def note(self, what):
        self.changes.append(what)

    def act(self, function, *args):
        self.actions.append((function, args))

    def apply(self):
        if not self.check:
            for function, args in self.actions:
                function(*args)
        self.actions = []

    def save(self):
        os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
        write_json(self.record_path, self.record)

    # -- the network

    def device_of(self, iface, links, recorded=False):
        """The machine's device for a planned interface: mapped, (recorded,) same name, or planned MAC."""
        mapped = self.module.params["interface_map"].get(iface["ifname"])
        if not mapped and recorded:
            mapped = (self.record.get("devices") or {}).get(iface["ifname"])
        return device_for(iface, links, mapped)

    def plan_addresses(self, links):
        """`ip -batch` lines for MACs, addresses and links up; records the addresses this module owns."""
        cmds = []
        added = {dev: set(a) for dev, a in (self.record.get("addresses") or {}).items()}
        before = self.record.setdefault("before", {})  # each device as the module first found it
        for iface in self.spec.get("interfaces") or []:
            dev = self.devices[iface["ifname"]]
            link = links[dev]
            before.setdefault(dev, {"up": link["up"]})
            mac = str(iface.get("mac") or "").lower()
            if self.module.params["set_mac"] and mac and link["mac"] != mac:
                before[dev].setdefault("mac", link["mac"])
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
        self.record["addresses"] = {dev: sorted(a) for dev, a in added.items() if a}
        return cmds

    def plan_routes(self, routes):
        """`ip -batch` lines for the planned routes (and the removal of those no longer planned)."""
        cmds = []
        present = {(r["dest"], r["gateway"]) for r in routes}
        experiment_devs = set(self.devices.values())
        elsewhere = [r for r in routes if r["dest"] == "default" and r["dev"] not in experiment_devs]
        installed = {tuple(r) for r in self.record.get("routes") or []}
        keep = set()
        for dest, gateway in self.routes:
            if dest == "default" and elsewhere and not self.module.params["replace_default_route"]:
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
        self.record["routes"] = sorted([list(r) for r in keep], key=str)
        return cmds

    def run_batch(self, cmds):
        rc, _out, err = self.machine.ip_batch(cmds)
        if rc != 0:
            raise RuntimeError(f"{self.name}: ip -batch failed: {err.strip()} (commands: {cmds})")

    def plan_forwarding(self):
        """Forwarding: exact inside a namespace; on the machine's own network only turned on."""
        m = self.machine
        want = "1" if self.spec.get("forwarding") else "0"
        have = m.sysctl("net.ipv4.ip_forward")
        if have != want and (m.netns or want == "1"):
            self.note(f"forwarding {want}")
            self.record.setdefault("forwarding_before", have)
            self.act(m.sysctl, "net.ipv4.ip_forward", want)

    def replace_qdisc(self, iface, dev, spec):
        rc, _out, err = self.machine.tc("qdisc", "replace", "dev", dev, "root", *spec["args"])
        if rc == 0:
            return
        if spec["kind"] == "netem" and ("unknown" in err.lower() or "not supported" in err.lower()):
            raise RuntimeError(
                f"{self.name} {iface['ifname']}: end-node delay or loss needs the netem qdisc, which this "
                "kernel lacks (sch_netem); shape this link elsewhere or use a kernel with netem"
            )
        raise RuntimeError(f"{self.name}: tc qdisc replace dev {dev} root {' '.join(spec['args'])}: {err.strip()}")

    def plan_shaping(self):
        m = self.machine
        applied = self.record.get("tc") or {}
        for iface in self.spec.get("interfaces") or []:
            dev = self.devices[iface["ifname"]]
            spec = tc_spec(iface.get("tc"))
            kind = m.qdisc(dev)
            if spec is None:
                if dev in applied and kind in ("tbf", "netem"):
                    self.note(f"tc del {dev}")
                    self.act(m.tc, "qdisc", "del", "dev", dev, "root")
                applied.pop(dev, None)
                continue
            if kind == spec["kind"] and applied.get(dev) == spec["args"]:
                continue
            self.note(f"tc {dev} {spec['kind']}")
            self.act(self.replace_qdisc, iface, dev, spec)
            applied[dev] = spec["args"]
        self.record["tc"] = applied

    def plan_vxlan(self, plan, links):
        """Queue what makes the VXLAN device of PLAN (an interface's `vxlan`); add the pnet address now."""
        pnet = self.module.params["pnet"]
        if not pnet or not pnet.get("address"):
            raise RuntimeError(f"{self.name}: an interface over VXLAN needs pnet (containerize_pnet)")
        side = Side(self.machine.netns or None)
        have = side.links()
        _dev, added, _held = experiment_device(side, pnet, pnet.get("device"), have, self.note, self.check,
                                              quiet=False)
        if added:
            self.record["pnet_address"] = added
        want = {"id": int(plan["vni"]), "local": pnet["address"], "port": self.module.params["vxlan_port"]}
        name = plan["device"]
        peers = side.fdb_zero().get(name, set()) if name in have else set()
        ip_cmds, bridge_cmds, notes = vxlan_commands(name, have.get(name), want, plan.get("mtu"), plan["peers"], peers)
        for text in notes:
            self.note(text)
        if ip_cmds:
            self.act(side.batch, "ip", ip_cmds)
        if bridge_cmds:
            self.act(side.batch, "bridge", bridge_cmds)
        links.setdefault(name, {"mac": "", "up": True, "addresses": []})
        return name

    def plan_network(self):
        links, routes = self.machine.observe()
        # never the device of the machine's own default route (its control network) on the host network
        control = set() if self.machine.netns else {r["dev"] for r in routes if r["dest"] == "default" and r["dev"]}
        vxlans = {}
        for iface in self.spec.get("interfaces") or []:
            if iface.get("vxlan") and not self.module.params["interface_map"].get(iface["ifname"]):
                vxlans[iface["ifname"]] = self.devices[iface["ifname"]] = self.plan_vxlan(iface["vxlan"], links)
                continue
            self.devices[iface["ifname"]] = planned_device(self.name, iface, links, self.device_of(iface, links),
                                                           control)
        self.record["vxlan"] = vxlans
        cmds = self.plan_addresses(links) + self.plan_routes(routes)
        if cmds:
            self.act(self.run_batch, cmds)
        self.record["devices"] = self.devices
        self.plan_forwarding()
        self.plan_shaping()

    # -- files

    def plan_files(self, hosts):
        m = self.machine
        p = self.module.params
        current = read_text(m.path("etc/hosts"))
        wanted = with_block(current, self.exp_name, hosts if isinstance(hosts, str) else host_lines(hosts))
        if current != wanted:
            self.note("/etc/hosts")
            self.act(m.write, "etc/hosts", wanted)
        for key, value in (("pid", p["project"]), ("eid", p["experiment"])):
            if read_text(m.path(f"var/containers/{key}")) != value + "\n":
                self.note(f"/var/containers/{key}")
                self.act(m.write, f"var/containers/{key}", value + "\n")
        if not os.path.isdir(m.path(LOG_DIR)):
            self.note(LOG_DIR)
            self.act(os.makedirs, m.path(LOG_DIR), 0o755, True)

    # -- the start command

    def supervisor_source(self):
        """The hv role's start command supervisor on the pnode (scripts_dir/hv/start-command.sh)."""
        return os.path.join(self.module.params.get("scripts_dir") or "", "hv", SCRIPT_NAME)

    def supervisor(self):
        """The start command supervisor's path inside the machine."""
        return self.supervisor_source() if self.machine.root == "/" else SUPERVISOR_COPY

    def plan_supervisor(self):
        """A simulated machine gets a copy of the hv role's supervisor (the pnode itself runs it in place)."""
        source = self.supervisor_source()
        text = read_text(source) if self.module.params.get("scripts_dir") else None
        if text is None:
            raise RuntimeError(f"{self.name}: no start command supervisor at {source} (scripts_dir): run the hv "
                               "role first")
        if self.machine.root != "/" and read_text(self.machine.path(SUPERVISOR_COPY)) != text:
            self.note(SUPERVISOR_COPY)
            self.act(self.machine.write, SUPERVISOR_COPY, text, 0o755)

    def start_argv(self):
        return self.machine.wrap(["sh", self.supervisor(), LOG_DIR, self.startcmd])

    def plan_start(self):
        wants = bool(self.startcmd.strip()) and not self.spec.get("ghost")
        pid = read_pid(self.pidfile)
        running = proc_alive(pid, start_needle(self.record, self.pidfile))
        if not wants:
            if running:
                self.note("stop start command")
                self.act(stop, pid, self.module.params["timeout"])
                self.act(os.unlink, self.pidfile)
            return
        self.plan_supervisor()
        argv = self.start_argv()
        log = read_text(self.machine.path(f"{LOG_DIR}/{LOG_NAME}")) or ""
        finished = any(line.startswith("exit ") for line in log.splitlines())
        if self.record.get("start_argv") == argv and (running or finished):
            return
        self.note("restart start command" if running else "start command")
        self.started = True
        self.act(self.start, argv, {pid, self.record.get("start_pid")} - {None})

    def start(self, argv, old_pids):
        for old in old_pids:
            stop(old, self.module.params["timeout"])
        remove_path(self.machine.path(f"{LOG_DIR}/{LOG_NAME}"))
        proc = subprocess.Popen(  # noqa: S603 - argv list; the command is one argument
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
        write_in_place(self.pidfile, f"{proc.pid}\n")
        self.record["start_argv"] = argv
        self.record["start_pid"] = proc.pid

    # -- present and absent

    def present(self, hosts):
        self.act(os.makedirs, self.run_dir, 0o755, True)
        self.record["wrap"] = self.machine.wrap([])  # how `containerize exec` and status enter the machine
        self.plan_network()
        self.plan_files(hosts)
        self.plan_start()
        self.act(self.save)
        self.apply()

    def absent(self):
        for old in {read_pid(self.pidfile), self.record.get("start_pid")} - {None}:
            if proc_alive(old):
                self.note("stop start command")
                self.act(stop, old, self.module.params["timeout"])
        if self.machine.present:
            self.plan_undo()
        self.act(remove_path, self.pidfile)
        self.act(remove_path, self.record_path)
        self.apply()

    def plan_undo(self):
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
        cmds += self.plan_restore(links)
        for dev in sorted(set((self.record.get("vxlan") or {}).values()) & set(links)):
            cmds.append(f"link del dev {dev}")
            self.note(f"remove vxlan {dev}")
        added = self.record.get("pnet_address") or {}
        if added.get("address") in (links.get(added.get("device")) or {}).get("addresses", []):
            cmds.append(f"addr del {added['address']} dev {added['device']}")
            self.note(f"addr del {added['device']} {added['address']}")
        if cmds:
            self.act(m.ip_batch, cmds, True)
        for dev in sorted(self.record.get("tc") or {}):
            if dev in links and m.qdisc(dev) in ("tbf", "netem"):
                self.note(f"tc del {dev}")
                self.act(m.tc, "qdisc", "del", "dev", dev, "root")
        before = self.record.get("forwarding_before")
        if before in ("0", "1") and m.sysctl("net.ipv4.ip_forward") != before:
            self.note(f"forwarding {before}")
            self.act(m.sysctl, "net.ipv4.ip_forward", before)
        current = read_text(m.path("etc/hosts"))
        if current is not None and with_block(current, self.exp_name, "") != current:
            self.note("/etc/hosts")
            self.act(m.write, "etc/hosts", with_block(current, self.exp_name, ""))
        for rel in ("var/containers/pid", "var/containers/eid", LOG_DIR, SUPERVISOR_COPY):
            if (rel != SUPERVISOR_COPY or m.root != "/") and os.path.lexists(m.path(rel)):
                self.note(f"remove /{rel.lstrip('/')}")
                self.act(remove_path, m.path(rel))
        if m.root != "/" and os.path.isdir(m.path(os.path.dirname(SUPERVISOR_COPY))):
            self.act(remove_empty_dir, m.path(os.path.dirname(SUPERVISOR_COPY)))


    def plan_restore(self, links):
        """`ip -batch` lines that give each device back its state before the node took it (down, its MAC)."""
        cmds = []
        for dev, state in sorted((self.record.get("before") or {}).items()):
            link = links.get(dev)
            if link is None:
                continue
            if state.get("mac") and link["mac"] != state["mac"]:
                cmds.append(f"link set dev {dev} address {state['mac']}")
                self.note(f"mac {dev} {state['mac']}")
            if state.get("up") is False and link["up"]:
                cmds.append(f"link set dev {dev} down")
                self.note(f"down {dev}")
        return cmds


def remove_empty_dir(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


def main():
    module = nodes_module(AnsibleModule, {
        "machine_root": {"type": "path", "default": "/"},
        "netns": {"type": "str", "default": ""},
        "host_network": {"type": "bool", "default": False},
        "interface_map": {"type": "dict", "default": {}},
        "set_mac": {"type": "bool", "default": False},
        "replace_default_route": {"type": "bool", "default": False},
        "pnet": {"type": "dict"},
        "vxlan_port": {"type": "int", "default": 4789},
        "timeout": {"type": "float", "default": 5.0},
    }, names=())
    p = module.params
    nodes = [g for g in p["nodes"] if g.get("kind") == "embedded_pnode"]
    result = {"changed": False, "node": "", "devices": {}, "changes": [], "started": False}
    if not nodes:
        module.exit_json(**result, invocation=compact_invocation(module))
    if len(nodes) > 1:
        module.fail_json(msg="an embedded_pnode node is alone on its pnode, but this one has "
                         + ", ".join(g.get("name", "?") for g in nodes), **result)
    if not p["netns"] and not p["host_network"]:
        module.fail_json(msg=f"embedded_pnode node {nodes[0].get('name')}: refusing to reconfigure the network of "
                         "the machine this runs on; give a simulated machine (netns and machine_root) or set "
                         "host_network on a real physical node", **result)
    machine = Machine(p["netns"], p["machine_root"])
    machine.present = not p["netns"] or os.path.exists(os.path.join(NETNS_DIR, p["netns"]))
    machine.present = machine.present and os.path.isdir(p["machine_root"])
    if not machine.present and p["state"] == "present":
        module.fail_json(msg=f"the machine is missing: network namespace {p['netns'] or '(own)'}, root "
                         f"{p['machine_root']}", **result)
    node = Node(module, machine, nodes[0])
    result["node"] = node.name
    before = json.dumps(node.record, sort_keys=True, indent=1)
    try:
        if p["state"] == "present":
            node.present(p["hosts"])
        else:
            node.absent()
    except (RuntimeError, OSError) as exc:
        module.fail_json(msg=str(exc), **{**result, "changes": node.changes})
    result.update(changed=bool(node.changes), devices=node.devices, changes=node.changes, started=node.started)
    if module._diff:
        after = "" if p["state"] == "absent" else json.dumps(node.record, sort_keys=True, indent=1)
        result["diff"] = {"before": before + "\n", "after": after + "\n",
                          "before_header": node.record_path, "after_header": node.record_path}
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
