"""Loop-mounted ext4 disks of the openvz nodes: sizes, images, mounts (module_utils of openvz_nodes).

A container's disk space is enforced by making its root an ext4 file system in a sparse image of
that size, loop-mounted on the root directory. The images live below a shared mount point (see
ensure_shared). Commands here run with a long timeout: unpacking a template or making a file system
may take minutes on a busy pnode.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import os
import re
import shutil
import threading

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import read_text, wait_for
from ansible_collections.containerize.deploy.plugins.module_utils.daemons import run as run_argv

SIZE_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?$", re.I)
MIN_IMAGE = 32 << 20
_SHARED_LOCK = threading.Lock()


def run(argv, stdin=None, timeout=600):
    """daemons.run() with the timeout of disk work (unpacking templates and mkfs take minutes)."""
    return run_argv(argv, stdin, timeout)


def must(argv, what, **kwargs):
    """Run ARGV; its output, or RuntimeError naming WHAT when it fails."""
    rc, out, err = run(argv, **kwargs)
    if rc != 0:
        raise RuntimeError(f"{what}: {' '.join(argv)}: {(err or out).strip()[-400:]}")
    return out


# --- sizes -----------------------------------------------------------------------------------------------


def parse_size(text):
    """Bytes of a disk space like 2G, 500M, 1.5T; a bare number counts 1K blocks (vzctl --diskspace)."""
    match = SIZE_RE.match(str(text).strip())
    if not match:
        raise ValueError(f"disk space {text!r} is not a size like 2G or 500M")
    number, unit = float(match.group(1)), match.group(2).upper() or "K"
    return int(number * (1 << (10 * "KMGT".index(unit) + 10)))


def human_size(size):
    """SIZE in bytes as the largest whole unit: 2G, 512M, 100K."""
    for unit, shift in (("T", 40), ("G", 30), ("M", 20)):
        if size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return f"{size >> 10}K"


def images_usable():
    """True when this pnode can make and loop-mount disk images (the disk mode `auto` picks then)."""
    return bool(shutil.which("mkfs.ext4") and shutil.which("losetup") and os.path.exists("/dev/loop-control"))


# --- mounts ----------------------------------------------------------------------------------------------


def mountinfo():
    """[(mount point, fields)] of this process's mounts, in /proc/self/mountinfo's order."""
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 4:
                    found.append((fields[4].encode().decode("unicode_escape"), fields))
    except OSError:
        pass
    return found


def mounts_below(path):
    """Mount points at or below PATH (deepest first)."""
    path = os.path.realpath(path)
    found = {point for point, _fields in mountinfo() if point == path or point.startswith(path + "/")}
    return sorted(found, key=lambda p: (-p.count("/"), p))


def mount_fields(path):
    """The mountinfo fields of the (topmost) mount at PATH; None when PATH is not a mount point."""
    path = os.path.realpath(path)
    found = None
    for point, fields in mountinfo():
        if point == path and "-" in fields:
            found = fields
    return found


def mount_propagation(path):
    """The optional fields (shared:N, master:N) of the mount at PATH; None when PATH is not a mount point."""
    fields = mount_fields(path)
    return None if fields is None else fields[6 : fields.index("-")]


def mount_source(path):
    """The device mounted at PATH, or None."""
    fields = mount_fields(path)
    return None if fields is None else fields[fields.index("-") + 2]


def ensure_shared(path):
    """Make PATH a mount point with shared propagation. Returns True when it had to.

    A loop mount is copied into every mount namespace made while it is mounted (ip netns exec
    makes one per command); where / is private those copies never see the unmount and keep the
    loop device busy. Below a shared mount, the copies are peers or slaves and follow the unmount.
    """
    with _SHARED_LOCK:  # (containers are made in threads: one bind mount)
        fields = mount_propagation(path)
        if fields is not None and any(f.startswith("shared:") for f in fields):
            return False
        os.makedirs(path, mode=0o755, exist_ok=True)
        if fields is None:
            must(["mount", "--bind", path, path], f"make {path} a mount point")
        must(["mount", "--make-shared", path], f"make {path} shared")
        return True


def unmount_all(path):
    """Undo every mount at or below PATH. Returns the mount points that remain."""
    for point in mounts_below(path):
        if run(["umount", point])[0] != 0:
            run(["umount", "-l", point])
    return mounts_below(path)


# --- loop devices and images -----------------------------------------------------------------------------


def loop_backing_file(device):
    """The file behind loop DEVICE (with " (deleted)" when it was removed), None for another device."""
    name = os.path.basename(device or "")
    text = read_text(f"/sys/block/{name}/loop/backing_file") if name.startswith("loop") else None
    return text.strip() if text else None


def loop_devices(image):
    """Loop devices attached to IMAGE."""
    rc, out, _err = run(["losetup", "-n", "-O", "NAME", "-j", image])
    return out.split() if rc == 0 else []


def detach_loops(image, timeout=10.0):
    """Detach every loop device of IMAGE (an unmounted one may linger until its autoclear)."""
    for device in loop_devices(image):
        run(["losetup", "-d", device])
    if not wait_for(lambda: not loop_devices(image), timeout):
        raise RuntimeError(f"loop devices of {image} stay attached: {', '.join(loop_devices(image))}")


def mount_image(image, target, shared_dir):
    """Loop-mount IMAGE on TARGET below SHARED_DIR; a reused loop device gets the image's current size."""
    ensure_shared(shared_dir)
    must(["mount", "-o", "loop", image, target], "mount the disk image")
    device = mount_source(target)
    if device and device.startswith("/dev/loop"):
        rc, out, _err = run(["blockdev", "--getsize64", device])
        if rc == 0 and out.strip().isdigit() and int(out) != os.path.getsize(image):
            must(["losetup", "-c", device], f"refresh the size of {device}")


def make_image(image, size, target, shared_dir):
    """A sparse ext4 image of SIZE bytes at IMAGE, loop-mounted on TARGET below SHARED_DIR."""
    with open(image, "wb") as handle:
        handle.truncate(size)
    must(["mkfs.ext4", "-q", "-F", "-m", "0", "-J", "size=8", "-E", "nodiscard,lazy_itable_init=1", image],
         "make the disk image")
    mount_image(image, target, shared_dir)


def resize_image(image, size, target, shared_dir):
    """Resize the ext4 IMAGE mounted on TARGET to SIZE bytes, offline, and mount it again."""
    if mounts_below(target) and unmount_all(target):
        raise RuntimeError(f"cannot unmount {target} to resize its disk image")
    detach_loops(image)
    run(["e2fsck", "-f", "-y", image])
    if size > os.path.getsize(image):
        with open(image, "r+b") as handle:
            handle.truncate(size)
        must(["resize2fs", image], "grow the disk image")
    else:
        must(["resize2fs", image, f"{size >> 10}K"], "shrink the disk image (does the data fit?)")
        with open(image, "r+b") as handle:
            handle.truncate(size)
    mount_image(image, target, shared_dir)
