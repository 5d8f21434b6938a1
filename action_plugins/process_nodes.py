"""Action for the process_nodes module: in-process on local pnodes (see containerize/ansible_local.py)."""

import os
import sys

# this checkout's compiler package, whatever else is installed (action_plugins/ is beside containerize/)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
try:
    from containerize.ansible_local import InProcessAction as ActionModule  # noqa: F401, E402
except ImportError:  # the compiler package is not importable here: run the module the usual way
    from ansible.plugins.action.normal import ActionModule  # noqa: F401
