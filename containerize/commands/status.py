"""`containerize status EXPDIR`: boot status and start command exit code of every node, per pnode.

  containerize status EXPDIR [--json | --deter] [--links] [--wait [--timeout S]] [--ansible]
  containerize status-server [--listen ADDR] [--port N] (EXPDIR... | --experiments DIR)

On the local target the pnodes are this machine and the `experiment_status` module's readers
(module_utils/node_status.py) run in this process; on a testbed target (or with --ansible)
`playbooks/status.yml` gathers it on every pnode over Ansible, and pnodes that cannot be reached
report their nodes as `unknown`.
"""

from __future__ import annotations

import argparse
import re
import socketserver
import sys
import threading
import time
from pathlib import Path

from ansible_collections.containerize.deploy.plugins.module_utils import node_status

from ..errors import ContainerizeError
from ..expdir import ExperimentDir, Progress, playbook_json
from ..units import format_bandwidth
from .base import CommandParser, json_text, json_wanted

STATES = ("booted", "running", "dead", "unknown")
REQUEST = re.compile(r"status_request ([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9][A-Za-z0-9-]*)")
MAX_REQUEST = 512



# ----------------------------------------------------------------------------------------------
# gathering


def _unknown_pnode(expdir: ExperimentDir, pnode: str, why: str) -> dict:
    nodes = {}
    for name in expdir.pnodes[pnode].get("nodes") or []:
        entry = expdir.nodes.get(name, {})
        nodes[name] = {"kind": entry.get("kind"), "ghost": bool(entry.get("ghost")), "state": "unknown",
                       "exit": None, "start": "none", "since": None, "detail": why}
    return {"reachable": False, "error": why, "nodes": nodes, "links": {}}


def gather(expdir: ExperimentDir, links: bool = False, wait: bool = False, timeout: float = 300.0,
           via_ansible: bool | None = None, bar: Progress | None = None) -> dict:
    """{experiment, pnodes: {pnode: {reachable, nodes: {node: {...}}, links: {...}}}}."""
    if via_ansible is None:
        via_ansible = expdir.target != "local"
    result = {"experiment": expdir.name, "pnodes": {}}
    if via_ansible:
        found = playbook_json(expdir, "status.yml", {"status_links": links, "status_wait": wait,
                                                     "status_timeout": timeout, "status_output": ""},
                              "status")  # fmt: skip
        for pnode in expdir.pnodes:
            got = found.get(pnode) or {}
            if got.get("unreachable") or "nodes" not in got:
                why = "pnode unreachable" if got.get("unreachable") else "no answer from the pnode"
                result["pnodes"][pnode] = _unknown_pnode(expdir, pnode, why)
            else:
                result["pnodes"][pnode] = {"reachable": True, "nodes": got["nodes"], "links": got.get("links", {})}
        return result
    deadline = time.monotonic() + timeout
    total = len(expdir.nodes)
    done_before = 0
    for pnode in expdir.pnodes:
        def report(ready, count, base=done_before):
            if bar:
                bar.update(base + ready, total)

        params = expdir.module_params(pnode, links=links, wait=wait, timeout=max(0.0, deadline - time.monotonic()))
        got = node_status.gather(params, progress=report if wait else None)
        result["pnodes"][pnode] = {"reachable": True, "nodes": got["nodes"], "links": got["links"]}
        done_before += sum(1 for s in got["nodes"].values() if node_status.is_ready(s))
    if bar:
        bar.close()
    return result


def all_nodes(status: dict):
    for pnode, entry in status["pnodes"].items():
        for name, node in entry["nodes"].items():
            yield pnode, name, node


def late_nodes(status: dict) -> list[str]:
    return sorted(name for _pnode, name, node in all_nodes(status)
                  if not node.get("ghost") and node.get("state") != "booted")


# ----------------------------------------------------------------------------------------------
# output


def deter_reply(status: dict) -> str:
    """DETER's line: ``status_reply {pnode: {node: [boot status, exit code]}}`` (ast.literal_eval-able)."""
    reply = {pnode: {name: [node["state"], node["exit"]] for name, node in entry["nodes"].items()}
             for pnode, entry in status["pnodes"].items()}
    return f"status_reply {reply!r}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def _shaping(values: dict | None) -> str:
    if not values:
        return "-"
    delay = float(values.get("delay_ms") or 0)
    loss = float(values.get("loss") or 0)
    return f"{format_bandwidth(values.get('bandwidth'), '-')} {delay:g}ms {loss * 100:g}%"


