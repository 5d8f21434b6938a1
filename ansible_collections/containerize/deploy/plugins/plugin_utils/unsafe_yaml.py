"""The YAML loader for an experiment directory's files, shared by the compiler and the inventory plugin.

The compiler tags text that looks like Jinja ``!unsafe`` so that Ansible keeps it literal; this safe
loader reads such values as the plain data they are. PyYAML only (no Ansible), so the compiler can
use it without importing Ansible.
"""

from __future__ import annotations

import yaml

UNSAFE_TAG = "!unsafe"


class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader (the C one when there is one) that reads ``!unsafe`` values as plain data."""


def _construct_unsafe(loader, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


Loader.add_constructor(UNSAFE_TAG, _construct_unsafe)
