"""Action for the openvz_nodes module: run in-process on a local pnode (plugin_utils/in_process.py)."""

from ansible_collections.containerize.deploy.plugins.plugin_utils.in_process import InProcessAction as ActionModule  # noqa: F401
