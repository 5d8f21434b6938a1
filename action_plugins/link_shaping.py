"""Action for the link_shaping module: in-process on local pnodes (see containerize/ansible_local.py)."""

try:
    from containerize.ansible_local import InProcessAction as ActionModule  # noqa: F401
except ImportError:  # the compiler package is not importable here: run the module the usual way
    from ansible.plugins.action.normal import ActionModule  # noqa: F401
