"""Helpers for end-to-end tests: compile, swap in and out for real on this machine, look around."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
MODULES = REPO / "ansible_collections" / "containerize" / "deploy" / "plugins" / "modules"
ENV = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
       "ANSIBLE_FORCE_COLOR": "0"}
# the names playbook_changes() reports the swapin playbook's module calls by
HV_TASK = ("containerize.deploy.hv : Set the pnode up for the experiment (and its VDE network with hv_network), "
           "or remove it")
VDE_TASK = "containerize.deploy.vde : Run the planned VDE switches, wirefilters and cross-pnode uplinks"
PROCESS_TASK = "containerize.deploy.process : Realize, or remove, every process node of this pnode"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def compile_topology(source: Path, out: Path, project: str, experiment: str, *args: str) -> None:
    cmd = [sys.executable, "-m", "containerize.cli", "--no-image", "--force", "--out", str(out), *args,
           project, experiment, str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr


def playbook_output(expdir: Path, name: str, *extra: str) -> str:
    """Run playbooks/NAME.yml; return what it printed. Fails the test on a failed run."""
    cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), str(REPO / "playbooks" / f"{name}.yml"), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def playbook(expdir: Path, name: str, *extra: str) -> dict[str, dict[str, int]]:
    """Run playbooks/NAME.yml; return the recap per host. Fails the test on a failed run."""
    return {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
            for m in RECAP.findall(playbook_output(expdir, name, *extra))}


def playbook_changes(expdir: Path, name: str, *extra: str) -> list[dict]:
    """Run playbooks/NAME.yml; return what changed: one {task, host, result} per changed task and host."""
    record = expdir.parent / f".changes-{os.getpid()}.jsonl"
    record.unlink(missing_ok=True)
    env = {**ENV, "RECORD_CHANGES_FILE": str(record), "ANSIBLE_CALLBACKS_ENABLED": "record_changes",
           "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "callback_plugins")}
    cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), str(REPO / "playbooks" / f"{name}.yml"), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    if not record.exists():
        return []
    changes = [json.loads(line) for line in record.read_text().splitlines()]
    record.unlink()
    return changes


def changed(recap: dict[str, dict[str, int]]) -> int:
    return sum(host["changed"] for host in recap.values())


def node_exec(expdir: Path, node: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "containerize.cli", "exec", str(expdir), node, "--", *command]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=timeout, check=False)


def ping_rtts(expdir: Path, node: str, target: str, count: int = 20) -> list[float]:
    """Round trips in ms of COUNT pings from NODE to TARGET (after one warm-up ping that resolves ARP)."""
    node_exec(expdir, node, "ping", "-n", "-c", "1", "-W", "2", target)
    proc = node_exec(expdir, node, "ping", "-n", "-c", str(count), "-i", "0.05", "-W", "2", target)
    assert proc.returncode == 0, f"{node} -> {target}: {proc.stdout}{proc.stderr}"
    return [float(rtt) for rtt in re.findall(r"time=([\d.]+) ms", proc.stdout)]


# The issue's bound on a link's delay: the fastest round trip within 15 % of the plan (README, "How
# faithful the links are"; bench/fidelity.py keeps the tighter 10 %).
# Every path adds its own latency on top of the link's: ~0.5 ms for the taps, switches and plugs of
# a round trip here, ~0.2 ms for each wirefilter a packet waits in (its timer), more across pnodes.
DELAY_TOLERANCE = 0.15


def delay_error(rtts: list[float], want: float, allowance_ms: float = 1.0) -> str | None:
    """Why the round trips RTTS (ms) do not show the planned round trip WANT (ms), or None if they do.

    The delay a link adds is what the fastest packet sees: the smallest round trip must be within
    DELAY_TOLERANCE (or ALLOWANCE_MS, for short links) of the plan and never clearly below it. The
    median may be later, by scheduling on a shared machine, but not by more than a quarter (plus 2 ms):
    that would be a wrong delay, not noise. bench/fidelity.py measures the same on a quiet machine
    against its tighter 10 % target, with the error printed.
    """
    fastest, median = min(rtts), statistics.median(rtts)
    if not 0.9 * want - 0.5 <= fastest <= max((1 + DELAY_TOLERANCE) * want, want + allowance_ms):
        return (f"fastest of {len(rtts)} round trips {fastest:.2f} ms, "
                f"want {want:.2f} ms +-{DELAY_TOLERANCE:.0%} (or {allowance_ms:g} ms)")
    if median > 1.25 * want + 2.0:
        return f"median of {len(rtts)} round trips {median:.2f} ms, want at most {1.25 * want + 2.0:.2f} ms"
    return None


def assert_delay(expdir: Path, node: str, target: str, want: float, allowance_ms: float = 1.0) -> None:
    """NODE pings TARGET with the planned round trip WANT (ms); on a miss, measure longer and judge all.

    A busy moment of a shared machine delays a few dozen pings; a wrong delay shows in any number.
    """
    rtts = ping_rtts(expdir, node, target)
    if delay_error(rtts, want, allowance_ms):
        rtts += ping_rtts(expdir, node, target, count=60)
    error = delay_error(rtts, want, allowance_ms)
    assert not error, f"{node} -> {target}: {error}"


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
        if line.strip() and re.search(r"vde_|wirefilter|cz-wire|start[_-]command|supervis", line)
        and "<defunct>" not in line
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


def experiment_marks(expdir: Path) -> list[str]:
    """Strings that only this experiment's traces on this machine carry (run directory tag, names)."""
    group = yaml.safe_load((expdir / "inventory" / "group_vars" / "all.yml").read_text())
    tag, name = group["containerize_exp_tag"], group["containerize_exp_name"]
    # (a simulated pnode's root is shared by every experiment using that pnode: not a mark)
    return [tag, f".{name}", f"/{name}", f"containerize experiment {name}"]


def traces(state: dict[str, set[str]], expdir: Path) -> dict[str, set[str]]:
    """The part of a host_state() that belongs to the experiment EXPDIR."""
    marks = experiment_marks(expdir)
    return {key: {item for item in items if any(mark in item for mark in marks)} for key, items in state.items()}


def assert_nothing_left(expdir: Path, before: dict[str, set[str]]) -> None:
    """Nothing of the experiment EXPDIR is on this machine that was not there at BEFORE (a host_state())."""
    after = host_state()
    left = traces({key: after[key] - before[key] for key in before}, expdir)
    assert not any(left.values()), f"left behind: { {k: sorted(v) for k, v in left.items() if v} }"


def cut_swapin(expdir: Path, ready: Callable[[], bool], timeout: float = 60) -> None:
    """Run swapin.yml on EXPDIR and kill it (SIGKILL, its whole process group: the playbook and the module
    it is running) as soon as READY() is true. Fails unless the run was cut while it was making things:
    READY() became true and the run had not ended by itself."""
    cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), str(REPO / "playbooks" / "swapin.yml")]
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=REPO,
                           start_new_session=True)
    deadline = time.monotonic() + timeout
    while not (seen := ready()) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):  # the run ended (and was reaped) by itself
        os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert seen, "the swap-in ended, or timed out, before the marker appeared"
    assert run.returncode == -signal.SIGKILL, f"the swap-in ended (rc {run.returncode}) before it was cut"
