"""Test helper: record every changed task result as a JSON line in the file $RECORD_CHANGES_FILE.

Enabled by tests/e2e.py playbook_changes(); lets a test assert *what* a re-run repaired, not only how much.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record_changes
type: aggregate
short_description: write changed task results to $RECORD_CHANGES_FILE (tests only)
description: One JSON object per changed task and host, with the module's result minus diff and invocation.
requirements: [RECORD_CHANGES_FILE set in the environment]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_changes"
    CALLBACK_NEEDS_ENABLED = True

    def v2_runner_on_ok(self, result):
        if not result._result.get("changed"):
            return
        kept = {k: v for k, v in result._result.items() if k not in ("diff", "invocation") and not k.startswith("_")}
        entry = {"task": result._task.get_name(), "host": result._host.get_name(), "result": kept}
        with open(os.environ["RECORD_CHANGES_FILE"], "a", encoding="utf-8") as out:
            out.write(json.dumps(entry, default=str) + "\n")
