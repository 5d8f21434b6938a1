#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: run the VDE switches and wirefilters one pnode needs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vde_network
short_description: Run the VDE switches and wirefilters of one pnode
description:
  - Makes the set of C(vde_switch) and C(wirefilter) daemons of one experiment on one pnode match a
    plan written by the containerize compiler (C(containerize_switches) and C(containerize_wirefilters)
    of C(host_vars/pnode-NNNN.yml)). One call handles every switch and wirefilter of the pnode.
  - A switch C(ID) lives in O(run_dir) as C(ID.ctl) (socket directory), C(ID.mgmt) (management
    socket) and C(ID.pid). A wirefilter C(ID) has C(ID.wf.mgmt), C(ID.wf.pid) and C(ID.wf.json), the
    state file recording its argv and the pids of the two switches it was started against.
  - A switch is (re)started when its process is gone or runs with other arguments. A wirefilter is
    (re)started when its process is gone, its planned argv changed, or one of its switches was
    restarted (a wirefilter does not reconnect by itself and spins when a switch dies).
    Wirefilters start only once both of their switches answer.
  - Daemons of O(run_dir) that are no longer in the plan are stopped.
  - Every planned daemon runs at real-time priority (round robin, 20), so frames never wait for an
    ordinary process to give up a CPU; a running one without it gets it (RV(prioritized)).
  - With O(state=absent) every daemon with a pid file in O(run_dir) (switches, wirefilters, and any
    tap plug or start command supervisor left behind) is killed and O(run_dir) is removed.
  - Processes are checked with C(kill -0), their C(/proc/PID/status) state (zombies count as dead)
    and their command line, which must name the pid file, so a reused pid is never mistaken for a
    daemon.
  - With O(tag), the same call also carries the pnode's substrates that cross pnodes over VXLAN
    (O(uplinks), O(pnet)) as M(containerize.deploy.vde_uplinks) does, after the switches (and with
    O(state=absent) before they stop; RV(uplinks)). The vde role does it so because over SSH every
    module call costs a pnode ~0.2 s of CPU before it does any work.
version_added: "0.1.0"
author:
  - containerize authors
extends_documentation_fragment:
  - containerize.deploy.experiment.run_dir
  - containerize.deploy.experiment.uplinks
  - containerize.deploy.experiment.attributes
options:
  tag:
    description:
      - The experiment tag (C(containerize_exp_tag)), eight hex digits, naming the uplinks' links.
      - Not given, uplinks are left alone (O(uplinks) and O(pnet) are not used).
    type: str
  switches:
    description:
      - Every VDE switch this pnode runs (C(containerize_switches)).
      - Keys other than the ones below are ignored.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Switch id, unique within the experiment and pnode, C([A-Za-z0-9][A-Za-z0-9-]*).
        type: str
        required: true
      ports:
        description: Number of ports (C(vde_switch -n)); usable ports are 1 to I(ports)-1.
        type: int
        required: true
      substrate:
        description: Substrate the switch carries (informational).
        type: str
      role:
        description: C(substrate) or C(private) (informational).
        type: str
  wirefilters:
    description:
      - One wirefilter per shaped interface (C(containerize_wirefilters)); left is the node side,
        right the substrate side. Keys other than the ones below are ignored.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Wirefilter id.
        type: str
        required: true
      left:
        description: Switch id on the node side (usually a private switch).
        type: str
        required: true
      right:
        description: Switch id on the substrate side.
        type: str
        required: true
      right_port:
        description: Port on the right switch; omitted or null lets the switch choose.
        type: int
      left_port:
        description:
          - Port on the left switch. When not given, the highest port of the left switch
            (I(ports)-1) is used so that the wirefilter never shares a port with a node
            (endpoints sharing a VDE port do not hear each other).
        type: int
      left_to_right:
        description:
          - Shaping of traffic leaving the node, C({bandwidth, delay_ms, loss}).
          - I(bandwidth) is bit/s or null (unlimited), I(delay_ms) one-way milliseconds,
            I(loss) a probability from 0 to 1.
          - wirefilter delays by whole milliseconds only (it truncates), so twice I(delay_ms) is rounded
            to whole milliseconds and split, the larger half here and the smaller in I(right_to_left);
            node to node (this hop then the peer's I(right_to_left) hop, each half of the link's delay)
            keeps the planned delay to within half a millisecond.
        type: dict
      right_to_left:
        description: Shaping of traffic arriving at the node, same keys as I(left_to_right).
        type: dict
      node_plug:
        description:
          - The element may be the node's plug (a process or openvz node's interface). When the element is
            C(cz-wire), M(containerize.deploy.process_nodes) runs it on the node's tap in place of a
            plug, the private switch I(left) and this element; here it is planned (not stopped as a
            stray) but not run, and I(left) is not started. Not for I(node_kind=openvz) on an OpenVZ kernel.
        type: bool
        default: false
      node_kind:
        description: Kind of the node the shaped interface belongs to.
        type: str
      node:
        description: Node the shaped interface belongs to (informational).
        type: str
      interface:
        description: Shaped interface name (informational).
        type: str
  state:
    description: C(present) runs exactly the plan, C(absent) removes everything of O(run_dir).
    type: str
    choices: [present, absent]
    default: present
  wire_dir:
    description:
      - Where the M(containerize.deploy.wire_element) module recorded the pnode's element
        (C(SCRIPTS_DIR/wire)); it is run for each wirefilter - the path of C(cz-wire) where it was built
        (same arguments and management socket; it takes I(delay_ms) exactly, where wirefilter takes the
        whole-millisecond split below), else C(wirefilter) (vde2) - with its recorded
        I(cpu_latency_us). Not given and no O(wire_program), C(wirefilter).
    type: path
  wire_program:
    description: The program run for each wirefilter instead of the recorded one (C(wirefilter), or a cz-wire).
    type: str
  timeout:
    description: Seconds to wait for a daemon to come up or go away.
    type: float
    default: 5.0
