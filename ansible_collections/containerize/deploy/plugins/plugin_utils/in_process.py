"""Run this project's batch modules inside the Ansible worker when the pnode is this machine.

A module call normally costs about half a second here before it does any work: Ansible packs
the module with its module_utils into a zip, starts a new interpreter, and compiles
`ansible.module_utils.basic` from that zip every time. A swap-in makes three such calls, so on
the local target that overhead was most of a small experiment's swap-in time.

When the task runs over the local connection without privilege escalation or async, the
module's own `main()` is executed in the (already forked) worker process instead: same module
code, same argument handling (AnsibleModule reads the same JSON), same result parsing. Any
other connection takes the normal path, so a remote pnode behaves exactly as before.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import traceback

from ansible.module_utils import basic
from ansible.module_utils.common import json as module_json
from ansible.plugins.action import ActionBase

from ansible_collections.containerize.deploy.plugins.plugin_utils.modules import load_module_file

PROFILE = "legacy"  # the serialization profile of modules without metadata, as ours are

# Module arguments that, when a task leaves them out, are the pnode's plan variable as the inventory
# holds it. A 100-node list passed as a task argument is templated, then pickled back to the
# controller with the task: ~0.08 s per task. Taken here, it goes straight to the module; and plan
# data (node names, start commands) is never rendered as a template on the way.
# A role passes its own variable instead when it is set (e.g. `nodes: "{{ process_nodes | default(omit) }}"`).
NODES_AND_HOSTS = {"nodes": "containerize_nodes", "hosts": "containerize_hosts"}
PLAN_ARGUMENTS = {
    "hv_experiment": {"hosts": "containerize_hosts"},
    "process_nodes": {**NODES_AND_HOSTS, "wirefilters": "containerize_wirefilters"},
    "qemu_nodes": NODES_AND_HOSTS,
    "openvz_nodes": NODES_AND_HOSTS,
    "embedded_nodes": NODES_AND_HOSTS,
    "experiment_status": {"nodes": "containerize_nodes"},
    "vde_network": {"switches": "containerize_switches", "wirefilters": "containerize_wirefilters",
                    "uplinks": "containerize_uplinks"},
    "vde_uplinks": {"uplinks": "containerize_uplinks"},
    "link_shaping": {"nodes": "containerize_nodes", "wirefilters": "containerize_wirefilters"},
}


class InProcessAction(ActionBase):
    """Action plugin base: run the module of the same name in-process on the local connection."""

    _supports_check_mode = True
    _supports_async = True

    def _can_run_in_process(self) -> bool:
        return (
            self._connection.transport in ("local", "ansible.builtin.local")
            and not self._play_context.become
            and not self._task.async_val
            and os.environ.get("CONTAINERIZE_IN_PROCESS", "1") != "0"
        )

    def _module_args(self, task_vars: dict) -> dict:
        """The task's arguments, and the plan's for those it leaves out (PLAN_ARGUMENTS)."""
        module_args = dict(self._task.args)
        self._add_plan_arguments(module_args, task_vars, PLAN_ARGUMENTS.get(self._task.action.rsplit(".", 1)[-1], {}))
        return module_args

    def _add_plan_arguments(self, module_args: dict, task_vars: dict, plan: dict) -> None:
        """Set each option of PLAN (option -> plan variable) that MODULE_ARGS leaves out to the variable's value."""
        for option, variable in plan.items():
            if option not in module_args and variable in task_vars:
                value = task_vars[variable]
                module_args[option] = self._templar.template(value) if isinstance(value, str) else value

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        if not self._can_run_in_process():
            result.update(self._execute_module(module_args=self._module_args(task_vars), task_vars=task_vars,
                                               wrap_async=self._task.async_val))
            return result
        module_name = self._task.action
        module_args = self._module_args(task_vars)
        self._update_module_args(module_name, module_args, task_vars)
        path = self._shared_loader_obj.module_loader.find_plugin(module_name, mod_type=".py")
        if not path:
            result.update(self._execute_module(module_args=module_args, task_vars=task_vars))
            return result
        result.update(self._parse_returned_data(_run_module_file(path, module_args), PROFILE))
        for key in [k for k in result if k.startswith("_ansible_")]:
            del result[key]
        return result


def _run_module_file(path: str, module_args: dict) -> dict:
    """Execute the module's main() with these arguments; return what the executor would have seen."""
    encoder = module_json.get_module_encoder(PROFILE, module_json.Direction.CONTROLLER_TO_MODULE)
    saved = basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=encoder).encode()
    basic._ANSIBLE_PROFILE = PROFILE
    stdout, stderr, rc = io.StringIO(), io.StringIO(), 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                module = load_module_file(path, f"containerize_inproc_{os.path.basename(path)[:-3]}")
                module.main()
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            except Exception:  # a module bug: report it as the executor would, not as a worker crash
                traceback.print_exc(file=stderr)
                rc = 1
    finally:
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = saved
    return {"rc": rc, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
