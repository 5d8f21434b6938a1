"""Helpers for end-to-end tests: compile, swap in and out for real on this machine, look around."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
       "ANSIBLE_FORCE_COLOR": "0", "PYTHONPATH": str(REPO)}
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def compile_topology(source: Path, out: Path, project: str, experiment: str, *args: str) -> None:
    cmd = [sys.executable, "-m", "containerize.cli", "--no-image", "--force", "--out", str(out), *args,
           project, experiment, str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr


def playbook(expdir: Path, name: str, *extra: str) -> dict[str, dict[str, int]]:
    """Run playbooks/NAME.yml; return the recap per host. Fails the test on a failed run."""
    cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), str(REPO / "playbooks" / f"{name}.yml"), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
            for m in RECAP.findall(proc.stdout)}


def changed(recap: dict[str, dict[str, int]]) -> int:
    return sum(host["changed"] for host in recap.values())


def node_exec(expdir: Path, node: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "containerize.cli", "exec", str(expdir), node, "--", *command]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=timeout, check=False)


def ping_rtt(expdir: Path, node: str, target: str, count: int = 10) -> float:
    """Average RTT in ms of `count` pings (after one warm-up ping that resolves ARP)."""
    node_exec(expdir, node, "ping", "-c", "1", "-W", "2", target)
    proc = node_exec(expdir, node, "ping", "-c", str(count), "-i", "0.05", "-W", "2", target)
    assert proc.returncode == 0, f"{node} -> {target}: {proc.stdout}{proc.stderr}"
    return float(re.search(r"= [\d.]+/([\d.]+)/", proc.stdout).group(1))


def host_state() -> dict[str, set[str]]:
    """What an experiment could leave behind on this machine."""

    def lines(*cmd: str) -> set[str]:
        return set(subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.split("\n"))

    def tree(path: str) -> set[str]:
        root = Path(path)
        return {str(p) for p in root.rglob("*")} if root.exists() else set()

    processes = {
        line.split(None, 1)[1] for line in lines("ps", "-eo", "pid=,args=")
        # zombies (<defunct>) are exited processes nobody reaps on this kind of machine (design.md)
        if line.strip() and re.search(r"vde_|wirefilter|start_command|supervis", line) and "<defunct>" not in line
    }
    links = {line.split("@")[0] for line in lines("ip", "-o", "link", "show")
             for line in [line.split(": ")[1] if ": " in line else ""] if line}
    return {
        "namespaces": lines("ip", "netns", "list"),
        "links": links,
        "processes": processes,
        "files": tree("/var/containers") | tree("/etc/netns") | tree("/run/netns"),
        "hosts": set(Path("/etc/hosts").read_text().splitlines()),
    }
