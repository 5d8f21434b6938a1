"""`containerize list EXPDIR`: the pnodes and the nodes each carries (DETER's ``node_list --extra``).

Read from the experiment directory alone (no pnode is asked), so it agrees with
``ansible-inventory -i EXPDIR/inventory --graph``: group ``pnode_NNNN`` holds pnode-NNNN and its nodes.
"""

from __future__ import annotations

from ..expdir import ExperimentDir
from .base import CommandParser, json_text, json_wanted


def pnode_address(expdir: ExperimentDir, index: int, pnode: str) -> str:
    """Where the pnode is: this machine, or its testbed host name."""
    if expdir.target == "local":
        return "local"
    if (expdir.pnodes.get(pnode) or {}).get("host"):
        return str(expdir.pnodes[pnode]["host"])  # containerize --pnode-hosts
    pattern = str(expdir.embedding.get("pnode_host_pattern") or "pnode-{index:04d}.{eid}.{pid}")
    try:
        return pattern.format(index=index, pnode=pnode, eid=expdir.experiment, pid=expdir.project)
    except (KeyError, IndexError, ValueError):
        return "?"


def listing(expdir: ExperimentDir) -> dict:
    pnodes = {}
    for index, (pnode, entry) in enumerate(expdir.pnodes.items()):
        nodes = []
        for name in entry.get("nodes") or []:
            node = expdir.nodes.get(name, {})
            nodes.append({"name": name, "kind": node.get("kind"), "ghost": bool(node.get("ghost")),
                          "partition": node.get("partition")})
        pnodes[pnode] = {"address": pnode_address(expdir, index, pnode), "kinds": list(entry.get("kinds") or []),
                         "types": list(entry.get("types") or []), "nodes": nodes}
    return {"experiment": expdir.name, "target": expdir.target, "pnodes": pnodes}


def render(data: dict, extra: bool) -> str:
    lines = []
    for pnode, entry in data["pnodes"].items():
        names = [n["name"] + ("*" if n["ghost"] else "") for n in entry["nodes"]]
        if not extra:
            lines.append(f"{pnode}: {' '.join(names)}")
            continue
        kinds = ",".join(entry["kinds"]) or "-"
        lines.append(f"{pnode} ({entry['address']}, {kinds}, {len(names)} node{'s' * (len(names) != 1)})")
        for node in entry["nodes"]:
            ghost = "  ghost" if node["ghost"] else ""
            lines.append(f"    {node['name']:<20} {node['kind']:<15} partition {node['partition']}{ghost}")
    if any(n["ghost"] for e in data["pnodes"].values() for n in e["nodes"]) and not extra:
        lines.append("(* ghost)")
    return "\n".join(lines)


def run_list(argv: list[str]) -> int:
    parser = CommandParser("list", description="List the pnodes of an experiment and the nodes each carries.")
    parser.add_expdir()
    parser.add_argument("--extra", action="store_true", help="one node per line with kind and partition")
    parser.add_json()
    args = parser.parse_args(argv)
    as_json, query = json_wanted(args)
    data = listing(ExperimentDir(args.expdir))
    print(json_text(data, query) if as_json else render(data, args.extra))
    return 0
