#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: realize every process node of one pnode (namespaces, taps, routes, start commands)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: process_nodes
short_description: Realize the process nodes of one pnode
description:
  - Makes every C(process) node planned for this pnode (C(containerize_nodes) of
    C(host_vars/pnode-NNNN.yml)) exist as a network namespace wired into VDE, in one call.
  - Per node it ensures the namespace C(namespace) (C(ip netns add)), C(/etc/netns/NS/hosts) (and
    C(/etc/netns/NS/hostname) when the host has C(/etc/hostname)), the node directory
    C(root/nodes/exp_name/NAME/) with C(pid), C(eid) and C(log/), the loopback up, one
    C(vde_plug2tap) per interface (pid file C(run_dir/NODE.IFNAME.plug.pid)) whose tap has the
    planned MAC, address and prefix and is up,
    exactly the planned routes (missing ones added, other non-kernel routes removed),
    C(net.ipv4.ip_forward) as planned, and end-node C(tbf) shaping on interfaces with C(tc) set.
  - The files every node holds alike (C(hosts), C(pid), C(eid), C(info)) are hard links of one copy,
    C(run_dir/node-files/NAME), mended in place before the nodes (module_utils shared_files; inodes
    can be slow to allocate). A node's file that is not such a link is kept as its own.
  - No process is spawned per node except its plugs and start command. A worker thread enters the
    node's namespace (setns) to start C(vde_plug2tap) there and to open a netlink socket that stays
    bound to it; the links, addresses, routes and C(tbf) qdiscs are read and set over that socket
    with the requests C(ip) and C(tc) send (module_utils netlink), and the namespaces are
    made with one C(ip -batch). Nodes are checked in turn and, from the first that needs work,
    handled by a small thread pool (O(workers)).
  - A plug is restarted when it died, when its switch was started after it (the kernel's start
    times of the two processes), when it runs in another namespace (the namespace was deleted and
    made again) or when its arguments (its C(/proc/PID/cmdline)) are not the planned ones. A new tap
    gets its MAC, address, state and routes again.
  - The start command (C(startcmd)), unless empty or the node is a ghost, runs once per swap-in
    under the start command supervisor every kind of node shares (C(scripts_dir/hv/start-command.sh),
    put in place by the C(hv) role), started detached as C(ip netns exec NS unshare --uts -- sh
    start-command.sh NODEDIR/log STARTCMD HOSTNAME NODEDIR) with pid file C(run_dir/NODE.start.pid).
    The supervisor bind-mounts the node directory on C(/var/containers) (in the node's own mount
    namespace), sets the node's hostname, writes C(log/start_command.log) (C(start TIME), then
    C(exit N) and C(end TIME)) and runs C(sh -c STARTCMD) with output in C(log/start_command.out)
    and C(log/start_command.err). The command is passed as one argument, never pasted into a shell
    string. It runs on the node's C(cpus) (C(taskset)), else on the nodes' CPUs of the pnode, and the
    plugs on the data path's, as role C(hv) split them (C(run_dir/nodes.cpus), C(datapath.cpus)).
    A running supervisor is known by its command line naming the node's log directory, so a reused pid
    is never mistaken for it.
  - A later run leaves a running or finished start command alone. If the supervisor died without
    recording an exit status (it was killed), its process group is killed and the command started
    again.
  - Nodes whose C(kind) is not in O(kinds) (by default only C(process)) are ignored. Nodes recorded
    in O(run_dir) (C(process-nodes.json), with their C(tbf) parameters) that are no longer planned (under
    any kind) are removed.
  - Other kinds reuse the same network part; the C(openvz) role calls this module with
    O(kinds=[openvz]) and O(start_commands=false), then starts each container in its namespace.
  - With O(state=absent), supervisors (with their process groups) and plugs are killed, remaining
    processes in the namespaces are killed, the namespaces, C(/etc/netns/NS),
    C(root/nodes/exp_name) and C(run_dir/node-files) are removed. The namespaces are found from O(nodes), from the
    records in O(run_dir) (C(process-nodes.json)), and by scanning C(/run/netns) for C(PREFIX*.EID.PID), so a
    half-failed swap-in is cleaned too. When O(kinds) does not contain C(process), only the
    nodes of O(nodes) whose kind is in O(kinds) are removed (their namespaces, C(/etc/netns/NS),
    node directories and records), and nothing is scanned.
