#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: apply the planned link shaping of one pnode to its running wirefilters and taps, live."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: link_shaping
short_description: Apply planned bandwidth, delay and loss to running links without restarting anything
description:
  - Makes the shaping in effect on one pnode match the plan (C(containerize_wirefilters) and the
    C(tc) of process nodes' interfaces in C(containerize_nodes)) without restarting a
    wirefilter, a switch or a node, in one call. This is how C(containerize shape) changes a link of
    a running experiment.
  - A running wirefilter is asked for its values over its management socket (C(run_dir/ID.wf.mgmt),
    C(showinfo)) and given the planned ones (C(delay), C(bandwidth), C(loss) per direction, C(LR)
    from the node, C(RL) to the node) when they differ.
  - The state file of the wirefilter (C(ID.wf.json), kept by the vde_network module) then records
    the argv the new plan would start it with, so that a later swap-in sees nothing to do instead of
    restarting the wirefilter.
  - The C(tbf) of an end-node shaped process interface (bandwidth only; this kernel has no
    C(netem)) is replaced in the node's namespace, and the node's record in C(process-nodes.json) (kept by
    the process_nodes module) updated the same way.
  - Wirefilters that are not running are left to the next swap-in, which starts them with the plan.
    Nodes of other kinds are not touched (their end-node shaping is part of their configuration).
version_added: "0.1.0"
author:
  - containerize authors
options:
  wirefilters:
    description: The planned wirefilters of this pnode (C(containerize_wirefilters)).
    type: list
    elements: dict
    default: []
  nodes:
    description: The nodes of this pnode (C(containerize_nodes)); only process nodes' C(tc) is used.
    type: list
    elements: dict
    default: []
  only:
    description:
      - Restrict the call to these wirefilter ids and C(NODE.IFNAME) interfaces; empty means all.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for a management socket to answer.
    type: float
    default: 5.0
notes:
  - In check mode the wirefilters are only asked for their values (nothing is sent to change them).
  - The diff shows each changed wirefilter's values in its own units (C(delay) ms, C(bandwidth)
    bytes/s, C(loss) percent) and each changed interface's C(tbf) rate (bit/s).
requirements:
  - vde2 (wirefilter with a management socket)
  - iproute2 (tc)
extends_documentation_fragment: [containerize.deploy.experiment.run_dir, containerize.deploy.experiment.attributes]
"""

EXAMPLES = r"""
- name: Apply the planned shaping of this pnode to the running links
  containerize.deploy.link_shaping:
    run_dir: "{{ containerize_run_dir }}"
    wirefilters: "{{ containerize_wirefilters }}"
    nodes: "{{ containerize_nodes }}"
"""

RETURN = r"""
shaped:
  description: Wirefilter ids and C(NODE.IFNAME) interfaces whose shaping was changed (or would be).
  returned: always
  type: list
  elements: str
not_running:
  description: Planned wirefilters that are not running (the next swap-in starts them with the plan).
  returned: always
  type: list
  elements: str
records:
  description: State files updated to the new plan (C(ID.wf.json), C(process-nodes.json NODE)).
  returned: always
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    compact_invocation,
    proc_alive,
    read_json,
    read_pid,
    run,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import valid_name, valid_netns
from ansible_collections.containerize.deploy.plugins.module_utils.node_record import RECORD, NodeRecords
from ansible_collections.containerize.deploy.plugins.module_utils.spec import plan_module, run_dir_spec
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import (
    element_delay,
    exact_element,
    fmt_num,
    shaping_args,
    tbf_burst,
    tbf_tc_args,
)
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter_mgmt import WirefilterSession

DIRECTIONS = (("LR", "left_to_right"), ("RL", "right_to_left"))


