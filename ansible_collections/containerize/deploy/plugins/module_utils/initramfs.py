"""The qemu nodes' kernel and initramfs: the pnode's kernel, and a busybox initramfs made for it.

The initramfs holds the pnode's static busybox, the init script (the qemu role's files/init) and
the kernel modules it loads (virtio, 9p, file systems, with their dependencies), as a gzipped newc
cpio archive in the image cache, named by a hash of everything it holds.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import run
from ansible_collections.containerize.deploy.plugins.module_utils.image_cache import sha256_file

DIRECTORIES = ("bin", "dev", "proc", "sys", "newroot", "cz", "tmp", "modules")


def is_static_elf(path):
    """True when PATH is an ELF executable without a program interpreter."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            order = "little" if head[5] == 1 else "big"
            phoff = int.from_bytes(head[32:40], order)
            phentsize = int.from_bytes(head[54:56], order)
            phnum = int.from_bytes(head[56:58], order)
            handle.seek(phoff)
            table = handle.read(phentsize * phnum)
    except OSError:
        return False
    return all(int.from_bytes(table[i : i + 4], order) != 3 for i in range(0, len(table), phentsize))


def cpio_newc(entries):
    """ENTRIES: (name, mode, data or None, rdev (major, minor) or None). Returns the archive bytes."""
    out = io.BytesIO()
    for ino, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", None)], start=1):
        data = data or b""
        name_b = name.encode() + b"\0"
        major, minor = rdev or (0, 0)
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name_b), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.write(name_b)
        out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        out.write(data)
        out.write(b"\0" * ((4 - len(data) % 4) % 4))
    return out.getvalue()


def kernel_version(kernel):
    base = os.path.basename(kernel)
    return base[len("vmlinuz-") :] if base.startswith("vmlinuz-") else None


def default_kernel():
    """The newest /boot/vmlinuz-* whose modules are in /lib/modules (None when there is none)."""

    def key(path):
        return [int(p) if p.isdigit() else -1 for p in re.split(r"[.-]", kernel_version(path) or "")]

    kernels = [os.path.join("/boot", n) for n in os.listdir("/boot") if n.startswith("vmlinuz-")]
    kernels = [k for k in kernels if os.path.isdir(f"/lib/modules/{kernel_version(k)}")]
    return max(kernels, key=key) if kernels else None


def module_files(version, names):
    """Ordered .ko files (with dependencies) of NAMES for kernel VERSION; unknown names are skipped."""
    files = []
    for name in names:
        rc, out, _err = run(["modprobe", "-S", version, "--show-depends", name], timeout=60)
        if rc != 0:
            continue
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "insmod" and parts[1] not in files:
                files.append(parts[1])
    return files


def initramfs_plan(cache, version, busybox, init, modules, filesystems):
    """(path, builder) of the initramfs for kernel VERSION in CACHE: the name hashes everything it holds.

    INIT is the text of the init script. modules/order lists MODULES, always loaded;
    modules/filesystems the FILESYSTEMS tried one by one (each with its dependencies in
    modules/fs-NAME) until a disk root mounts.
    """
    base = module_files(version, modules)
    per_fs = {}
    for fs in filesystems:
        files = [f for f in module_files(version, [fs]) if f not in base]
        if files:
            per_fs[fs] = files
    every = base + [f for files in per_fs.values() for f in files if f not in base]
    every = list(dict.fromkeys(every))
    digest = hashlib.sha256(init.encode())
    digest.update(sha256_file(busybox).encode())
    digest.update(json.dumps([base, per_fs]).encode())
    for path in every:
        st = os.stat(path)
        digest.update(f"{path}:{st.st_size}:{int(st.st_mtime)}".encode())
    path = os.path.join(cache, f"initramfs-{version}-{digest.hexdigest()[:12]}.img")

    def listing(files):
        return ("".join(f"{os.path.basename(f)}\n" for f in files)).encode()

    def build():
        entries = [(d, 0o40755, None, None) for d in DIRECTORIES]
        entries.append(("dev/console", 0o20600, None, (5, 1)))
        entries.append(("dev/null", 0o20666, None, (1, 3)))
        with open(busybox, "rb") as handle:
            entries.append(("bin/busybox", 0o100755, handle.read(), None))
        entries.append(("init", 0o100755, init.encode(), None))
        for ko in every:
            with open(ko, "rb") as handle:
                entries.append((f"modules/{os.path.basename(ko)}", 0o100644, handle.read(), None))
        entries.append(("modules/order", 0o100644, listing(base), None))
        entries.append(("modules/filesystems", 0o100644, " ".join(per_fs).encode() + b"\n", None))
        for fs, files in per_fs.items():
            entries.append((f"modules/fs-{fs}", 0o100644, listing(files), None))
        os.makedirs(cache, mode=0o755, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as handle:
            handle.write(gzip.compress(cpio_newc(entries), compresslevel=6, mtime=0))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    return path, build
