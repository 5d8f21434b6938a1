# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The records of a pnode's process nodes (and the namespaces of its openvz nodes): one file,
run_dir/process-nodes.json, {node: {"namespace": NS, "tc": {ifname: tbf parameters}}}.

The namespace is recorded before it is made, so a swap-out after a failure still finds it; the tbf
parameters because the kernel does not give them back as they were set. One file per pnode, not per
node: each file made costs an inode, which is slow to allocate on some file systems (shared_files.py).
The records of an earlier version, NODE.ns (the namespace; a second line of tbf JSON) and NODE.tc.json,
are still read, and removed when the record is next saved. Worker threads set records in memory (under
a lock); the module saves them. Standard library only (see daemons.py).
"""

from __future__ import annotations

import json
import os
import threading

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    read_json,
    read_text,
    remove_path,
    write_json,
)

RECORD = "process-nodes.json"
OLD_SUFFIXES = (".ns", ".tc.json")  # an earlier version's record files, NODE.ns and NODE.tc.json


def _old_record(run_dir, node):
    """(namespace, tc) of NODE's records of an earlier version ("" and {} when there are none)."""
    first, _, rest = (read_text(os.path.join(run_dir, node + ".ns")) or "").partition("\n")
    try:
        tc = json.loads(rest) if rest.strip() else read_json(os.path.join(run_dir, node + ".tc.json"))
    except ValueError:
        tc = None
    return first.strip(), tc if isinstance(tc, dict) else {}


def old_record_nodes(entries):
    """The nodes with a record file of an earlier version among the run directory's ENTRIES."""
    return sorted({entry[: -len(suffix)] for entry in entries for suffix in OLD_SUFFIXES
                   if entry.endswith(suffix) and "." not in entry[: -len(suffix)]})


class NodeRecords:
    """The records of RUN_DIR, whose listing is ENTRIES (for the files of an earlier version)."""

    def __init__(self, run_dir, entries=()):
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, RECORD)
        data = read_json(self.path) or {}
        self.nodes = {str(node): {"namespace": str(rec.get("namespace") or ""), "tc": rec.get("tc") or {}}
                      for node, rec in (data.items() if isinstance(data, dict) else ()) if isinstance(rec, dict)}
        self.old = old_record_nodes(entries)
        for node in self.old:
            if node not in self.nodes:
                namespace, tc = _old_record(run_dir, node)
                self.nodes[node] = {"namespace": namespace, "tc": tc}
        self.changed = bool(self.old)
        self._lock = threading.Lock()

    def namespace(self, node):
        return (self.nodes.get(node) or {}).get("namespace", "")

    def tc(self, node):
        return (self.nodes.get(node) or {}).get("tc", {})

    def namespaces(self):
        """{node: namespace} of every record that names one."""
        return {node: rec["namespace"] for node, rec in self.nodes.items() if rec["namespace"]}

    def set(self, node, namespace=None, tc=None):
        """Record NODE's NAMESPACE and/or TC (in memory until save)."""
        with self._lock:
            rec = self.nodes.setdefault(node, {"namespace": "", "tc": {}})
            for key, value in (("namespace", namespace), ("tc", tc)):
                if value is not None and rec[key] != value:
                    rec[key] = value
                    self.changed = True

    def forget(self, nodes):
        with self._lock:
            for node in nodes:
                if self.nodes.pop(node, None) is not None:
                    self.changed = True

    def save(self):
        """Write the records (a reader sees the old file or the new one), or remove the file when none is
        left; the files of an earlier version go."""
        with self._lock:
            if not self.changed:
                return
            if self.nodes:
                os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
                write_json(self.path, self.nodes)
            else:
                remove_path(self.path)
            for node in self.old:
                for suffix in OLD_SUFFIXES:
                    remove_path(os.path.join(self.run_dir, node + suffix))
            self.old, self.changed = [], False
