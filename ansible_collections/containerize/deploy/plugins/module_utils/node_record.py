# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's record in the run directory, run_dir/NODE.ns: its namespace on the first line, then (for a
node with end-node shaping) its tbf parameters as one JSON line, as the kernel does not give them back
as they were set.

One file per node, written in place: each file made costs an inode, which is slow to allocate on some
file systems (shared_files.py), so the shaping record that was NODE.tc.json is a line of NODE.ns. A
NODE.tc.json of an earlier version is still read, and removed when the record is next written.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import json
import os

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import read_json, read_text, remove_path
from ansible_collections.containerize.deploy.plugins.module_utils.netns import write_in_place

SUFFIX = ".ns"
OLD_TC_SUFFIX = ".tc.json"


def record_path(run_dir, node):
    return os.path.join(run_dir, node + SUFFIX)


def parse(text):
    """(namespace, tc) of a record's TEXT: the namespace ("" when none), the tbf record ({} when none)."""
    first, _, rest = (text or "").partition("\n")
    try:
        tc = json.loads(rest) if rest.strip() else {}
    except ValueError:
        tc = {}
    return first.strip(), tc if isinstance(tc, dict) else {}


def read(run_dir, node):
    """(namespace, tc) recorded for NODE; the tc of an earlier version's NODE.tc.json when the record has none."""
    namespace, tc = parse(read_text(record_path(run_dir, node)))
    if not tc:
        tc = read_json(os.path.join(run_dir, node + OLD_TC_SUFFIX)) or {}
    return namespace, tc


def text(namespace, tc):
    """The record's text for NAMESPACE and the tbf record TC."""
    return namespace + "\n" + (json.dumps(tc, sort_keys=True) + "\n" if tc else "")


def write(run_dir, node, namespace, tc):
    """Record NAMESPACE and TC for NODE in place; an earlier version's NODE.tc.json goes."""
    write_in_place(record_path(run_dir, node), text(namespace, tc))
    remove_path(os.path.join(run_dir, node + OLD_TC_SUFFIX))
