"""Action for role_files: read the role's files on the controller, then run the module (in-process locally)."""

import os

from ansible.errors import AnsibleActionFail

from ansible_collections.containerize.deploy.plugins.plugin_utils.in_process import InProcessAction


class ActionModule(InProcessAction):
    """`src` names a directory of the role's files/; the module gets `files` ({name: {content, mode}})."""

    def _module_args(self, task_vars: dict) -> dict:
        module_args = super()._module_args(task_vars)
        src = module_args.pop("src", None)
        if src is not None:
            try:
                folder = self._find_needle("files", src)
            except Exception as exc:  # AnsibleError with the places it looked
                raise AnsibleActionFail(f"role_files: {exc}") from None
            files = {}
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if os.path.isfile(path):
                    with open(path, encoding="utf-8") as handle:
                        files[name] = {"content": handle.read(), "mode": f"{os.stat(path).st_mode & 0o777:04o}"}
            module_args["files"] = files
        return module_args
