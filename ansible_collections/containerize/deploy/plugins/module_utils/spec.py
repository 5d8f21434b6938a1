"""The options every module shares (documented once in doc_fragments/experiment.py): their argument spec,
and what the node modules make of them (NodesContext).

Standard library only (see daemons.py).
"""

from __future__ import annotations

import concurrent.futures
import os

from ansible_collections.containerize.deploy.plugins.module_utils.hosts import check_hosts, render_hosts
from ansible_collections.containerize.deploy.plugins.module_utils.names import valid_netns


def run_dir_spec():
    """run_dir (the fragment's RUN_DIR)."""
    return {"run_dir": {"type": "path", "required": True}}


def experiment_spec(states=("present", "absent")):
    """run_dir, exp_name, project, experiment and state (the fragment's DOCUMENTATION)."""
    return {
        **run_dir_spec(),
        "exp_name": {"type": "str", "required": True},
        "project": {"type": "str", "required": True},
        "experiment": {"type": "str", "required": True},
        "state": {"type": "str", "choices": list(states), "default": "present"},
    }


def nodes_spec(workers=4):
    """root, scripts_dir, hosts, nodes and workers (the fragment's NODES)."""
    return {
        "root": {"type": "path", "default": "/var/containers"},
        "scripts_dir": {"type": "path"},
        "hosts": {"type": "raw", "default": []},
        "nodes": {"type": "list", "elements": "dict", "default": []},
        "workers": {"type": "int", "default": workers},
    }


def plan_module(ansible_module, shared, options):
    """ANSIBLE_MODULE (the class) with the SHARED options' spec (run_dir_spec(), experiment_spec()...) and the
    module's own OPTIONS. Every module of the collection plans before it acts, so check mode is supported."""
    return ansible_module(argument_spec={**shared, **options}, supports_check_mode=True)


def nodes_module(ansible_module, options, states=("present", "absent"), names=("exp_name", "project", "experiment")):
    """A node module's ANSIBLE_MODULE (the class) with the shared options and its OPTIONS, checked.

    It fails when `hosts` is malformed or one of NAMES (they reach namespace names and paths) is not a
    valid name.
    """
    module = plan_module(ansible_module, {**experiment_spec(states), **nodes_spec()}, options)
    check_hosts(module)
    for key in names:
        if not valid_netns(module.params[key]):
            module.fail_json(msg=f"{key} {module.params[key]!r} is not a valid name")
    return module


class NodesContext:
    """A node module's call as the shared options give it: the experiment, its directories, its hosts.

    Each module's Context adds its own options and what its nodes share; worker threads read it.
    """

    def __init__(self, module):
        p = module.params
        self.module = module
        self.check = module.check_mode
        self.root = os.path.abspath(p["root"])
        self.run_dir = os.path.abspath(p["run_dir"])
        self.exp_name = p["exp_name"]
        self.project = p["project"]
        self.experiment = p["experiment"]
        self.hosts = render_hosts(p["hosts"])
        # node directories ROOT/nodes/EXP_NAME/NODE (the node's /var/containers)
        self.nodes_dir = os.path.join(self.root, "nodes", self.exp_name)

    def rpath(self, name):
        return os.path.join(self.run_dir, name)

    def run_each(self, jobs):
        """Run each (NAME, JOB) of JOBS: their results, and "NAME: error" for each that failed.

        Jobs run one by one in this thread while each finds its node as planned (a result with no
        `changes`); from the first that changes something or fails, the rest go to `workers` threads.
        Checking a node that is as planned is pure Python (file reads, netlink), which threads only
        slow down on the GIL (a no-op re-run of 1,000 process nodes: 1.0 s in turn, 1.5 s on 4
        threads); making or repairing one waits on subprocesses, which threads overlap.
        """
        done, errors = [], []
        jobs = iter(jobs)
        for name, job in jobs:
            try:
                result = job()
            except Exception as exc:  # noqa: BLE001 - reported per node by the caller
                errors.append(f"{name}: {exc}")
                break
            done.append(result)
            if getattr(result, "changes", None):
                break
        pending = list(jobs)  # what the loop left, from the first job that changed something or failed
        if pending:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, self.module.params["workers"])) as pool:
                futures = {pool.submit(job): name for name, job in pending}
                for future in concurrent.futures.as_completed(futures):
                    try:
                        done.append(future.result())
                    except Exception as exc:  # noqa: BLE001 - reported per node by the caller
                        errors.append(f"{futures[future]}: {exc}")
        return done, errors


def note_changes(done, result):
    """Put what the realized nodes DONE changed (their changes, before and after) in RESULT; DONE by name."""
    done = sorted(done, key=lambda g: g.name)
    before, after = {}, {}
    for node in done:
        if node.changes:
            result["changed"] = True
            result["nodes"][node.name] = node.changes
            before[node.name], after[node.name] = node.before, node.after
    result["diff"] = {"before": before, "after": after}
    return done
