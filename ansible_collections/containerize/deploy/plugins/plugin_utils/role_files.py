"""Action plugin base for modules that take a role's files: read them on the controller, pass them as a dict."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from ansible_collections.containerize.deploy.plugins.plugin_utils.in_process import InProcessAction


class RoleFilesAction(InProcessAction):
    """Each option of FILE_OPTIONS names a directory of the role's files/; the module gets its files.

    The module's option (the value) is a dict of file name to {content, mode}, so the files reach
    the pnode in the same module call that puts them in place, however many there are.
    """

    FILE_OPTIONS = {"src": "files"}

    def _module_args(self, task_vars: dict) -> dict:
        module_args = super()._module_args(task_vars)
        for option, files_option in self.FILE_OPTIONS.items():
            src = module_args.pop(option, None)
            if src is not None:
                module_args[files_option] = self._read_role_files(src)
        return module_args

    def _read_role_files(self, src: str) -> dict:
        try:
            folder = self._find_needle("files", src)
        except Exception as exc:  # AnsibleError with the places it looked
            raise AnsibleActionFail(f"{self._task.action}: {exc}") from None
        files = {}
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as handle:
                    files[name] = {"content": handle.read(), "mode": f"{os.stat(path).st_mode & 0o777:04o}"}
        return files
