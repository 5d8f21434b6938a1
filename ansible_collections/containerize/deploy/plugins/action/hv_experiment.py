"""Action for the hv_experiment module: the role's shared scripts read on the controller, run in-process locally."""

from ansible_collections.containerize.deploy.plugins.plugin_utils.role_files import RoleFilesAction


class ActionModule(RoleFilesAction):
    FILE_OPTIONS = {"scripts_src": "scripts"}
