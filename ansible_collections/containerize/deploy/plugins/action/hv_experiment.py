"""Action for the hv_experiment module: the role's shared scripts read on the controller, run in-process locally.

With network=true the module also runs the pnode's VDE network: the plan's switches, wirefilters and
uplinks are handed over as for vde_network, when the task does not give them.
With install_missing it installs the packages the module found missing, with ansible.builtin.apt, in
the same task. Around the module call it keeps the record of the kinds of nodes swapped in on the pnode,
which swapout.yml reads to skip the roles of other kinds (plugin_utils/swapped_kinds.py).
"""

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.containerize.deploy.plugins.plugin_utils.in_process import PLAN_ARGUMENTS
from ansible_collections.containerize.deploy.plugins.plugin_utils.role_files import RoleFilesAction
from ansible_collections.containerize.deploy.plugins.plugin_utils.swapped_kinds import SwappedKinds


class ActionModule(RoleFilesAction):
    FILE_OPTIONS = {"scripts_src": "scripts"}

    def _module_args(self, task_vars: dict) -> dict:
        module_args = super()._module_args(task_vars)
        if boolean(module_args.get("network", False), strict=False):
            self._add_plan_arguments(module_args, task_vars, PLAN_ARGUMENTS["vde_network"])
        return module_args

    def run(self, tmp=None, task_vars=None):
        record = SwappedKinds.for_task(task_vars or {}, self._task.args, self._task.check_mode)
        if record is not None:
            record.before_base()
        result = super().run(tmp, task_vars)
        self._install_missing(result, task_vars)
        if record is not None:
            record.after_base(result)
        return result

    def _install_missing(self, result: dict, task_vars: dict) -> None:
        """With install_missing, install the module's missing_packages with apt; failing names them."""
        missing = result.get("missing_packages") or []
        if result.get("failed") or not missing or not boolean(self._task.args.get("install_missing", False)):
            return
        apt = self._execute_module(module_name="ansible.builtin.apt", task_vars=task_vars, module_args={
            "name": missing, "state": "present", "update_cache": True, "cache_valid_time": 3600})
        if apt.get("failed"):
            result.update(failed=True, msg=f"installing the missing packages {', '.join(missing)}: {apt.get('msg')}")
            return
        result["installed_packages"] = missing
        result["changed"] = True