notes:
  - Needs the C(vde2) package (C(vde_switch), C(wirefilter)).
requirements:
  - vde2
"""

EXAMPLES = r"""
- name: Run the switches and wirefilters of this pnode
  vde_network:
    run_dir: /var/containers/run/1a2b3c4d
    switches:
      - {id: s0, substrate: lan0, ports: 16, role: substrate}
      - {id: p-a-eth0, substrate: lan0, ports: 4, role: private}
    wirefilters:
      - id: w-a-eth0
        left: p-a-eth0
        right: s0
        right_port: 3
        left_to_right: {bandwidth: 100000000, delay_ms: 5.0, loss: 0.0}
        right_to_left: {bandwidth: 100000000, delay_ms: 5.0, loss: 0.0}

- name: Use the compiler's plan for this pnode
  vde_network:
    run_dir: "{{ containerize_run_dir }}"
    switches: "{{ containerize_switches }}"
    wirefilters: "{{ containerize_wirefilters }}"
    tag: "{{ containerize_exp_tag }}"
    pnet: "{{ containerize_pnet }}"
    uplinks: "{{ containerize_uplinks }}"

- name: Stop everything of the experiment on this pnode
  vde_network:
    run_dir: /var/containers/run/1a2b3c4d
    state: absent
"""

RETURN = r"""
started:
  description: Ids of switches and wirefilters started (they were not running).
  returned: always
  type: list
  elements: str
  sample: [s0, w-a-eth0]
restarted:
  description: Ids of switches and wirefilters killed and started again (changed plan, dead switch).
  returned: always
  type: list
  elements: str
  sample: [w-a-eth0]
stopped:
  description: Ids (or pid file names) of daemons stopped (absent, or no longer in the plan).
  returned: always
  type: list
  elements: str
  sample: [s0]
prioritized:
  description:
    - Ids of running switches and wirefilters given real-time priority (round robin, priority 20, as
      C(chrt -a -r -p 20) sets it), which every daemon this module starts gets. Where the pnode
      refuses it, daemons run without it.
  returned: always
  type: list
  elements: str
  sample: [s0]
pids:
  description: Pid of every planned switch and wirefilter after the call (state=present, not check mode).
  returned: success
  type: dict
  sample: {s0: 1234, w-a-eth0: 1240}
uplinks:
  description: With O(tag), what was done to the uplinks, as M(containerize.deploy.vde_uplinks) returns it.
  returned: when O(tag) is given
  type: dict
  sample: {changes: ["create vxlan x1a2b3c4d0"], started: [s0], restarted: [], stopped: [], device: pnet}
