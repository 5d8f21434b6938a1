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
    C(tc) of process guests' interfaces in C(containerize_guests)) without restarting a
    wirefilter, a switch or a node, in one call. This is how C(containerize shape) changes a link of
    a running experiment.
  - A running wirefilter is asked for its values over its management socket (C(run_dir/ID.wf.mgmt),
    C(showinfo)) and given the planned ones (C(delay), C(bandwidth), C(loss) per direction, C(LR)
    from the node, C(RL) to the node) when they differ.
  - The state file of the wirefilter (C(ID.wf.json), kept by the vde_network module) then records
    the argv the new plan would start it with, so that a later swap-in sees nothing to do instead of
    restarting the wirefilter.
  - The C(tbf) of an end-node shaped process interface (bandwidth only; this kernel has no
    C(netem)) is replaced in the node's namespace, and the guest's C(NODE.tc.json) record (kept by
    the process_nodes module) updated the same way.
  - Wirefilters that are not running are left to the next swap-in, which starts them with the plan.
    Guests of other kinds are not touched (their end-node shaping is part of their configuration).
version_added: "0.1.0"
author:
  - containerize authors
options:
  run_dir:
    description: Runtime directory of the experiment on this pnode (C(root/run/EXP_TAG)).
    type: path
    required: true
  wirefilters:
    description: The planned wirefilters of this pnode (C(containerize_wirefilters)).
    type: list
    elements: dict
    default: []
  guests:
    description: The guests of this pnode (C(containerize_guests)); only process guests' C(tc) is used.
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
  - Supports check mode (nothing is sent; the result says what would change) and diff mode.
requirements:
  - vde2 (wirefilter with a management socket)
  - iproute2 (tc)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Apply the planned shaping of this pnode to the running links
  link_shaping:
    run_dir: /var/containers/run/1a2b3c4d
    wirefilters: "{{ containerize_wirefilters }}"
    guests: "{{ containerize_guests }}"
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
  description: State files updated to the new plan (C(ID.wf.json), C(NODE.tc.json)).
  returned: always
  type: list
  elements: str
