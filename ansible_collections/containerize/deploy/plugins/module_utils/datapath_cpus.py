"""The pnode's CPUs split between the experiment's data path and its nodes (role hv's hv_datapath_cpus).

A node's TCP stack runs in the pnode's kernel, and on a kernel that does not preempt there (this
test machine's, at least) a sender at full speed keeps its CPU inside the kernel for 10-60 ms at a
time: a link element woken on that CPU waits that long, real-time priority or not (docs/datapath.md).
So where the experiment has data-path daemons (switches, elements, plugs), they run on CPUs of their
own and the nodes' processes on the others:

- hv_experiment resolves the setting once per swap-in and writes the two lists to the experiment's
  run directory (DATAPATH_FILE, NODES_FILE; neither when nothing is split);
- the daemons' modules read DATAPATH_FILE and pin every data-path daemon there (daemons.make_realtime),
  or on every CPU when there is none;
- process_nodes starts a node's start command on NODES_FILE's CPUs, and `containerize exec` runs
  commands there, unless the node names its own (containers:cpus).

Standard library only (see daemons.py).
"""

from __future__ import annotations

import os

from ansible_collections.containerize.deploy.plugins.module_utils.process_plan import cpu_set

DATAPATH_FILE = "datapath.cpus"
NODES_FILE = "nodes.cpus"
CPUS_PER_DATAPATH_CPU = 8  # auto: one CPU for the data path per 8 of the pnode's, at least one


def cpu_list(cpus):
    """CPUS (a set of numbers) as taskset's --cpu-list text: 0-3,6."""
    parts, ordered = [], sorted(cpus)
    start = prev = None
    for cpu in ordered + [None]:
        if prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = cpu
    return ",".join(parts)


def plan_split(setting, usable, has_datapath=True):
    """{"datapath": LIST, "nodes": LIST} for SETTING on a pnode whose usable CPUs are USABLE, or {} when
    nothing is split. ValueError saying what is wrong with SETTING.

    SETTING: "auto" (the highest-numbered CPUs, one per CPUS_PER_DATAPATH_CPU, on a pnode with two or
    more and data-path daemons), "none", or a CPU list the data path gets (the nodes get the rest)."""
    setting = str(setting or "none").strip()
    if setting == "none" or not has_datapath:
        return {}
    if setting == "auto":
        if len(usable) < 2:
            return {}
        datapath = set(sorted(usable)[-max(1, len(usable) // CPUS_PER_DATAPATH_CPU):])
    else:
        try:
            datapath = cpu_set(setting)
        except ValueError as exc:
            raise ValueError(f"hv_datapath_cpus {setting!r} {exc}, or auto, or none") from None
        if datapath - usable:
            raise ValueError(f"hv_datapath_cpus {setting!r} names CPUs this pnode does not give us "
                             f"({cpu_list(datapath - usable)}; it has {cpu_list(usable)})")
        if not usable - datapath:
            raise ValueError(f"hv_datapath_cpus {setting!r} leaves the nodes no CPU (the pnode has {cpu_list(usable)})")
    return {"datapath": cpu_list(datapath), "nodes": cpu_list(usable - datapath)}


def split_files(run_dir, split):
    """{path: content or None (no such file)} of the run directory's split files for SPLIT (plan_split's)."""
    return {os.path.join(run_dir, DATAPATH_FILE): f"{split['datapath']}\n" if split else None,
            os.path.join(run_dir, NODES_FILE): f"{split['nodes']}\n" if split else None}


def _read_list(path):
    try:
        with open(path, encoding="ascii") as handle:
            return cpu_set(handle.read().strip())
    except (OSError, ValueError):
        return None


def datapath_cpus(run_dir):
    """The set of CPUs the experiment's data-path daemons run on here: DATAPATH_FILE's, else every CPU this
    process may use (so that a split taken back frees the daemons pinned by it)."""
    return _read_list(os.path.join(run_dir, DATAPATH_FILE)) or os.sched_getaffinity(0)


def nodes_cpus(run_dir):
    """The experiment's nodes' CPUs here as a --cpu-list text, or None (any)."""
    cpus = _read_list(os.path.join(run_dir, NODES_FILE))
    return cpu_list(cpus) if cpus else None
