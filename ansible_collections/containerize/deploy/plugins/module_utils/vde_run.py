# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a pnode's planned VDE switches and wirefilters, and carry its uplinks: the work of one call.

vde_network does only this; hv_experiment does it too, after the pnode base, when asked (network=true),
because over SSH every module call costs a pnode ~0.2 s of CPU before it does any work. Both read the
options of NETWORK_OPTIONS (doc fragments containerize.deploy.experiment.network and .uplinks) from
module.params.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
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
from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import datapath_cpus
from ansible_collections.containerize.deploy.plugins.module_utils.names import NAME_RE, SUN_PATH_MAX
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

# The network's options (besides run_dir and state), as vde_network and hv_experiment take them.
NETWORK_OPTIONS = {
    "switches": {"type": "list", "elements": "dict", "default": []},
    "wirefilters": {"type": "list", "elements": "dict", "default": []},
    "timeout": {"type": "float", "default": 5.0},
    "wire_dir": {"type": "path"},
    "wire_program": {"type": "str"},
    "tag": {"type": "str"},
    **UPLINK_OPTIONS,
}

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
        joined = {}  # switch id: its elements that run as plugs joined to their peer (peer://)
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
            if sw.get("joined"):
                joined[sid] = 0
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
                if wf.get("peer") and right in joined:
                    joined[right] += 1
                continue
            left_port = wf.get("left_port")
            if left_port is None:
                left_port = self.switches[left]["ports"] - 1
            right_port = wf.get("right_port")
            left_sock = f"{self.ctl(left)}[{int(left_port)}]" if left_port else self.ctl(left)
            right_sock = f"{self.ctl(right)}[{int(right_port)}]" if right_port else self.ctl(right)
            argv = element_argv(element, run_dir, wid, left_sock, right_sock, wf)
            self.wirefilters[wid] = {"argv": argv, "left": left, "right": right}
        # a joined link's switch: its two elements send to each other (process_nodes), nothing plugs into it
        for sid in private | {sid for sid, plugs in joined.items() if plugs == 2}:
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
        return f"{ident}.wf.pid", [f"{ident}.wf.mgmt", f"{ident}.wf.pid", f"{ident}.wf.json", f"{ident}.wf.data"]

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
    prioritize(module, pids, restarted_switches | set(started), before, result, datapath_cpus(run_dir))

    if not module.check_mode:
        result["pids"] = pids
    result["diff"] = {"before": before, "after": after}


def prioritize(module, pids, fresh, before, result, cpus):
    """Every planned daemon at real-time priority (daemons.RT_PRIORITY) on CPUS (datapath_cpus.datapath_cpus);
    one running without it (started by an older version, or reset by hand) is a change, one just started
    (FRESH) is changed already."""
    for ident, pid in pids.items():
        if not pid or is_realtime(pid, cpus=cpus) is not False:
            continue
        kind = "switches" if ident in before["switches"] else "wirefilters"
        if ident not in fresh:
            before[kind][ident]["realtime"] = False
        if module.check_mode or make_realtime(pid, cpus=cpus):
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


def run_network(module, state):
    """Make the pnode's VDE daemons and uplinks match module.params (NETWORK_OPTIONS, run_dir) for STATE.

    Returns the result: changed, started, restarted, stopped, prioritized, pids (present, not check
    mode), uplinks (with tag) and diff. Fails MODULE on a bad plan or a daemon that does not start.
    """
    params = module.params
    run_dir = os.path.abspath(params["run_dir"])
    result = {"changed": False, "started": [], "restarted": [], "stopped": [], "prioritized": []}
    runner = Runner(module, run_dir, params["timeout"])
    if state == "absent":
        # the uplinks first: their plugs hang on the switches
        uplinks = carry_uplinks(module, present=False) if params["tag"] else None
        run_absent(module, runner, result)
    else:
        element = recorded_element(params["wire_dir"], params["wire_program"])
        for prog, needed in (("vde_switch", "switches"), (element["program"], "wirefilters")):
            if params[needed] and not module.get_bin_path(prog):
                module.fail_json(msg=f"{prog} not found: install vde2")
        plan = Plan(module, run_dir, params["switches"], params["wirefilters"], element)
        run_present(module, plan, runner, result)
        uplinks = carry_uplinks(module, present=True) if params["tag"] else None
    if uplinks:
        add_uplinks(result, *uplinks)
    if result["stopped"] and state == "present":
        result["changed"] = True
    return result
