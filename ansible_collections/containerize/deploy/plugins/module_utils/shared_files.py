# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files every process node of a pnode holds alike (pid, eid, info, /etc/hosts): one copy per
experiment in the run directory (run_dir/node-files/), which each node's file is a hard link of.

Why: each file made is an inode allocated, and allocating them can be the bulk of a swap-in. On an ext4
without a journal (as on this project's test machines) the allocator skips every inode freed in the last
minutes, so a swap-in soon after a swap-out scans past all the inodes that swap-out freed, for each file
it makes: the cost grows with the square of the files per node. Linked (and with the nodes' records in one
file, node_record.py), a process node makes 6 files and directories instead of 12.

A link shares its inode, so writing one node's file in place writes them all: the plan wants them alike,
and process nodes share the pnode's file system anyway. The shared copy is brought to the plan in place
(running nodes see the new text through their bind mounts) before the nodes are looked at; a node's file
that is not a link of it (made before, or where no link can be made: another file system) is kept up
to date as its own file. Standard library only (see daemons.py).
"""

from __future__ import annotations

import os
import shutil

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import read_text
from ansible_collections.containerize.deploy.plugins.module_utils.netns import write_in_place

SHARED_DIR = "node-files"


class SharedFiles:
    """The shared copies below RUN_DIR/node-files; CHECK: plan only."""

    def __init__(self, run_dir, check):
        self.directory = os.path.join(run_dir, SHARED_DIR)
        self.check = check
        self.ready = {}  # name -> path of a copy that holds the planned text

    def prepare(self, name, text, mode=0o644):
        """Bring the copy NAME to TEXT and MODE (in place when it exists); True when that is a change."""
        path = os.path.join(self.directory, name)
        try:
            current_mode = os.stat(path).st_mode & 0o777
        except OSError:
            current_mode = None
        changed = read_text(path) != text or current_mode != mode
        if changed and not self.check:
            os.makedirs(self.directory, mode=0o755, exist_ok=True)
            write_in_place(path, text, mode)
            os.chmod(path, mode)
        if not self.check:
            self.ready[name] = path
        return changed

    def place(self, path, name, text, mode=0o644, write=write_in_place):
        """Make PATH a link of the copy NAME when PATH is new and the copy is prepared; else WRITE(PATH, TEXT, MODE)."""
        shared = self.ready.get(name)
        if shared and not os.path.lexists(path):
            try:
                os.link(shared, path)
                return
            except OSError:  # another file system, or links not allowed: the node gets its own file
                pass
        write(path, text, mode)

    def remove(self):
        """Remove the shared copies (a node's link keeps the text until the node goes); True if they were there."""
        existed = os.path.isdir(self.directory)
        if existed and not self.check:
            shutil.rmtree(self.directory, ignore_errors=True)
        return existed
