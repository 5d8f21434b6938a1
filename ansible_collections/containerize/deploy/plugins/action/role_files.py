"""Action for role_files: read the role's files on the controller, then run the module (in-process locally)."""

from ansible_collections.containerize.deploy.plugins.plugin_utils.role_files import RoleFilesAction as ActionModule  # noqa: F401
