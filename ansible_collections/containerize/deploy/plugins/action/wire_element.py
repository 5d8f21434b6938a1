"""Action for wire_element: read the element's source on the controller (as role_files), then run the module."""

from ansible_collections.containerize.deploy.plugins.plugin_utils.role_files import RoleFilesAction as ActionModule  # noqa: F401
