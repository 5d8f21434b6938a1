"""The kinds of nodes a pnode may still carry: EXPDIR/swapped/PNODE.json, kept where the playbook runs.

swapout.yml includes the qemu and openvz roles only on pnodes that may carry such nodes: on a pnode of
process nodes they cost ~0.4 s on the local target and three module calls over SSH (~0.2 s of the
host's CPU each). The plan cannot tell which kinds those are (a swap-in of an older plan may have left
nodes of another kind), so role hv's action plugin records each pnode's kinds, as a sorted JSON list:

- swap-in (hv state present), before the module runs, so that a swap-in failing later leaves them
  recorded: the old record and the plan's kinds (containerize_kinds). No record, or one that does not
  parse, counts as every kind: the pnode may hold nodes of a swap-in recorded elsewhere (an experiment
  directory recompiled with --force starts without one). Once the module has created the experiment's
  nodes directory, nothing of the experiment was on the pnode: the record becomes the plan's kinds.
- swap-out (hv state absent), once the module has removed the base: []. swapout.yml runs it last, after
  every node role; a host that failed before keeps its record.

The inventory plugin reads it as containerize_swapped_kinds. Check mode writes nothing, nor does a
task without containerize_experiment_dir (molecule runs role hv without one). A record that cannot be
written fails the task: one that missed a kind would make swap-out leave nodes behind.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import read_json, write_json

ALL_KINDS = ("embedded_pnode", "openvz", "process", "qemu")
RECORD_DIR = "swapped"


def record_path(expdir: str, pnode: str) -> str:
    return os.path.join(expdir, RECORD_DIR, f"{pnode}.json")


def read_record(path: str) -> list[str] | None:
    """The kinds recorded at PATH; None when there is no record or it is not a JSON list of kind names."""
    kinds = read_json(path)
    if not isinstance(kinds, list) or not all(isinstance(kind, str) for kind in kinds):
        return None
    return sorted(set(kinds))


def write_record(path: str, kinds) -> None:
    """Replace the record at PATH with KINDS (write_json: a reader never sees half of it)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, sorted(set(kinds)))


class SwappedKinds:
    """The record of one hv task: before_base() and after_base() around its module call."""

    def __init__(self, path: str, state: str, plan_kinds, nodes_dir: str | None):
        self.path, self.state, self.nodes_dir = path, state, nodes_dir
        self.plan_kinds = sorted({str(kind) for kind in plan_kinds or []})

    @classmethod
    def for_task(cls, task_vars: dict, module_args: dict, check_mode: bool) -> SwappedKinds | None:
        """The record this hv task keeps; None when it keeps none (check mode, no experiment directory)."""
        expdir = task_vars.get("containerize_experiment_dir")
        if check_mode or not expdir:
            return None
        return cls(
            record_path(str(expdir), str(task_vars["inventory_hostname"])),
            str(module_args.get("state", "present")),
            task_vars.get("containerize_kinds"),
            module_args.get("nodes_dir"),
        )

    def before_base(self) -> None:
        if self.state == "present":
            old = read_record(self.path)
            self._write(self.plan_kinds + list(ALL_KINDS if old is None else old))

    def after_base(self, result: dict) -> None:
        """Narrow or empty the record by what the module did; on a write error RESULT fails."""
        if result.get("failed") or result.get("unreachable"):
            return
        try:
            if self.state == "absent":
                self._write([])
            elif self._created_nodes_dir(result):
                self._write(self.plan_kinds)
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=exc.message)

    def _created_nodes_dir(self, result: dict) -> bool:
        if not self.nodes_dir:
            return False
        # the module reports each directory it made as "create PATH" (a path option: user and variables expanded)
        created = f"create {os.path.expanduser(os.path.expandvars(str(self.nodes_dir)))}"
        return created in (result.get("changes") or [])

    def _write(self, kinds) -> None:
        if read_record(self.path) == sorted(set(kinds)):
            return  # a re-run: nothing to write
        try:
            write_record(self.path, kinds)
        except OSError as exc:
            raise AnsibleActionFail(
                f"cannot record the kinds of nodes swapped in on this pnode in {self.path} "
                f"({exc.strerror or exc}): swap-out reads it to skip the roles of kinds the pnode never "
                "carried; make the experiment directory writable and run the playbook again"
            ) from None
