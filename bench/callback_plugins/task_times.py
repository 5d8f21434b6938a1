"""Bench helper: the wall time of every task (all hosts together), appended as JSON lines to $TASK_TIMES_FILE.

ansible.posix's profile_tasks does this for a terminal; this one writes a file bench/speed.py reads.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_times
type: aggregate
short_description: write each task's wall time to $TASK_TIMES_FILE (benchmarks only)
description: One JSON object per task, {task, seconds}, in the order the tasks ran; the last one is the play's end.
requirements: [TASK_TIMES_FILE set in the environment]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._current = None
        self._started = None

    def _close(self):
        if self._current is None:
            return
        entry = {"task": self._current, "seconds": round(time.monotonic() - self._started, 3)}
        with open(os.environ["TASK_TIMES_FILE"], "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
        self._current = None

    def _open(self, name):
        self._close()
        self._current = name
        self._started = time.monotonic()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._open(task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._open(task.get_name())

    def v2_playbook_on_stats(self, stats):
        self._close()