"""

import json
import os
import re
import socket
import subprocess

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    compact_invocation,
    proc_alive,
    read_json,
    read_pid,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import (
    fmt_num,
    shaping_args,
    tbf_burst,
    tbf_tc_args,
    wirefilter_delay,
)

WF_PROMPT = b"VDEwf$ "
WF_NUMBER = r"(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)"
WF_LINE = re.compile(rf"^(Loss|Delay|Bandw)\s+L->R\s+{WF_NUMBER}\+\S*\s+R->L\s+{WF_NUMBER}\+", re.M)
DIRECTIONS = (("LR", "left_to_right"), ("RL", "right_to_left"))


def wanted(direction, spec):
    """The wirefilter's own units: delay whole ms, bandwidth bytes/s (0 unlimited), loss percent."""
    spec = spec or {}
    bandwidth = spec.get("bandwidth")
    return {
        "delay": float(wirefilter_delay(direction, spec.get("delay_ms"))),
        "bandwidth": max(1, int(bandwidth) // 8) if bandwidth else 0,
        "loss": float(spec.get("loss") or 0) * 100.0,
    }


def close(a, b):
    return abs(a - b) <= 1e-6 + 1e-5 * max(abs(a), abs(b))


class WirefilterSession:
    """A conversation with a wirefilter's management socket."""

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.reply()  # banner

    def reply(self):
        data = b""
        while not data.endswith(WF_PROMPT):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")

    def command(self, text):
        self.sock.sendall(text.encode() + b"\n")
        return self.reply()

    def values(self):
        """{LR: {delay, bandwidth, loss}, RL: {...}} in the wirefilter's units."""
        found = {"LR": {}, "RL": {}}
        for key, lr, rl in WF_LINE.findall(self.command("showinfo")):
            name = {"Delay": "delay", "Bandw": "bandwidth", "Loss": "loss"}[key]
            convert = (lambda text: int(round(float(text)))) if name == "bandwidth" else float
            found["LR"][name] = convert(lr)
            found["RL"][name] = convert(rl)
        return found

    def close(self):
        self.sock.close()


def shape_wirefilter(ctx, wf, result, before, after):
    wid = str(wf["id"])
    pidfile = os.path.join(ctx["run_dir"], f"{wid}.wf.pid")
    if not proc_alive(read_pid(pidfile), pidfile):
        result["not_running"].append(wid)
        return
    session = WirefilterSession(os.path.join(ctx["run_dir"], f"{wid}.wf.mgmt"), ctx["timeout"])
    try:
        live = session.values()
        commands = []
        for short, key in DIRECTIONS:
            want = wanted(short, wf.get(key))
            for name in ("delay", "bandwidth", "loss"):
                have = live[short].get(name)
                if have is None or not close(have, want[name]):
                    commands.append(f"{name} {short} {fmt_num(want[name])}")
        if commands:
            result["shaped"].append(wid)
            before[wid] = live
            after[wid] = {short: wanted(short, wf.get(key)) for short, key in DIRECTIONS}
            if not ctx["check"]:
                for command in commands:
                    reply = session.command(command)
                    if not reply.lstrip().startswith("1000"):
                        raise RuntimeError(f"wirefilter {wid}: {command!r} answered {reply.strip()!r}")
    finally:
        session.close()
    record_path = os.path.join(ctx["run_dir"], f"{wid}.wf.json")
    record = read_json(record_path)
    argv = (record or {}).get("argv")
    if isinstance(argv, list) and "-v" in argv:
        head = argv[: argv.index("-v") + 2]
        new = head + shaping_args("LR", wf.get("left_to_right")) + shaping_args("RL", wf.get("right_to_left"))
        if new != argv:
            result["records"].append(f"{wid}.wf.json")
            if not ctx["check"]:
                write_json(record_path, {**record, "argv": new})


def run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def shape_tc(ctx, guest, result, before, after):
    name, ns = str(guest["name"]), str(guest.get("namespace") or "")
    if not ns or not os.path.exists(os.path.join("/run/netns", ns)):
        return
    record_path = os.path.join(ctx["run_dir"], f"{name}.tc.json")
    recorded = read_json(record_path) or {}
    record = {}
    for iface in guest.get("interfaces") or []:
        ifname = str(iface.get("ifname"))
        key = f"{name}.{ifname}"
        if ctx["only"] and key not in ctx["only"]:
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
            want = {"rate": rate, "burst": tbf_burst(rate)}
            record[ifname] = want
            if tbf is None or not close(live_rate or 0, rate):
                result["shaped"].append(key)
                before[key], after[key] = {"tbf": live_rate}, {"tbf": rate}
                if not ctx["check"]:
                    rc, _out, err = run(["tc", "-n", ns, "qdisc", "replace", "dev", ifname, "root", *tbf_tc_args(rate)])
                    if rc != 0:
                        raise RuntimeError(f"{key}: tc qdisc replace: {err.strip()}")
        elif tbf is not None:
            result["shaped"].append(key)
            before[key], after[key] = {"tbf": live_rate}, {"tbf": None}
            if not ctx["check"]:
                rc, _out, err = run(["tc", "-n", ns, "qdisc", "del", "dev", ifname, "root"])
                if rc != 0:
                    raise RuntimeError(f"{key}: tc qdisc del: {err.strip()}")
    if record != recorded:
        result["records"].append(f"{name}.tc.json")
        if not ctx["check"]:
            if record:
                write_json(record_path, record)
            elif os.path.exists(record_path):
                os.unlink(record_path)


def apply(params, check=False):
    """Everything the module does, without Ansible; returns (result, diff). Raises RuntimeError."""
    ctx = {"run_dir": os.path.abspath(params["run_dir"]), "timeout": float(params.get("timeout") or 5.0),
           "only": set(params.get("only") or []), "check": check}
    result = {"shaped": [], "not_running": [], "records": []}
    before, after = {}, {}
    errors = []
    for wf in params.get("wirefilters") or []:
        if ctx["only"] and str(wf.get("id")) not in ctx["only"]:
            continue
        try:
            shape_wirefilter(ctx, wf, result, before, after)
        except (OSError, RuntimeError) as exc:
            errors.append(f"wirefilter {wf.get('id')}: {exc}")
    for guest in params.get("guests") or []:
        if str(guest.get("kind") or "process") != "process":
            continue
        planned = any((i.get("tc") or {}).get("bandwidth") for i in guest.get("interfaces") or [])
        recorded = os.path.exists(os.path.join(ctx["run_dir"], f"{guest.get('name')}.tc.json"))
        if planned or recorded:
            try:
                shape_tc(ctx, guest, result, before, after)
            except (OSError, RuntimeError) as exc:
                errors.append(str(exc))
    result["changed"] = bool(result["shaped"] or result["records"])
    if errors:
        raise RuntimeError("; ".join(errors))
    return result, {"before": before, "after": after}


def main():
    module = AnsibleModule(
        argument_spec={
            "run_dir": {"type": "path", "required": True},
            "wirefilters": {"type": "list", "elements": "dict", "default": []},
            "guests": {"type": "list", "elements": "dict", "default": []},
            "only": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "float", "default": 5.0},
        },
        supports_check_mode=True,
    )
    try:
        result, diff = apply(module.params, check=module.check_mode)
    except RuntimeError as exc:
        module.fail_json(msg=f"link shaping failed: {exc}")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
