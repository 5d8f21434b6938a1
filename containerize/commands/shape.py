"""`containerize shape EXPDIR LINK --delay 20ms`: change a link or LAN of a running experiment.

The new values are written into the experiment directory first (the wirefilters' and
interfaces' planned shaping in ``inventory/host_vars/PNODE.yml``, the DETER files
``wirefilters.yaml`` and ``shaping.yaml``, and a line in ``shape.log``), then applied to the
running wirefilters and taps by the ``link_shaping`` module: in this process on a local target,
through ``playbooks/shape.yml`` on a testbed target. Nothing restarts, and since the plan now
holds the new values, a later swap-in re-run keeps them. Recompiling the topology returns to the
topology's values: put a permanent change in the topology file.

Values are node to node, as in the topology (``duplex-link``/``make-lan``): with switch shaping
each node-to-switch hop gets half the delay and loss 1-sqrt(1-L), exactly as the compiler plans
it. ``--node NODE`` changes only NODE's hop to the LAN (like ``tb-set-node-lan-params``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ContainerizeError
from ..expdir import ExperimentDir, library_module, load_yaml, run_playbook
from ..units import parse_bandwidth, parse_delay, parse_loss
from .base import CommandParser, json_text, json_wanted

HEADER = ("written by containerize; edit the topology and recompile instead\n"
          "# links changed on the running experiment by `containerize shape` (see shape.log)")



@dataclass
class Member:
    pnode: str
    node: dict
    iface: dict
    wirefilter: dict | None

    @property
    def label(self) -> str:
        return f"{self.node['name']}.{self.iface['ifname']}"

    @property
    def method(self) -> str | None:
        if self.wirefilter is not None:
            return "wirefilter"
        return "tc" if self.iface.get("tc") else None


def members_of(expdir: ExperimentDir, link: str) -> list[Member]:
    found = []
    for pnode in expdir.pnodes:
        wirefilters = {(w.get("node"), w.get("interface")): w
                       for w in expdir.pnode_vars(pnode).get("containerize_wirefilters") or []}
        for node in expdir.pnode_nodes(pnode):
            for iface in node.get("interfaces") or []:
                if iface.get("substrate") == link:
                    found.append(Member(pnode, node, iface, wirefilters.get((node["name"], iface.get("ifname")))))
    return found


def _links(expdir: ExperimentDir) -> list[str]:
    names = []
    for pnode in expdir.pnodes:
        for node in expdir.pnode_nodes(pnode):
            for iface in node.get("interfaces") or []:
                if iface.get("substrate") not in names:
                    names.append(iface.get("substrate"))
    return names


def _half_loss(loss: float) -> float:
    return 1.0 - math.sqrt(1.0 - loss)


def plan_change(expdir: ExperimentDir, link: str, node: str | None, changes: dict) -> list[tuple[Member, dict]]:
    """[(member, {direction key: {field: value}})]: what each member's plan becomes. Raises on what cannot be done live.

    CHANGES holds the node-to-node values given: bandwidth (bit/s or None), delay (s), loss (0..1).
    """
    members = members_of(expdir, link)
    if not members:
        known = _links(expdir)
        more = ", ..." if len(known) > 12 else ""
        raise ContainerizeError(f"{expdir.path}: no link or LAN named {link!r} (links: {', '.join(known[:12])}{more})")
    if node is not None:
        chosen = [m for m in members if m.node["name"] == node]
        if not chosen:
            raise ContainerizeError(f"node {node!r} is not on {link} (members: "
                                    f"{', '.join(sorted({m.node['name'] for m in members}))})")
    else:
        chosen = members
    methods = {m.method for m in members}
    by_wirefilter = [m for m in chosen if m.method == "wirefilter"]
    others = [m for m in chosen if m.method != "wirefilter"]
    wants_delay_or_loss = "delay" in changes or "loss" in changes
    plan: list[tuple[Member, dict]] = []

    if by_wirefilter:
        if node is not None:
            scale = "hop"  # NODE's own hop to the LAN
        elif methods == {"wirefilter"}:
            scale = "half"  # two hops node to node
        elif len(members) == 2:
            scale = "full"  # the compiler gives the wirefilter end both hops
        else:
            raise ContainerizeError(f"{link} mixes wirefilter-shaped and tc-shaped nodes; change it in the topology "
                                    "and recompile")
        for member in by_wirefilter:
            values = {}
            if "bandwidth" in changes:
                values["bandwidth"] = None if changes["bandwidth"] is None else int(round(changes["bandwidth"]))
            if "delay" in changes:
                delay_ms = changes["delay"] * 1000.0
                values["delay_ms"] = round(delay_ms / 2.0 if scale == "half" else delay_ms, 6)
            if "loss" in changes:
                values["loss"] = round(_half_loss(changes["loss"]) if scale == "half" else changes["loss"], 9)
            plan.append((member, {"left_to_right": values, "right_to_left": values}))
    # On a two-member link whose other end has a wirefilter, the compiler leaves this end unshaped.
    on_the_node = [m for m in others if not (m.method is None and by_wirefilter and len(members) == 2)]
    if on_the_node:
        for member in on_the_node:
            kind = member.node.get("kind")
            if wants_delay_or_loss:
                raise ContainerizeError(
                    f"{link}: {member.label} has no wirefilter (it is shaped on the node, or not at all), and delay or "
                    "loss on a node's own interface needs netem, which this kernel lacks; give the link a delay or "
                    "loss in the topology and recompile")
            if kind != "process":
                raise ContainerizeError(
                    f"{link}: {member.label} is a {kind} node shaped inside the node; changing it means restarting "
                    "the node: change the topology and re-run swap-in")
            if "bandwidth" in changes:
                bandwidth = None if changes["bandwidth"] is None else int(round(changes["bandwidth"]))
                plan.append((member, {"tc": {"bandwidth": bandwidth}}))
    if not plan:
        raise ContainerizeError(f"{link}: nothing to change")
    return plan


def _merge(spec: dict | None, values: dict) -> dict:
    merged = dict(spec or {"bandwidth": None, "delay_ms": 0.0, "loss": 0.0})
    merged.update(values)
    return merged


def _dump(data, path: Path, vars_file: bool = False) -> None:
    from ..writers.yamlout import dump

    tmp = path.with_name(path.name + ".tmp")
    dump(data, tmp, header=HEADER, vars_file=vars_file)
    os.replace(tmp, path)


def record_change(expdir: ExperimentDir, plan: list[tuple[Member, dict]], line: str) -> list[str]:
    """Write the new plan into the experiment directory; returns the pnodes touched."""
    touched: dict[str, list[tuple[Member, dict]]] = {}
    for member, change in plan:
        touched.setdefault(member.pnode, []).append((member, change))
    new_shaping: dict[tuple[str, str], dict] = {}
    for pnode, items in touched.items():
        data = expdir.pnode_vars(pnode)
        wirefilters = {w.get("id"): w for w in data.get("containerize_wirefilters") or []}
        nodes = {g.get("name"): g for g in data.get("containerize_nodes") or []}
        for member, change in items:
            key = (member.node["name"], member.iface["ifname"])
            if "tc" in change:
                node = nodes[member.node["name"]]
                iface = next(i for i in node["interfaces"] if i.get("ifname") == member.iface["ifname"])
                bandwidth = change["tc"]["bandwidth"]
                iface["tc"] = _merge(iface.get("tc"), {"bandwidth": bandwidth}) if bandwidth else None
                new_shaping[key] = {"method": "tc" if bandwidth else None,
                                    "outbound": iface["tc"] or {"bandwidth": None, "delay_ms": 0.0, "loss": 0.0}}
            else:
                wf = wirefilters[member.wirefilter["id"]]
                for direction in ("left_to_right", "right_to_left"):
                    wf[direction] = _merge(wf.get(direction), change[direction])
                new_shaping[key] = {"method": "wirefilter", "outbound": wf["left_to_right"],
                                    "inbound": wf["right_to_left"]}
        _dump(data, expdir.host_vars_path(pnode), vars_file=True)
        expdir.forget(pnode)
    _update_deter_files(expdir, touched, new_shaping)
    with open(expdir.path / "shape.log", "a", encoding="utf-8") as handle:
        handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n")
    return list(touched)


def _update_deter_files(expdir: ExperimentDir, touched: dict, new_shaping: dict) -> None:
    path = expdir.path / "wirefilters.yaml"
    if path.exists():
        data = load_yaml(path)
        if isinstance(data, dict):
            for pnode in touched:
                fresh = expdir.pnode_vars(pnode).get("containerize_wirefilters")
                if pnode in data and fresh is not None:
                    data[pnode] = fresh
            _dump(data, path)
    path = expdir.path / "shaping.yaml"
    if path.exists():
        data = load_yaml(path)
        if isinstance(data, list):
            for entry in data:
                new = new_shaping.get((entry.get("node"), entry.get("interface")))
                if new is not None:
                    entry.update({k: v for k, v in new.items() if k in entry or k == "method"})
            _dump(data, path)


def apply_live(expdir: ExperimentDir, only: dict[str, list[str]], via_ansible: bool) -> dict:
    """Apply the recorded plan to the running links (ONLY: pnode -> wirefilter ids and NODE.IFNAME); {pnode: result}."""
    pnodes = list(only)
    if via_ansible:
        rc, tail = run_playbook(expdir, "shape.yml", {"shape_only_by_pnode": only})
        if rc != 0:
            last = [line for line in tail.splitlines() if "msg" in line or "fatal" in line][-1:] or ["see Ansible"]
            raise ContainerizeError(f"recorded, but applying it failed (ansible-playbook shape.yml exit {rc}): "
                                    f"{last[0].strip()}; re-run swap-in to apply it by restarting the wirefilters")
        return {}
    module = library_module("link_shaping")
    results = {}
    for pnode in pnodes:
        params = {"run_dir": expdir.run_dir(pnode), "only": only[pnode],
                  "wirefilters": expdir.pnode_vars(pnode).get("containerize_wirefilters") or [],
                  "nodes": expdir.pnode_nodes(pnode), "timeout": 5.0}
        try:
            results[pnode], _diff = module.shape(params)
        except RuntimeError as exc:
            raise ContainerizeError(f"recorded, but applying it on {pnode} failed: {exc}") from None
    return results


def _describe(changes: dict) -> str:
    parts = []
    if "bandwidth" in changes:
        bw = changes["bandwidth"]
        parts.append("bandwidth unlimited" if bw is None else f"bandwidth {bw / 1e6:g}Mb")
    if "delay" in changes:
        parts.append(f"delay {changes['delay'] * 1000:g}ms")
    if "loss" in changes:
        parts.append(f"loss {changes['loss']:g}")
    return ", ".join(parts)


# what a change can set: option, its value's name, help
SETTINGS = (
    ("--delay", "D", "node-to-node one-way delay, e.g. 20ms (a bare number is s)"),
    ("--bandwidth", "B", "e.g. 10Mb; 'unlimited' removes the limit"),
    ("--loss", "L", "node-to-node loss probability, 0 to 1"),
)


def shape_parser() -> argparse.ArgumentParser:
    parser = CommandParser("shape",
                           description="Change the bandwidth, delay or loss of a link or LAN of a running experiment, "
                                       "live, and record it in the experiment directory so a swap-in re-run keeps it.")
    parser.add_expdir()
    parser.add_argument("link", metavar="LINK", help="link or LAN name (as in the topology, e.g. link-1, lanA)")
    for option, value, what in SETTINGS:
        parser.add_argument(option, metavar=value, help=what)
    parser.add_argument("--node", metavar="NODE", help="change only NODE's hop to the link or LAN")
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write and apply nothing")
    parser.add_argument("--no-apply", action="store_true",
                        help="only record the change (the next swap-in applies it by restarting wirefilters)")
    parser.add_argument("--ansible", action="store_true", help="apply through playbooks/shape.yml")
    parser.add_json()
    return parser


def parse_changes(args) -> dict:
    changes = {}
    try:
        if args.bandwidth is not None:
            text = args.bandwidth.strip().lower()
            changes["bandwidth"] = None if text in ("unlimited", "none", "0") else parse_bandwidth(args.bandwidth)
        if args.delay is not None:
            changes["delay"] = parse_delay(args.delay)
        if args.loss is not None:
            changes["loss"] = parse_loss(args.loss)
    except ValueError as exc:
        raise ContainerizeError(str(exc)) from None
    if not changes:
        raise ContainerizeError("containerize shape: give at least one of --delay, --bandwidth, --loss")
    if changes.get("loss") == 1.0:
        raise ContainerizeError("--loss 1 would cut the link; use a value below 1")
    return changes


def run_shape(argv: list[str]) -> int:
    args = shape_parser().parse_args(argv)
    as_json, query = json_wanted(args)
    if as_json and not args.dry_run:
        raise ContainerizeError("--json and --query go with --dry-run (a change applied prints what it did)")
    changes = parse_changes(args)
    expdir = ExperimentDir(args.expdir)
    plan = plan_change(expdir, args.link, args.node, changes)
    what = _describe(changes)
    scope = f"{args.link}" + (f" (node {args.node})" if args.node else "")
    rows = []
    for member, change in plan:
        if "tc" in change:
            rows.append(f"  {member.label:<20} tc          bandwidth {change['tc']['bandwidth'] or 'unlimited'}")
        else:
            rows.append(f"  {member.label:<20} {member.wirefilter['id']:<11} each direction "
                        f"{json.dumps(change['left_to_right'], sort_keys=True)}")
    if args.dry_run and as_json:
        print(json_text({"link": args.link, "node": args.node, "set": changes,
                         "members": [{"member": member.label, "pnode": member.pnode,
                                      "wirefilter": None if "tc" in change else member.wirefilter["id"],
                                      **change} for member, change in plan]}, query, sort_keys=True))
        return 0
    if args.dry_run:
        print(f"{scope}: would set {what}:")
        print("\n".join(rows))
        return 0
    pnodes = record_change(expdir, plan, f"{scope}: {what}")
    print(f"{scope}: {what}; recorded in {expdir.path}")
    print("\n".join(rows))
    if args.no_apply:
        print("not applied; the next swap-in applies it (restarting the wirefilters concerned)")
        return 0
    only: dict[str, list[str]] = {pnode: [] for pnode in pnodes}
    for member, change in plan:
        only[member.pnode].append(member.label if "tc" in change else member.wirefilter["id"])
    via_ansible = args.ansible or expdir.target != "local"
    results = apply_live(expdir, only, via_ansible)
    idle = sorted({wid for r in results.values() for wid in r.get("not_running", [])})
    shaped = sum(len(r.get("shaped", [])) for r in results.values())
    if via_ansible:
        print("applied live through playbooks/shape.yml")
    else:
        print(f"applied live: {shaped} wirefilter/tap setting(s) changed on {', '.join(pnodes)}")
    if idle:
        print(f"not running (the next swap-in starts them with the new values): {' '.join(idle)}")
    return 0