"""

import concurrent.futures
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    exit_result,
    is_realtime,
    kill_many,
    make_realtime,
    proc_alive,
    read_pid,
    remove_path,
    spawn_daemon,
    stop_strays,
    stray_processes,
    wait_for,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import NAME_RE, SUN_PATH_MAX
from ansible_collections.containerize.deploy.plugins.module_utils.spec import plan_module, run_dir_spec
from ansible_collections.containerize.deploy.plugins.module_utils.uplinks import UPLINK_OPTIONS, carry_uplinks
from ansible_collections.containerize.deploy.plugins.module_utils.vde_state import (
    scan_pidfiles,
    switch_state,
    wirefilter_state,
)
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import (
    element_argv,
    recorded_element,
    runs_as_plug,
)

SPAWN_WORKERS = 4  # daemons started at once

# ----------------------------------------------------------------------------------------------
# processes


def vde_daemon(argv):
    """True for the processes this module runs: switches and wirefilters."""
    return os.path.basename(argv[0]) in ("vde_switch", "wirefilter", "cz-wire")


# ----------------------------------------------------------------------------------------------
# plan


class Plan:
    def __init__(self, module, run_dir, switches, wirefilters, element):
        self.module = module
        self.run_dir = run_dir
        self.switches = {}
        self.wirefilters = {}
        self.node_plugs = set()  # elements process_nodes runs as node plugs: planned, not run here
        private = set()
        errors = []
        for sw in switches:
            sid = str(sw.get("id", ""))
            if not NAME_RE.match(sid):
                errors.append(f"switch id {sid!r} is not a valid name")
                continue
            try:
                ports = int(sw.get("ports"))
            except (TypeError, ValueError):
                errors.append(f"switch {sid}: ports must be an integer")
                continue
            if sid in self.switches:
                errors.append(f"switch {sid} planned twice")
            ctl = self.ctl(sid)
            if len(os.path.join(ctl, "ctl")) >= SUN_PATH_MAX:
                errors.append(f"switch {sid}: socket path {ctl}/ctl is longer than {SUN_PATH_MAX - 1} bytes")
            self.switches[sid] = {
                "ports": ports,
                "argv": [
                    "vde_switch",
                    "-d",
                    "-s",
                    ctl,
                    "-M",
                    self.path(f"{sid}.mgmt"),
                    "-p",
                    self.path(f"{sid}.pid"),
                    "-n",
                    str(ports),
                ],
            }
        for wf in wirefilters:
            wid = str(wf.get("id", ""))
            if not NAME_RE.match(wid):
                errors.append(f"wirefilter id {wid!r} is not a valid name")
                continue
            left, right = wf.get("left"), wf.get("right")
            missing = [s for s in (left, right) if s not in self.switches]
            if missing:
                errors.append(f"wirefilter {wid}: switch {', '.join(map(str, missing))} is not planned here")
                continue
            if runs_as_plug(wf, element):
                # cz-wire opens the node's tap itself: process_nodes runs it as the node's plug, in place of
                # the plug, this private switch and the element (docs/datapath.md)
                self.node_plugs.add(wid)
                private.add(left)
                continue
            left_port = wf.get("left_port")
            if left_port is None:
                left_port = self.switches[left]["ports"] - 1
            right_port = wf.get("right_port")
            left_sock = f"{self.ctl(left)}[{int(left_port)}]" if left_port else self.ctl(left)
            right_sock = f"{self.ctl(right)}[{int(right_port)}]" if right_port else self.ctl(right)
            argv = element_argv(element, run_dir, wid, left_sock, right_sock, wf)
            self.wirefilters[wid] = {"argv": argv, "left": left, "right": right}
        for sid in private:
            self.switches.pop(sid, None)
        if errors:
            module.fail_json(msg="invalid VDE plan: " + "; ".join(errors), errors=errors)

    def path(self, name):
        return os.path.join(self.run_dir, name)

    def ctl(self, sid):
        return self.path(f"{sid}.ctl")


# ----------------------------------------------------------------------------------------------
# actions


class Runner:
    """Stops and starts daemons in batches: kill all, then spawn all, then wait for all."""

    def __init__(self, module, run_dir, timeout):
        self.module = module
        self.run_dir = run_dir
        self.timeout = timeout
        self.check = module.check_mode

    def path(self, name):
        return os.path.join(self.run_dir, name)

    @staticmethod
    def files(kind, ident):
        if kind == "switch":
            return f"{ident}.pid", [f"{ident}.ctl", f"{ident}.mgmt", f"{ident}.pid"]
        return f"{ident}.wf.pid", [f"{ident}.wf.mgmt", f"{ident}.wf.pid", f"{ident}.wf.json"]

    def stop(self, items):
        """Stop ITEMS [(kind, id)] (whether running or not) and remove their sockets and pid files."""
        if self.check or not items:
            return
        targets = []
        for kind, ident in items:
            pidfile = self.path(self.files(kind, ident)[0])
            targets.append((read_pid(pidfile), pidfile, False))
        kill_many(targets, self.timeout)
        for kind, ident in items:
            for leftover in self.files(kind, ident)[1]:
                remove_path(self.path(leftover))

    def start(self, kind, items):
        """Start ITEMS {id: argv} of one KIND; returns {id: pid}. Fails the module on error."""
        if self.check or not items:
            return {}
        self.stop([(kind, ident) for ident in items])
        # a few at a time: a daemon's start is mostly waiting (exec, linking, its fork), and a 1,000-node
        # experiment starts two thousand of them
        with concurrent.futures.ThreadPoolExecutor(max_workers=SPAWN_WORKERS) as pool:
            outcomes = list(pool.map(lambda argv: spawn_daemon(argv, self.timeout), items.values()))
        failures = [f"{kind} {ident} (rc={rc}): {out}" for ident, (rc, out) in zip(items, outcomes, strict=True) if rc]

        def up(ident):
            pidfile = self.path(self.files(kind, ident)[0])
            pid = read_pid(pidfile)
            if not (pid and proc_alive(pid, pidfile)):
                return False
            return kind != "switch" or os.path.exists(os.path.join(self.path(f"{ident}.ctl"), "ctl"))

        pending = set(items)

        def all_up():
            pending.difference_update({ident for ident in pending if up(ident)})
            return not pending

        if not failures and not wait_for(all_up, self.timeout):
            failures += [f"{kind} {ident} did not come up: {' '.join(items[ident])}" for ident in sorted(pending)]
        if failures:
            self.module.fail_json(msg="VDE daemons did not start: " + "; ".join(failures))
        return {ident: read_pid(self.path(self.files(kind, ident)[0])) for ident in items}


def run_present(module, plan, runner, result):
    run_dir = plan.run_dir
    before = {"switches": {}, "wirefilters": {}}
    after = {"switches": {}, "wirefilters": {}}
    pids = {}

    if not os.path.isdir(run_dir):
        result["changed"] = True
        if not module.check_mode:
            os.makedirs(run_dir, mode=0o755, exist_ok=True)

    # daemons whose pid file is lost (run directory removed by hand) still hold their sockets: stop them
    for pid in stop_strays(run_dir, vde_daemon, runner.timeout, module.check_mode):
        before["switches"][f"pid {pid}"] = {"running": True}
        result["stopped"].append(f"pid {pid}")
        result["changed"] = True

    # stop what is not (or no longer) planned
    stale = []
    for (kind, ident), name in scan_pidfiles(run_dir).items():
        planned = plan.switches if kind == "switch" else {**plan.wirefilters, **dict.fromkeys(plan.node_plugs)}
        if kind not in ("switch", "wirefilter") or ident in planned:
            continue
        stale.append((kind, ident))
        pid = read_pid(os.path.join(run_dir, name))
        if pid and proc_alive(pid, os.path.join(run_dir, name)):
            before["switches" if kind == "switch" else "wirefilters"][ident] = {"running": True}
            result["stopped"].append(ident)
            result["changed"] = True
    runner.stop(stale)

    # switches
    start = {}
    for sid, want in plan.switches.items():
        have = switch_state(run_dir, sid)
        before["switches"][sid] = {"running": have["running"], "argv": have["argv"]}
        after["switches"][sid] = {"running": True, "argv": want["argv"]}
        if have["running"] and have["argv"] == want["argv"]:
            pids[sid] = have["pid"]
            continue
        result["changed"] = True
        result["restarted" if have["running"] else "started"].append(sid)
        start[sid] = want["argv"]
    pids.update(runner.start("switch", start))
    restarted_switches = set(start)

    # wirefilters, once both of their switches run
    start, records = {}, {}
    for wid, want in plan.wirefilters.items():
        have = wirefilter_state(run_dir, wid)
        switch_pids = {want["left"]: pids.get(want["left"]), want["right"]: pids.get(want["right"])}
        if module.check_mode:
            switch_pids = {k: "(new)" if k in restarted_switches else v for k, v in switch_pids.items()}
        before["wirefilters"][wid] = {
            "running": have["running"],
            "argv": have["argv"],
            "switch_pids": have["switch_pids"],
        }
        after["wirefilters"][wid] = {"running": True, "argv": want["argv"], "switch_pids": switch_pids}
        ok = (
            have["running"]
            and have["argv"] == want["argv"]
            and not ({want["left"], want["right"]} & restarted_switches)
            and have["switch_pids"] == switch_pids
        )
        if ok:
            pids[wid] = have["pid"]
            continue
        result["changed"] = True
        result["restarted" if have["running"] else "started"].append(wid)
        start[wid] = want["argv"]
        records[wid] = switch_pids
    started = runner.start("wirefilter", start)
    for wid, pid in started.items():
        write_json(
            os.path.join(run_dir, f"{wid}.wf.json"),
            {"argv": start[wid], "switch_pids": records[wid], "pid": pid},
        )
    pids.update(started)
    prioritize(module, pids, restarted_switches | set(started), before, result)

    if not module.check_mode:
        result["pids"] = pids
    result["diff"] = {"before": before, "after": after}


def prioritize(module, pids, fresh, before, result):
    """Every planned daemon at real-time priority (daemons.RT_PRIORITY); one running without it (started by
    an older version, or reset by hand) is a change, one just started (FRESH) is changed already."""
    for ident, pid in pids.items():
        if not pid or is_realtime(pid) is not False:
            continue
        kind = "switches" if ident in before["switches"] else "wirefilters"
        if ident not in fresh:
            before[kind][ident]["realtime"] = False
        if module.check_mode or make_realtime(pid):
            if ident not in fresh:
                result["changed"] = True
                result["prioritized"].append(ident)


def run_absent(module, runner, result):
    run_dir = runner.run_dir
    before = {"run_dir": run_dir if os.path.isdir(run_dir) else None, "daemons": []}
    targets = []
    for (kind, ident), name in sorted(scan_pidfiles(run_dir).items()):
        pidfile = os.path.join(run_dir, name)
        pid = read_pid(pidfile)
        if pid and proc_alive(pid, pidfile):
            before["daemons"].append(name)
            result["stopped"].append(ident)
            # start command supervisors lead a process group: kill all of it
            targets.append((pid, pidfile, kind == "start"))
    # daemons whose pid file is gone (run directory removed by hand): found by their arguments
    known = {pid for pid, _needle, _group in targets}
    for pid in stray_processes(run_dir, lambda argv: True, known):
        if pid not in known:
            before["daemons"].append(f"pid {pid}")
            result["stopped"].append(str(pid))
            targets.append((pid, None, False))
    if targets:
        result["changed"] = True
    if not module.check_mode:
        kill_many(targets, runner.timeout)
    if before["run_dir"] is not None:
        result["changed"] = True
        if not module.check_mode:
            shutil.rmtree(run_dir, ignore_errors=True)
    result["diff"] = {"before": before, "after": {"run_dir": None, "daemons": []}}


def add_uplinks(result, uplinks, before, after):
    """Put the uplinks' result and diff into RESULT (the switches' and wirefilters')."""
    result["uplinks"] = uplinks
    result["changed"] = result["changed"] or uplinks["changed"]
    diff = result.setdefault("diff", {"before": {}, "after": {}})
    diff["before"]["uplinks"], diff["after"]["uplinks"] = before, after