def _same(live: dict | None, planned: dict | None) -> bool:
    live, planned = live or {}, planned or {}
    # wirefilter delays by whole ms: a hop planned at 2.5 ms runs 3 ms one way and 2 ms the other
    # (library/vde_network.py wirefilter_delay), so half a millisecond of delay is the plan
    for key, slack in (("delay_ms", 0.5), ("loss", 0.0)):
        want = float(planned.get(key) or 0)
        if abs(float(live.get(key) or 0) - want) > slack + 1e-6 + 1e-5 * want:
            return False
    a, b = live.get("bandwidth") or 0, planned.get("bandwidth") or 0
    return abs(a - b) <= max(8, 1e-5 * b)


def substrate_of(expdir: ExperimentDir, pnode: str) -> dict[tuple[str, str], str]:
    return {(g["name"], i.get("ifname")): i.get("substrate")
            for g in expdir.pnode_nodes(pnode) for i in g.get("interfaces") or []}


def render_table(expdir: ExperimentDir, status: dict, links: bool) -> str:
    rows = [["PNODE", "NODE", "KIND", "STATUS", "EXIT", "DETAIL"]]
    counts: dict[str, int] = {}
    for pnode, name, node in all_nodes(status):
        counts[node["state"]] = counts.get(node["state"], 0) + 1
        detail = ", ".join(filter(None, ["ghost" if node.get("ghost") else "", node.get("detail") or ""]))
        rows.append([pnode, name, str(node.get("kind")), node["state"], "-" if node["exit"] is None else
                     str(node["exit"]), detail])  # fmt: skip
    lines = [_table(rows)]
    summary = ", ".join(f"{counts[s]} {s}" for s in STATES if counts.get(s))
    lines.append(f"{expdir.name}: {sum(counts.values())} nodes: {summary or 'none'}")
    if links:
        rows = [["LINK", "NODE", "IFACE", "PNODE", "METHOD", "STATE", "OUT (from node)", "IN (to node)", ""]]
        for pnode, entry in status["pnodes"].items():
            subs = substrate_of(expdir, pnode) if entry.get("reachable") else {}
            for _key, link in sorted(entry.get("links", {}).items(),
                                     key=lambda kv: (subs.get((kv[1].get("node"), kv[1].get("interface"))) or "",
                                                     str(kv[1].get("node"))) if isinstance(kv[1], dict) else ("", "")):
                sub = subs.get((link.get("node"), link.get("interface")), "?")
                if link.get("method") == "tc":
                    out = f"{format_bandwidth(link.get('bandwidth'), '-')} (tbf)"
                    rows.append([sub, str(link["node"]), str(link["interface"]), pnode, "tc",
                                 "on" if link.get("bandwidth") else "off", out, "-",
                                 "" if link.get("bandwidth") == link["planned"]["bandwidth"] else "differs from plan"])
                    continue
                state = "running" if link.get("running") else "dead"
                planned = link.get("planned") or {}
                note = ""
                if link.get("running") and not (_same(link.get("left_to_right"), planned.get("left_to_right"))
                                                and _same(link.get("right_to_left"), planned.get("right_to_left"))):
                    note = "differs from plan"
                shown_out = link.get("left_to_right") if link.get("running") else planned.get("left_to_right")
                shown_in = link.get("right_to_left") if link.get("running") else planned.get("right_to_left")
                rows.append([sub, str(link.get("node")), str(link.get("interface")), pnode,
                             str(link.get("element") or "wirefilter"), state,
                             _shaping(shown_out), _shaping(shown_in), note or link.get("error", "")])
        lines.append("")
        lines.append(_table(rows) if len(rows) > 1 else "no shaped links")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# commands


def status_parser() -> argparse.ArgumentParser:
    parser = CommandParser("status",
                           description="Boot status (booted, running, dead, unknown) and start command exit code of "
                                       "every node of a swapped-in experiment, per pnode.")
    parser.add_expdir()
    fmt = parser.add_mutually_exclusive_group()
    parser.add_json(fmt)
    fmt.add_argument("--deter", action="store_true",
                     help="print DETER's line: status_reply {pnode: {node: [status, exit code]}}")
    parser.add_argument("--links", action="store_true", help="also show the shaping in effect on every link")
    parser.add_argument("--wait", action="store_true",
                        help="wait until every node that is not a ghost is booted (exit status 1 if some are late)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S", help="seconds --wait waits (300)")
    parser.add_argument("--ansible", action="store_true",
                        help="gather over Ansible (playbooks/status.yml), as for a testbed target")
    return parser


