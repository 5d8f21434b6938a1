"""Load this collection's modules into the current interpreter (their main() not run).

The modules import their shared code as ``ansible_collections.containerize.deploy.plugins.module_utils``,
a name that resolves the same way under Ansible's collection loader (controller, AnsiballZ) and in a
plain interpreter where the collection is installed or the checkout is the working directory.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

COLLECTION = Path(__file__).resolve().parents[2]
PACKAGE = "ansible_collections.containerize.deploy.plugins"


def load_module_file(path: Path | str, name: str) -> ModuleType:
    """Import the module file PATH under NAME, fresh (a module's globals are per call in Ansible)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def collection_module(name: str) -> ModuleType:
    """The module NAME of this collection (plugins/modules/NAME.py), to call its functions directly."""
    return importlib.import_module(f"{PACKAGE}.modules.{name}")