version_added: "0.1.0"
author:
  - containerize authors
extends_documentation_fragment: [containerize.deploy.experiment.node_module]
options:
  prefix:
    description: Name prefix of this pnode (C(containerize_prefix)), used when scanning for namespaces.
    type: str
    default: ""
  nodes:
    description:
      - The nodes of this pnode (C(containerize_nodes)); entries whose C(kind) is not in O(kinds) are
        ignored, but their names count as planned.
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
        description: Node kind; only kinds in O(kinds) are handled.
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
          - C(wire) is the id of the interface's wirefilter in O(wirefilters). When that one is a node plug
            and cz-wire is the element, the element is the interface's plug (C(tap://IFNAME) to the
            wirefilter's I(right) switch and port) instead of a C(vde_plug2tap) into C(switch).
          - An interface with C(veth), C({namespace, ifname}) of the other end, is one end of a veth pair
            into that node's namespace instead (no switch, no plug); whichever of the two nodes comes
            first makes the pair.
          - An interface with C(bridge), C({namespace, port}), is one end of a veth pair whose other end,
            C(port), is enslaved to the bridge C(lan) of that namespace, the LAN's own (no switch, no plug).
            The call makes the LAN namespaces first, and removes those of the experiment no longer planned.
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
    description: The node kinds this call realizes (their network part).
    type: list
    elements: str
    default: [process]
  start_commands:
    description:
      - Run the start commands of the nodes under the supervisor (which needs O(scripts_dir)). C(false)
        when the nodes run them themselves (an C(openvz) container runs its own from C(rc.local)); a
        supervisor left running from an earlier call is stopped.
    type: bool
    default: true
  wirefilters:
    description:
      - The pnode's planned wirefilters (C(containerize_wirefilters), as given to
        M(containerize.deploy.vde_network)); only those with I(node_plug) are used, and only with cz-wire.
      - Their shaping is read here, not from the interfaces, so that C(containerize shape) (which changes
        it in the plan and live, recording it in C(ID.wf.json)) is not undone by a re-run.
    type: list
    elements: dict
    default: []
  wire_program:
    description:
      - The shaping element, C(wirefilter) or the path of C(cz-wire). Default the one the
        M(containerize.deploy.wire_element) module recorded in C(scripts_dir/wire/element.json), else
        C(wirefilter).
    type: str
  timeout:
    description: Seconds to wait for a plug or process to come up or go away.
    type: float
    default: 5.0
  start_timeout:
    description:
      - Seconds to wait, at the end of the call, until every start command started in it has begun (its
        supervisor logged C(start)); the call fails naming the ones that have not. A process node has no
        boot to wait for, so with this the call leaves its nodes ready and the readiness role has nothing
        to wait for on a pnode of process nodes.
    type: float
    default: 60.0
  info_files:
    description:
      - Keep the C(info) script (a copy of O(scripts_dir)C(/hv/info.sh)) and the C(facts) file in the
        directory of each node of this call, as the readiness role's M(containerize.deploy.experiment_status)
        does for every node (module_utils/node_info.py), so that a pnode of process nodes needs no readiness
        call. Needs O(scripts_dir).
    type: bool
    default: false
  pnode:
    description: Name of this pnode (for the C(facts) file).
    type: str
    default: ""
  ipv6:
    description:
      - IPv6 on the nodes' interfaces (C(net.ipv6.conf.IF.disable_ipv6), and C(default) for the ones made
        later), set before an interface goes up and kept so. The plan gives nodes IPv4 only; with IPv6 on,
        every interface sends its link-local chatter (router solicitations, MLD reports, duplicate address
        detection) to every node of its LANs through their plugs, switches and wirefilters.
      - C(false) turns it off, C(true) on; unset (the default) leaves it as the kernel makes it (an C(openvz)
        container's own system decides). The C(process) role passes C(process_ipv6), false by default.
    type: bool
notes:
  - Run the C(vde_network) module first, the plugs need their switches, and the C(hv) role, which puts
    the start command supervisor in place.
requirements:
  - iproute2
  - vde2
  - util-linux (unshare)
"""

EXAMPLES = r"""
- name: Realize the process nodes of this pnode
  containerize.deploy.process_nodes:
    root: /var/containers
    run_dir: /var/containers/run/1a2b3c4d
    scripts_dir: /var/containers/config/exp.proj/scripts
    exp_name: exp.proj
    project: proj
    experiment: exp
    hosts: |
      127.0.0.1 localhost
      10.0.0.1 a a-lan0
      10.0.0.2 b b-lan0
    nodes: "{{ containerize_nodes | selectattr('kind', 'equalto', 'process') | list }}"

- name: Remove them
  containerize.deploy.process_nodes:
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    state: absent
"""

RETURN = r"""
nodes:
  description: For each node that changed (or would), the list of things done.
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
info_files:
  description: The C(NODE info) and C(NODE facts) files written (or, in check mode, that would be).
  returned: with O(info_files)
  type: list
  elements: str
node_files:
  description: The shared copies (C(run_dir/node-files/NAME)) made or brought to the plan (or that would be).
  returned: with O(state=present)
  type: list
  elements: str
  sample: [hosts, pid, eid]
lans:
  description: What changed (or would) in the LAN bridges' namespaces, each after its namespace's name.
  returned: with O(state=present)
  type: list
  elements: str
  sample: ["lan0.lan.exp.proj: namespace", "lan0.lan.exp.proj: bridge lan"]
"""
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    compact_invocation,
    exit_result,
    kill_many,
    netns_path,
    proc_alive,
    read_json,
    read_pid,
    remove_path,
    stop_strays,
    stray_processes,
)
from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import datapath_cpus, nodes_cpus
from ansible_collections.containerize.deploy.plugins.module_utils.lan_bridge import RECORD as LAN_RECORD
from ansible_collections.containerize.deploy.plugins.module_utils.lan_bridge import (
    LanBridges,
    lan_namespaces,
    recorded_lans,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import valid_netns
from ansible_collections.containerize.deploy.plugins.module_utils.netns import (
    ETC_NETNS,
    add_namespaces,
    delete_namespaces,
    processes_in,
    scan_namespaces,
)
from ansible_collections.containerize.deploy.plugins.module_utils.node_info import keep_info_files
from ansible_collections.containerize.deploy.plugins.module_utils.node_record import OLD_SUFFIXES, NodeRecords
from ansible_collections.containerize.deploy.plugins.module_utils.plugs import (
    OLD_RECORD_SUFFIX,
    Switches,
    is_plug,
    plugged_interfaces,
)
from ansible_collections.containerize.deploy.plugins.module_utils.process_node import ProcessNode, supervisor_alive
from ansible_collections.containerize.deploy.plugins.module_utils.process_plan import validate
from ansible_collections.containerize.deploy.plugins.module_utils.shared_files import SharedFiles
from ansible_collections.containerize.deploy.plugins.module_utils.spec import (
    NodesContext,
    nodes_module,
    note_changes,
)
from ansible_collections.containerize.deploy.plugins.module_utils.start_log import (
    SCRIPT_NAME,
    wait_for_start_lines,
    wants_start,
)
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import recorded_element, runs_as_plug

# the supervisor earlier versions of this module wrote into the run directory: its processes are still
# recognized as this module's, and the file is removed at swap-out
OLD_SUPERVISOR = "start-supervisor.sh"


class Context(NodesContext):
    """The call's parameters and what every node shares (Node reads it from worker threads)."""

    def __init__(self, module):
        super().__init__(module)
        p = module.params
        self.prefix = p["prefix"] or ""
        self.timeout = p["timeout"]
        self.start_commands = p["start_commands"]
        self.ipv6 = p["ipv6"]
        scripts_dir = p["scripts_dir"]
        self.start_script = os.path.join(os.path.abspath(scripts_dir), "hv", SCRIPT_NAME) if scripts_dir else None
        self.old_supervisor = os.path.join(self.run_dir, OLD_SUPERVISOR)
        self.write_hostname = os.path.exists("/etc/hostname")
        self.switch = Switches(self.run_dir)
        self.datapath, self.node_cpus = datapath_cpus(self.run_dir), nodes_cpus(self.run_dir)
        # cz-wire opens the taps of shaped interfaces itself (plugs.plan_plug); wirefilter cannot
        self.element = recorded_element(os.path.join(scripts_dir, "wire") if scripts_dir else None,
                                        p["wire_program"])
        self.wires = {str(wf.get("id")): wf for wf in p["wirefilters"] if runs_as_plug(wf, self.element)}
        try:
            self.run_entries = sorted(os.listdir(self.run_dir))
        except OSError:
            self.run_entries = []
        self.plugged = plugged_interfaces(self.run_entries)
        self.shared = SharedFiles(self.run_dir, self.check)
        self.records = NodeRecords(self.run_dir, self.run_entries)


# ----------------------------------------------------------------------------------------------
# state=absent (and nodes no longer planned)


def remove_nodes(ctx, nodes, namespaces):
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
        if parts[-2] == "plug":
            changed = changed or proc_alive(pid, pidfile)
            targets.append((pid, pidfile, False))
            continue
        alive = supervisor_alive(ctx.run_dir, ctx.nodes_dir, parts[0], pid)
        changed = changed or alive
        targets.append((pid, None if alive else pidfile, True))
        record = read_json(ctx.rpath(f"{parts[0]}.start.json")) or {}
        if record.get("pid") and record["pid"] != pid:
            targets.append((record["pid"], None, True))
    if not ctx.check:
        kill_many(targets, ctx.timeout)
        for pidfile in pidfiles:
            remove_path(pidfile)
    # anything still running inside the namespaces
    leftovers = processes_in(all_ns)
    if leftovers:
        changed = True
        if not ctx.check:
            kill_many([(pid, None, False) for pid in leftovers], ctx.timeout)
    # namespaces, their /etc files, node directories and records
    namespaces = [ns for ns in all_ns if os.path.lexists(netns_path(ns))]
    paths = [os.path.join(ETC_NETNS, ns) for ns in all_ns]
    paths += [os.path.join(ctx.nodes_dir, name) for name in sorted(nodes)]
    paths += [
        ctx.rpath(entry)
        for entry in entries
        if entry.split(".")[0] in nodes
        and entry.endswith((OLD_RECORD_SUFFIX, ".start.json", *OLD_SUFFIXES))
    ]
    paths = [path for path in paths if os.path.lexists(path)]
    recorded = [name for name in nodes if name in ctx.records.nodes]
    if not ctx.check:
        delete_namespaces(namespaces)
        for path in paths:
            remove_path(path)
        ctx.records.forget(nodes)
        ctx.records.save()
    return changed or bool(namespaces or paths or recorded)


def recorded_nodes(ctx):
    """{node: namespace} from the run directory's records (node_record.py)."""
    return {node: ns for node, ns in ctx.records.namespaces().items() if valid_netns(ns)}


def run_absent(ctx, plans, result):
    if "process" not in ctx.module.params["kinds"]:
        # another kind's role removes its own nodes only; the process role sweeps the rest
        nodes = {g["name"]: g["namespace"] for g in plans}
        before = sorted(ns for ns in nodes.values() if os.path.lexists(netns_path(ns)))
        result["changed"] = remove_nodes(ctx, nodes, ())
        if result["changed"]:
            result["stopped"] = sorted(nodes)
        result["diff"] = {"before": {"namespaces": before}, "after": {"namespaces": []}}
        return
    nodes = recorded_nodes(ctx)
    scanned = scan_namespaces(ctx.prefix, ctx.exp_name)
    for node, ns in scanned.items():
        nodes.setdefault(node, ns)
    for g in plans:
        nodes[g["name"]] = g["namespace"]
    lans = set(lan_namespaces(ctx.prefix, ctx.exp_name)) | set(recorded_lans(ctx.rpath(LAN_RECORD)))
    extra = set(scanned.values()) | lans
    before = {
        "namespaces": sorted(ns for ns in set(nodes.values()) | extra if os.path.lexists(netns_path(ns))),
        "node_dirs": sorted(n for n in nodes if os.path.isdir(os.path.join(ctx.nodes_dir, n))),
    }
    leftovers = [path for path in (ctx.nodes_dir, ctx.old_supervisor) if os.path.lexists(path)]
    changed = remove_nodes(ctx, nodes, extra) or bool(leftovers)
    changed = ctx.shared.remove() or changed
    if not ctx.check:
        shutil.rmtree(ctx.nodes_dir, ignore_errors=True)
        remove_path(ctx.old_supervisor)
    if changed:
        result["stopped"] = sorted(nodes)
    result["changed"] = changed
    result["diff"] = {"before": before, "after": {"namespaces": [], "node_dirs": []}}


# ----------------------------------------------------------------------------------------------
# state=present


def stop_stray_processes(ctx, nodes):
    """Stop the plugs and supervisors of NODES whose pid file is lost (run directory removed by hand): they
    still hold taps and run start commands. Returns their pids."""

    def ours(argv):
        return is_plug(argv) or ctx.old_supervisor in argv

    strays = stop_strays(ctx.run_dir, ours, ctx.timeout, ctx.check)
    if not ctx.start_script:
        return strays
    # supervisors name no path of the run directory but their node's log directory
    logs = {os.path.join(ctx.nodes_dir, node, "log") for node in nodes}
    script = ctx.start_script

    def supervisor(argv):
        return script in argv and argv.index(script) + 1 < len(argv) and argv[argv.index(script) + 1] in logs

    keep = {
        read_pid(ctx.rpath(f"{node}.start.pid"))
        for node in nodes
        if supervisor_alive(ctx.run_dir, ctx.nodes_dir, node, read_pid(ctx.rpath(f"{node}.start.pid")))
    }
    found = stray_processes(ctx.nodes_dir, supervisor, keep)
    if found and not ctx.check:
        kill_many([(pid, None, True) for pid in found], ctx.timeout)
    return strays + found


def create_namespaces(ctx, nodes):
    """Make every missing namespace with one `ip -batch`; those made.

    Each node's record is written first, so a swap-out after a failure here still finds it.
    A namespace path that exists but is broken is left to the node.
    """
    missing = [g for g in nodes if not os.path.lexists(netns_path(g["namespace"]))]
    if ctx.check or not missing:
        return set()
    for node in missing:
        ctx.records.set(node["name"], node["namespace"], {})
    ctx.records.save()
    return add_namespaces([g["namespace"] for g in missing])


def run_present(ctx, nodes, result, planned):
    module = ctx.module
    if not ctx.check:
        os.makedirs(ctx.run_dir, mode=0o755, exist_ok=True)
        os.makedirs(ctx.nodes_dir, mode=0o755, exist_ok=True)
    if ctx.start_commands and any(map(wants_start, nodes)) and not os.path.isdir("/var/containers"):
        result["changed"] = True
        if not ctx.check:
            os.makedirs("/var/containers", mode=0o755, exist_ok=True)

    recorded = recorded_nodes(ctx)
    strays = stop_stray_processes(ctx, {g["name"] for g in nodes} | set(recorded))
    if strays:
        result["changed"] = True
        result["stopped"].extend(f"pid {pid}" for pid in strays)

    # nodes recorded earlier but no longer planned
    stale = {n: ns for n, ns in recorded.items() if n not in planned}
    if stale and remove_nodes(ctx, stale, ()):
        result["changed"] = True
        result["stopped"].extend(sorted(stale))

    created = create_namespaces(ctx, nodes)
    alike = {"hosts": ctx.hosts, "pid": ctx.project + "\n", "eid": ctx.experiment + "\n"} if nodes else {}
    result["node_files"] = [name for name, text in alike.items() if ctx.shared.prepare(name, text)]
    result["changed"] = result["changed"] or bool(result["node_files"])
    lans = {i["bridge"]["namespace"] for g in nodes for i in g.get("interfaces") or [] if i.get("bridge")}
    ctx.lans = LanBridges(lans, ctx.check)
    try:
        # the LANs' bridges before their members' ports; stale ones only where this call has every process node
        try:
            ctx.lans.ensure(ctx.rpath(LAN_RECORD) if "process" in module.params["kinds"] else None)
        except (OSError, RuntimeError) as exc:
            module.fail_json(msg=f"LAN bridges: {exc}", **result, invocation=compact_invocation(module))
        done, errors = ctx.run_each([(g["name"], ProcessNode(ctx, g, g["namespace"] in created).ensure) for g in nodes])
    finally:
        ctx.lans.close()
        if not ctx.check:
            ctx.records.save()  # what the nodes recorded (their namespaces, their tbf parameters)
    for node in note_changes(done, result):
        if node.started:
            result["started"].append(node.name)
        result["restarted"].extend(node.restarted)
        result["stopped"].extend(node.stopped)
    note_lans(ctx.lans, result)
    if errors:
        module.fail_json(msg="some process nodes failed: " + "; ".join(sorted(errors)), **result,
                         invocation=compact_invocation(module))
    late = [] if ctx.check else wait_for_start_lines(
        {node.name: node.log_dir for node in done if node.started}, module.params["start_timeout"])
    if late:
        module.fail_json(msg=f"{len(late)} start command(s) not begun after {module.params['start_timeout']:g} s "
                             f"(no start line in log/start_command.log): {', '.join(late)}", **result,
                         invocation=compact_invocation(module))


def note_lans(lans, result):
    """LANS' changes in RESULT, and the LAN namespaces in the diff ("lan bridges": no node name has a space)."""
    result["lans"] = lans.changes
    result["changed"] = result["changed"] or bool(lans.changes)
    result["diff"]["before"]["lan bridges"] = lans.existed
    result["diff"]["after"]["lan bridges"] = lans.planned


def main():
    module = nodes_module(AnsibleModule, {
        "prefix": {"type": "str", "default": ""},
        "kinds": {"type": "list", "elements": "str", "default": ["process"]},
        "start_commands": {"type": "bool", "default": True},
        "timeout": {"type": "float", "default": 5.0},
        "start_timeout": {"type": "float", "default": 60.0},
        "info_files": {"type": "bool", "default": False},
        "pnode": {"type": "str", "default": ""},
        "ipv6": {"type": "bool"},
        "wirefilters": {"type": "list", "elements": "dict", "default": []},
        "wire_program": {"type": "str"},
    })
    ctx = Context(module)
    kinds = module.params["kinds"]
    nodes = [g for g in module.params["nodes"] if (g.get("kind") or "process") in kinds]
    planned = {str(g.get("name")) for g in module.params["nodes"]}
    result = {"changed": False, "nodes": {}, "started": [], "restarted": [], "stopped": []}
    errors = validate(ctx.run_dir, nodes)
    if errors:
        module.fail_json(msg="invalid process nodes: " + "; ".join(errors), errors=errors)
    if module.params["state"] == "absent":
        run_absent(ctx, nodes, result)
    else:
        for prog in ("ip", "vde_plug2tap", "unshare"):
            if nodes and not module.get_bin_path(prog):
                module.fail_json(msg=f"{prog} not found (packages iproute2, vde2, util-linux)")
        if module.params["start_commands"] and any(map(wants_start, nodes)):
            if not ctx.start_script:
                module.fail_json(msg="start commands need scripts_dir (the hv role's start-command.sh)")
            if not ctx.check and not os.path.isfile(ctx.start_script):
                module.fail_json(msg=f"{ctx.start_script} is missing (the hv role puts it in place)")
        run_present(ctx, nodes, result, planned)
        if module.params["info_files"]:
            keep_info_files(ctx, nodes, result)
    exit_result(module, result)


if __name__ == "__main__":
    main()
