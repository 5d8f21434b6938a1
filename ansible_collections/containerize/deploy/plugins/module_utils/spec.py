"""The argument spec of the options every module shares (documented once in doc_fragments/experiment.py).

Standard library only (see daemons.py).
"""

from __future__ import annotations


def experiment_spec(states=("present", "absent")):
    """run_dir, exp_name, project, experiment and state (the fragment's DOCUMENTATION)."""
    return {
        "run_dir": {"type": "path", "required": True},
        "exp_name": {"type": "str", "required": True},
        "project": {"type": "str", "required": True},
        "experiment": {"type": "str", "required": True},
        "state": {"type": "str", "choices": list(states), "default": "present"},
    }


def guests_spec(workers=4):
    """root, scripts_dir, hosts, guests and workers (the fragment's GUESTS)."""
    return {
        "root": {"type": "path", "default": "/var/containers"},
        "scripts_dir": {"type": "path"},
        "hosts": {"type": "raw", "default": []},
        "guests": {"type": "list", "elements": "dict", "default": []},
        "workers": {"type": "int", "default": workers},
    }
