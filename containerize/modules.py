"""Load this project's Ansible modules (library/) into this interpreter, with their module_utils.

The modules import their shared helpers as ``ansible.module_utils.containerize_daemons``: Ansible packs
module_utils/ with a module it sends to a pnode, and here the same name is made to resolve to
module_utils/ of this repository, for the commands and the in-process action that call modules directly.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "library"
MODULE_UTILS = REPO / "module_utils"


def use_project_module_utils() -> None:
    """Make ``ansible.module_utils.containerize_*`` importable from this repository's module_utils/."""
    import ansible.module_utils

    if str(MODULE_UTILS) not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(str(MODULE_UTILS))


def load_module_file(path: Path | str, name: str) -> ModuleType:
    """Import the module file PATH under NAME (its main() not run)."""
    use_project_module_utils()
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def library_module(name: str) -> ModuleType:
    """Import library/NAME.py (an Ansible module of this project) to call its functions directly."""
    return load_module_file(LIBRARY / f"{name}.py", f"containerize_library_{name}")