def run_status(argv: list[str]) -> int:
    args = status_parser().parse_args(argv)
    if args.timeout < 0:
        raise ContainerizeError("--timeout must not be negative")
    args.json, query = json_wanted(args)
    expdir = ExperimentDir(args.expdir)
    bar = Progress("waiting for nodes") if args.wait and not (args.json or args.deter) else None
    status = gather(expdir, links=args.links, wait=args.wait, timeout=args.timeout,
                    via_ansible=True if args.ansible else None, bar=bar)
    if args.json:
        # besides the per-pnode tree, one flat list: --query "nodes[?state!='booted'].name"
        status["nodes"] = [{"name": name, "pnode": pnode, **node}
                           for pnode, entry in status["pnodes"].items() for name, node in entry["nodes"].items()]
        print(json_text(status, query, sort_keys=True))
    elif args.deter:
        print(deter_reply(status))
    else:
        print(render_table(expdir, status, args.links))
    late = late_nodes(status)
    if args.wait and late:
        print(f"not booted after {args.timeout:g} s: {' '.join(late)}", file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------------------------
# the status server


class Registry:
    """Experiments the server knows: given directories, and every PROJECT/EXPERIMENT below a root."""

    def __init__(self, expdirs: list[ExperimentDir], root: Path | None):
        self.fixed = {e.name: e for e in expdirs}
        self.root = root

    def find(self, project: str, experiment: str) -> ExperimentDir | None:
        name = f"{project}/{experiment}"
        if name in self.fixed:
            return self.fixed[name]
        if self.root is not None:
            path = self.root / project / experiment
            if (path / "embedding.yaml").is_file():
                expdir = ExperimentDir(path)
                if expdir.name == name:
                    return expdir
        return None


def answer(registry: Registry, line: str) -> str:
    """The reply to one request line. The line is only matched against a pattern, never evaluated."""
    match = REQUEST.fullmatch(line.strip())
    if not match:
        return "status_error expected: status_request PROJECT/EXPERIMENT"
    expdir = registry.find(match.group(1), match.group(2))
    if expdir is None:
        return f"status_error no experiment {match.group(1)}/{match.group(2)}"
    try:
        return deter_reply(gather(expdir))
    except ContainerizeError as exc:
        return f"status_error {str(exc).splitlines()[0]}"


class _Handler(socketserver.StreamRequestHandler):
    timeout = 60

    def handle(self):
        while True:
            try:
                raw = self.rfile.readline(MAX_REQUEST + 1)
            except (OSError, TimeoutError):
                return
            if not raw:
                return
            if len(raw) > MAX_REQUEST and not raw.endswith(b"\n"):
                self.wfile.write(b"status_error request too long\n")
                return
            reply = answer(self.server.registry, raw.decode("ascii", errors="replace"))
            self.wfile.write(reply.encode() + b"\n")
            self.wfile.flush()


class StatusServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address, registry: Registry):
        self.registry = registry
        super().__init__(address, _Handler)


def server_parser() -> argparse.ArgumentParser:
    parser = CommandParser("status-server",
                           description="Answer `status_request PROJECT/EXPERIMENT` lines with `status_reply {...}` "
                                       "(DETER's status protocol) over TCP, one reply line per request line.")
    parser.add_argument("expdirs", metavar="EXPDIR", nargs="*", help="experiment directories to serve")
    parser.add_argument("--experiments", metavar="DIR",
                        help="also serve every experiment DIR/PROJECT/EXPERIMENT (e.g. experiments/)")
    parser.add_argument("--listen", default="127.0.0.1", metavar="ADDR", help="address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4848, metavar="N", help="TCP port (default 4848; 0 picks one)")
    return parser


def run_server(argv: list[str]) -> int:
    args = server_parser().parse_args(argv)
    if not args.expdirs and not args.experiments:
        raise ContainerizeError("status-server: give EXPDIR arguments or --experiments DIR")
    if not 0 <= args.port <= 65535:
        raise ContainerizeError(f"--port {args.port}: expected 0 to 65535")
    root = Path(args.experiments) if args.experiments else None
    if root is not None and not root.is_dir():
        raise ContainerizeError(f"--experiments {root}: not a directory")
    registry = Registry([ExperimentDir(path) for path in args.expdirs], root)
    try:
        server = StatusServer((args.listen, args.port), registry)
    except OSError as exc:
        raise ContainerizeError(f"cannot listen on {args.listen}:{args.port}: {exc.strerror}") from None
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
