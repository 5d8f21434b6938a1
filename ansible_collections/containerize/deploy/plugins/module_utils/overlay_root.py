"""Overlay roots of the openvz nodes: one unpacked template per pnode, shared read-only (module_utils of openvz_nodes).

With the disk mode `overlay` a container's root is an overlayfs: its lower layer is the template
unpacked once per pnode in ROOT/images/openvz/root-KEY (KEY from the template file's path, size
and mtime, so a changed template gets a new one), its upper and work layers are in the container's private area.
Making a container is then two mkdirs and a mount instead of unpacking some 400 MB, and its pages
of the shared files are shared too. The shared root stays as a cache of the pnode next to the
uncompressed template (images/openvz); nothing ever writes into it.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import threading

from ansible_collections.containerize.deploy.plugins.module_utils.image_cache import ROOT_NEEDS, root_lacks, unpack
from ansible_collections.containerize.deploy.plugins.module_utils.loop_disk import (
    ensure_shared,
    mount_fields,
    must,
)

_LOCK = threading.Lock()
MARK = ".containerize-complete"


def overlay_usable():
    """True when this kernel mounts overlayfs (the disk mode `auto` picks it then)."""
    try:
        with open("/proc/filesystems", encoding="ascii", errors="replace") as handle:
            return any(line.split()[-1:] == ["overlay"] for line in handle)
    except OSError:
        return False


def shared_root(tarball, cache_dir, source=None):
    """The directory holding TARBALL (an uncompressed template) unpacked, made once per pnode; its
    key comes from SOURCE (the template file TARBALL was decompressed from; TARBALL itself when None).

    Threads of one module and modules of several experiments may ask at once: a lock file in
    CACHE_DIR serializes them, and the root counts only once its mark is written. RuntimeError
    when the tarball does not unpack or is not a root file system.
    """
    source = source or tarball
    st = os.stat(source)
    key = hashlib.sha256(f"{os.path.abspath(source)}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
    root = os.path.join(cache_dir, f"root-{key}")
    if os.path.exists(os.path.join(root, MARK)):
        return root
    os.makedirs(cache_dir, mode=0o755, exist_ok=True)
    with _LOCK, open(os.path.join(cache_dir, ".root.lock"), "w", encoding="ascii") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(root, MARK)):
            return root
        tmp = f"{root}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(tmp, mode=0o755)
        try:
            unpack(tarball, tmp, source, f"the file system of {cache_dir}")
            lacks = root_lacks(tmp, ROOT_NEEDS[:2])  # (its network is made from outside: no modprobe, no ip)
            if lacks:
                raise RuntimeError(f"template {source}: {'; '.join(lacks)}")
            os.chmod(tmp, 0o755)
            os.replace(tmp, root)
            with open(os.path.join(root, MARK), "w", encoding="ascii") as mark:
                mark.write(tarball + "\n")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def layers(private):
    """(upper, work) directories of the container whose private area is PRIVATE."""
    return os.path.join(private, "upper"), os.path.join(private, "work")


def mount_overlay(lower, private, target, shared_dir):
    """Mount the overlay of LOWER (read-only) and PRIVATE's upper and work layers on TARGET."""
    upper, work = layers(private)
    for path in (lower, upper, work, target):
        if any(c in path for c in ",:\n"):
            raise RuntimeError(f"{path}: an overlay layer's path may not hold ',', ':' or a newline")
    for path in (upper, work):
        os.makedirs(path, mode=0o755, exist_ok=True)
    ensure_shared(shared_dir)
    must(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", target],
         f"mount the overlay root {target}")


def overlay_lower(target):
    """The lower directory of the overlay mounted at TARGET; None when TARGET is no overlay mount."""
    fields = mount_fields(target)
    if fields is None or fields[fields.index("-") + 1] != "overlay":
        return None
    for option in fields[-1].split(","):
        if option.startswith("lowerdir="):
            return option[len("lowerdir="):]
    return ""