def wanted(direction, spec, exact=False):
    """The wirefilter's own units: delay ms (whole for wirefilter, EXACT for cz-wire), bandwidth bytes/s
    (0 unlimited), loss percent."""
    spec = spec or {}
    bandwidth = spec.get("bandwidth")
    return {
        "delay": float(element_delay(direction, spec.get("delay_ms"), exact)),
        "bandwidth": max(1, int(bandwidth) // 8) if bandwidth else 0,
        "loss": float(spec.get("loss") or 0) * 100.0,
    }


def close(a, b):
    return abs(a - b) <= 1e-6 + 1e-5 * max(abs(a), abs(b))


class Plan:
    """What makes the running links match the plan: per wirefilter or node, the actions in order,
    with the result's lists and the diff. Planning only reads (pid files, management sockets, tc)."""

    def __init__(self, params):
        self.run_dir = os.path.abspath(params["run_dir"])
        self.timeout = float(params.get("timeout") or 5.0)
        self.only = set(params.get("only") or [])
        self.result = {"shaped": [], "not_running": [], "records": []}
        self.before, self.after = {}, {}
        self.groups = []  # (label, [(function, args)]): a failed action stops the rest of its group
        self.records = NodeRecords(self.run_dir, os.listdir(self.run_dir) if os.path.isdir(self.run_dir) else ())
        self.errors = []

    def rpath(self, name):
        return os.path.join(self.run_dir, name)

    def wirefilter(self, wf):
        """Ask a running wirefilter for its values; plan the commands that give it the planned ones."""
        wid = str(wf["id"])
        pidfile = self.rpath(f"{wid}.wf.pid")
        if not proc_alive(read_pid(pidfile), pidfile):
            self.result["not_running"].append(wid)
            return
        record_path = self.rpath(f"{wid}.wf.json")
        record = read_json(record_path)
        argv = (record or {}).get("argv")
        exact = isinstance(argv, list) and bool(argv) and exact_element(argv[0])  # cz-wire runs in its place
        with WirefilterSession(self.rpath(f"{wid}.wf.mgmt"), self.timeout) as session:
            live = session.values()
        actions, commands = [], []
        for short, key in DIRECTIONS:
            want = wanted(short, wf.get(key), exact)
            for name in ("delay", "bandwidth", "loss"):
                have = live[short].get(name)
                if have is None or not close(have, want[name]):
                    commands.append(f"{name} {short} {fmt_num(want[name])}")
        if commands:
            self.result["shaped"].append(wid)
            self.before[wid] = live
            self.after[wid] = {short: wanted(short, wf.get(key), exact) for short, key in DIRECTIONS}
            actions.append((self.send, (wid, commands)))
        if isinstance(argv, list) and "-v" in argv:
            head = argv[: argv.index("-v") + 2]
            new = (head + shaping_args("LR", wf.get("left_to_right"), exact)
                   + shaping_args("RL", wf.get("right_to_left"), exact))
            if new != argv:
                self.result["records"].append(f"{wid}.wf.json")
                actions.append((write_json, (record_path, {**record, "argv": new})))
        self.groups.append((f"wirefilter {wid}", actions))

    def send(self, wid, commands):
        with WirefilterSession(self.rpath(f"{wid}.wf.mgmt"), self.timeout) as session:
            for command in commands:
                reply = session.command(command)
                if not reply.lstrip().startswith("1000"):
                    raise RuntimeError(f"{command!r} answered {reply.strip()!r}")

    def plan_node(self, node):
        """Plan the tbf of each end-node shaped interface of a process node, and its record (node_record.py)."""
        name, ns = str(node["name"]), str(node.get("namespace") or "")
        if not ns or not os.path.exists(os.path.join("/run/netns", ns)):
            return
        recorded = self.records.tc(name)
        record, actions = {}, []
        for iface in node.get("interfaces") or []:
            ifname = str(iface.get("ifname"))
            key = f"{name}.{ifname}"
            if self.only and key not in self.only:
                if ifname in recorded:
                    record[ifname] = recorded[ifname]
                continue
            bandwidth = (iface.get("tc") or {}).get("bandwidth")
            rc, out, _err = run(["tc", "-n", ns, "-j", "qdisc", "show", "dev", ifname])
            try:
                qdiscs = json.loads(out) if rc == 0 and out.strip() else []
            except ValueError:
                qdiscs = []
            tbf = next((q for q in qdiscs if q.get("kind") == "tbf"), None)
            live_rate = int(tbf.get("options", {}).get("rate", 0)) * 8 if tbf else None
            if bandwidth:
                rate = int(bandwidth)
                record[ifname] = {"rate": rate, "burst": tbf_burst(rate)}
                if tbf is None or not close(live_rate or 0, rate):
                    self.result["shaped"].append(key)
                    self.before[key], self.after[key] = {"tbf": live_rate}, {"tbf": rate}
                    actions.append((tc, (key, "replace", ["-n", ns, "qdisc", "replace", "dev", ifname, "root",
                                                          *tbf_tc_args(rate)])))
            elif tbf is not None:
                self.result["shaped"].append(key)
                self.before[key], self.after[key] = {"tbf": live_rate}, {"tbf": None}
                actions.append((tc, (key, "del", ["-n", ns, "qdisc", "del", "dev", ifname, "root"])))
        if record != recorded:
            self.result["records"].append(f"{RECORD} {name}")
            actions.append((self.records.set, (name, None, record)))
        self.groups.append(("", actions))  # its errors name NODE.IFNAME

    def attempt(self, label, function, *args):
        try:
            function(*args)
        except (OSError, RuntimeError) as exc:
            self.errors.append(f"{label}: {exc}" if label else str(exc))

    def make(self, params):
        for wf in params.get("wirefilters") or []:
            if self.only and str(wf.get("id")) not in self.only:
                continue
            if not valid_name(str(wf.get("id"))):
                self.errors.append(f"wirefilter {wf.get('id')!r}: not a valid id")
                continue
            self.attempt(f"wirefilter {wf.get('id')}", self.wirefilter, wf)
        for node in params.get("nodes") or []:
            if str(node.get("kind") or "process") != "process":
                continue
            ns = node.get("namespace")
            if not valid_name(str(node.get("name"))) or (ns and not valid_netns(ns)):
                self.errors.append(f"node {node.get('name')!r}: not a valid name or namespace")
                continue
            planned = any((i.get("tc") or {}).get("bandwidth") for i in node.get("interfaces") or [])
            if planned or self.records.tc(str(node.get("name"))):
                self.attempt("", self.plan_node, node)
        return self

    def apply(self):
        for label, actions in self.groups:
            for function, args in actions:
                before = len(self.errors)
                self.attempt(label, function, *args)
                if len(self.errors) > before:
                    break
        self.attempt("records", self.records.save)


def tc(key, what, args):
    rc, _out, err = run(["tc", *args])
    if rc != 0:
        raise RuntimeError(f"{key}: tc qdisc {what}: {err.strip()}")


def shape(params, check=False):
    """Everything the module does, without Ansible; returns (result, diff). Raises RuntimeError."""
    plan = Plan(params).make(params)
    if not check:
        plan.apply()
    result = plan.result
    result["changed"] = bool(result["shaped"] or result["records"])
    if plan.errors:
        raise RuntimeError("; ".join(plan.errors))
    return result, {"before": plan.before, "after": plan.after}


def main():
    module = plan_module(AnsibleModule, run_dir_spec(), {
        "wirefilters": {"type": "list", "elements": "dict", "default": []},
        "nodes": {"type": "list", "elements": "dict", "default": []},
        "only": {"type": "list", "elements": "str", "default": []},
        "timeout": {"type": "float", "default": 5.0},
    })
    try:
        result, diff = shape(module.params, check=module.check_mode)
    except RuntimeError as exc:
        module.fail_json(msg=f"link shaping failed: {exc}")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
