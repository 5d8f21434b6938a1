"""A directory that holds exactly a given set of files (content and mode): role_files and hv_experiment.

FILES is a dict of plain file name to {content, mode} (mode an octal string such as "0755"), as the
RoleFilesAction action plugins read a role's files/ on the controller.
"""

from __future__ import annotations

import os
import shutil

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import read_text, write_new_or_replace
from ansible_collections.containerize.deploy.plugins.module_utils.names import plain_file_name


def bad_name(files):
    """The first name of FILES that is not a plain file name, or None."""
    return next((name for name in files if not plain_file_name(name)), None)


def plan(dest, files):
    """(write, remove, before, after): what makes DEST hold exactly FILES; nothing is touched.

    WRITE is [(name, content, mode)], REMOVE the names in DEST that FILES does not have; BEFORE and
    AFTER map each name of FILES to {content, mode} (content None when missing), for a diff.
    """
    write, before, after = [], {}, {}
    for name, spec in sorted(files.items()):
        path = os.path.join(dest, name)
        mode = int(str(spec.get("mode") or "0644"), 8)
        have = read_text(path)
        have_mode = os.stat(path).st_mode & 0o777 if have is not None else None
        before[name] = {"content": have, "mode": f"{have_mode:04o}" if have_mode is not None else None}
        after[name] = {"content": spec.get("content", ""), "mode": f"{mode:04o}"}
        if have != after[name]["content"] or have_mode != mode:
            write.append((name, after[name]["content"], mode))
    present = sorted(os.listdir(dest)) if os.path.isdir(dest) else []
    remove = [name for name in present if name not in files]
    return write, remove, before, after


def apply(dest, write, remove):
    """Carry out plan()'s WRITE and REMOVE in DEST (made with its parents when missing)."""
    os.makedirs(dest, mode=0o755, exist_ok=True)
    for name, content, mode in write:
        path = os.path.join(dest, name)
        write_new_or_replace(path, content, mode)
        os.chmod(path, mode)
    for name in remove:
        path = os.path.join(dest, name)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