def main():
    module = plan_module(AnsibleModule, run_dir_spec(), {
        "switches": {"type": "list", "elements": "dict", "default": []},
        "wirefilters": {"type": "list", "elements": "dict", "default": []},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "timeout": {"type": "float", "default": 5.0},
        "wire_dir": {"type": "path"},
        "wire_program": {"type": "str"},
        "tag": {"type": "str"},
        **UPLINK_OPTIONS,
    })
    run_dir = os.path.abspath(module.params["run_dir"])
    result = {"changed": False, "started": [], "restarted": [], "stopped": [], "prioritized": []}
    runner = Runner(module, run_dir, module.params["timeout"])
    if module.params["state"] == "absent":
        # the uplinks first: their plugs hang on the switches
        uplinks = carry_uplinks(module, present=False) if module.params["tag"] else None
        run_absent(module, runner, result)
    else:
        element = recorded_element(module.params["wire_dir"], module.params["wire_program"])
        for prog, needed in (("vde_switch", "switches"), (element["program"], "wirefilters")):
            if module.params[needed] and not module.get_bin_path(prog):
                module.fail_json(msg=f"{prog} not found: install vde2")
        plan = Plan(module, run_dir, module.params["switches"], module.params["wirefilters"], element)
        run_present(module, plan, runner, result)
        uplinks = carry_uplinks(module, present=True) if module.params["tag"] else None
    if uplinks:
        add_uplinks(result, *uplinks)
    if result["stopped"] and module.params["state"] == "present":
        result["changed"] = True
    exit_result(module, result)


if __name__ == "__main__":
    main()
