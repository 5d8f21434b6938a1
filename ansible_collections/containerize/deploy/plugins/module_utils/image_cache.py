"""The qemu nodes' images on a pnode: fetched once into the image cache, verified, unpacked.

A directory or a tarball is a rootfs image (unpacked once, used by each node through an overlay);
anything else is a disk image (raw or qcow2, maybe compressed; each node gets a qcow2 overlay).
Standard library only (see daemons.py).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import tarfile
import threading
import urllib.parse
import urllib.request
import zlib

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    read_json,
    read_text,
    remove_path,
    run,
    write_json,
)

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tar.bz2", ".tbz2")
COMPRESSED = {".gz": "gzip", ".xz": "xz", ".bz2": "bzip2", ".zst": "zstd"}
DISK_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vpc", "vhdx", "qed")


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def one_line(what):
    """WHAT (an error or its text) on one line: its lines joined by "; ", without tar's closing chatter."""
    if isinstance(what, str) or hasattr(what, "code"):  # (an HTTPError says its status itself)
        text = str(what)
    else:
        text = str(getattr(what, "reason", None) or what)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("tar: Error is not recoverable",
                                                            "tar: Child returned status"))] or lines
    return "; ".join(dict.fromkeys(lines)) or "unknown error"


def split_url(url):
    """(url without fragment, {fragment key: value})."""
    base, _sep, fragment = url.partition("#")
    return base, dict(urllib.parse.parse_qsl(fragment))


def image_kind(url):
    base, frag = split_url(url)
    if frag.get("kind") in ("rootfs", "disk"):
        return frag["kind"]
    path = urllib.parse.urlparse(base).path if "://" in base else base
    if "://" not in base and os.path.isdir(path):
        return "rootfs"
    return "rootfs" if path.endswith(TAR_SUFFIXES) else "disk"


class Image:
    """One base image in the pnode's cache (a local directory is used in place)."""

    def __init__(self, ctx, url):
        self.ctx = ctx
        self.url = url
        self.base_url, frag = split_url(url)
        self.kind = image_kind(url)
        self.remote = self.base_url.startswith(("http://", "https://"))
        self.local_dir = None if self.remote or not os.path.isdir(self.base_url) else os.path.abspath(self.base_url)
        self.key = hashlib.sha256(self.base_url.encode()).hexdigest()[:16]
        self.dir = os.path.join(ctx.cache, self.key)
        self.meta_path = os.path.join(self.dir, "meta.json")
        want = ctx.checksums.get(url) or ctx.checksums.get(self.base_url) or frag.get("sha256")
        if want and ":" in want:
            algo, _colon, want = want.partition(":")
            if algo.lower() != "sha256":
                raise RuntimeError(f"image {url}: only sha256 checksums are supported, not {algo}")
        self.want = want.lower() if want else None

    def meta(self):
        return read_json(self.meta_path) or {}

    @property
    def base(self):
        """The rootfs directory or disk file nodes use (None before the image is fetched)."""
        if self.local_dir:
            return self.local_dir
        name = self.meta().get("base")
        return os.path.join(self.dir, name) if name else None

    @property
    def ident(self):
        """What identifies this version of the image: its sha256, or the directory used in place."""
        return self.local_dir or self.meta().get("sha256")

    def _source_stat(self):
        if self.remote:
            return None
        st = os.stat(self.base_url)
        return [st.st_size, int(st.st_mtime)]

    def ready(self):
        """True when the cached copy is there and still matches its source and checksum."""
        if self.local_dir:
            return True
        meta = self.meta()
        if meta.get("url") != self.base_url or not self.base or not os.path.exists(self.base):
            return False
        if self.want and meta.get("sha256") != self.want:
            return False
        if not self.remote:
            try:
                if meta.get("source") != self._source_stat():
                    return False
            except OSError:
                return True  # the source went away: keep using the verified copy
        return True

    def disk_format(self):
        return self.meta().get("format", "raw")

    def _open_source(self):
        if self.remote:
            request = urllib.request.Request(self.base_url, headers={"User-Agent": "containerize"})  # noqa: S310
            return urllib.request.urlopen(request, timeout=self.ctx.timeout)  # noqa: S310
        return open(self.base_url, "rb")

    def _sidecar_checksum(self):
        try:
            if self.remote:
                request = urllib.request.Request(self.base_url + ".sha256", headers={"User-Agent": "containerize"})  # noqa: S310
                with urllib.request.urlopen(request, timeout=self.ctx.timeout) as handle:  # noqa: S310
                    text = handle.read(4096).decode(errors="replace")
            else:
                text = read_text(self.base_url + ".sha256")
        except OSError:
            return None
        token = (text or "").split()
        return token[0].lower() if token and re.fullmatch(r"[0-9a-fA-F]{64}", token[0]) else None

    def fetch(self):
        """Download or copy the image, verify it, decompress or unpack it. Returns warnings.

        Each version lands in its own directory or file (named by its checksum), so nodes still
        running on an older version keep their base; swap-out with purge_cache removes them all.
        A failure raises RuntimeError with one line and leaves nothing of this fetch in the cache.
        """
        try:
            return self._fetch()
        except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise RuntimeError(f"image {self.base_url}: cannot fetch: {one_line(exc)}") from None
        except RuntimeError as exc:
            raise RuntimeError(one_line(exc)) from None
        finally:
            if not os.path.exists(self.meta_path):
                try:
                    os.rmdir(self.dir)  # (made for this fetch, and empty after its failure)
                except OSError:
                    pass

    def _fetch(self):
        warnings = []
        want = self.want or self._sidecar_checksum()
        if not want:
            warnings.append(f"image {self.base_url} has no checksum (give one in qemu_image_checksums)")
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        source = self._source_stat()
        download = os.path.join(self.dir, f"download.{os.getpid()}")
        digest = hashlib.sha256()
        try:
            with self._open_source() as src, open(download, "wb") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    dst.write(chunk)
            got = digest.hexdigest()
            if want and got != want:
                raise RuntimeError(f"image {self.base_url}: sha256 {got} does not match the expected {want}")
            path = urllib.parse.urlparse(self.base_url).path if self.remote else self.base_url
            base = os.path.join(self.dir, f"{'root' if self.kind == 'rootfs' else 'disk'}-{got[:16]}")
            fmt = "dir"
            if os.path.exists(base):
                fmt = self.meta().get("format", "raw") if self.kind == "disk" else "dir"
            elif self.kind == "rootfs":
                tmp = base + ".new"
                remove_path(tmp)
                os.makedirs(tmp, mode=0o755)
                rc, _out, err = run(["tar", "--numeric-owner", "-xpf", download, "-C", tmp], timeout=3600)
                if rc != 0:
                    remove_path(tmp)
                    raise RuntimeError(f"image {self.base_url}: cannot unpack: {one_line(err)}")
                os.rename(tmp, base)
            else:
                suffix = next((s for s in COMPRESSED if path.endswith(s)), None)
                if suffix:
                    self._decompress(download, base, COMPRESSED[suffix])
                else:
                    os.rename(download, base)
                rc, out, err = run(["qemu-img", "info", "--output=json", base], timeout=60)
                if rc != 0:
                    remove_path(base)
                    raise RuntimeError(f"image {self.base_url}: qemu-img info failed: {err.strip()}")
                fmt = json.loads(out).get("format", "raw")
                if fmt not in DISK_FORMATS:
                    remove_path(base)
                    raise RuntimeError(f"image {self.base_url}: unsupported disk format {fmt}")
                os.chmod(base, 0o444)
        finally:
            remove_path(download)
        write_json(self.meta_path, {"url": self.base_url, "sha256": got, "kind": self.kind, "format": fmt,
                                    "base": os.path.basename(base), "source": source})  # fmt: skip
        return warnings

    def _decompress(self, src, dst, method):
        if method == "zstd":
            rc, _out, err = run(["zstd", "-q", "-d", "-f", "-o", dst, src], timeout=3600)
            if rc != 0:
                remove_path(dst)
                raise RuntimeError(f"image {self.base_url}: zstd failed: {one_line(err)}")
            return
        opener = {"gzip": gzip.open, "xz": lzma.open, "bzip2": bz2.open}[method]
        try:
            with opener(src, "rb") as fin, open(dst + ".new", "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            remove_path(dst + ".new")
            raise RuntimeError(f"image {self.base_url}: cannot decompress: {one_line(exc)}") from None
        os.rename(dst + ".new", dst)


# what a root must hold to boot as a node: [(what is missing, paths of which one will do)]
ROOT_NEEDS = [
    ("no shell (/bin/sh)", ("bin/sh", "usr/bin/sh")),
    ("no init (/sbin/init)", ("sbin/init", "usr/sbin/init", "lib/systemd/systemd", "usr/lib/systemd/systemd")),
    ("no modprobe (kmod or busybox) to load the NIC driver",
     ("sbin/modprobe", "usr/sbin/modprobe", "bin/modprobe", "usr/bin/modprobe", "bin/busybox", "usr/bin/busybox")),
    ("no ip (iproute2 or busybox) to configure the interfaces",
     ("sbin/ip", "usr/sbin/ip", "bin/ip", "usr/bin/ip", "bin/busybox", "usr/bin/busybox")),
]


def root_lacks(root, needs=ROOT_NEEDS):
    """What the root directory ROOT lacks of NEEDS to boot as a node ([] when nothing)."""
    if not os.path.isdir(root):
        return ["not a root file system (no directory)"]
    missing = [what for what, paths in needs if not any(os.path.lexists(os.path.join(root, p)) for p in paths)]
    if len(missing) == len(needs):
        return [f"not a root file system ({'; '.join(missing)})"]
    return missing


MIN_DISK = 1 << 20


def unpacked_size(tarball):
    """Bytes the files of the (uncompressed) TARBALL take, counted in 4 KiB blocks as a file system would."""
    total = 0
    with tarfile.open(tarball, "r:") as tar:
        for member in tar:
            total += (member.size + 4095) // 4096 * 4096 if member.isfile() else 4096
    return total


def check_fits(tarball, size, what, shown):
    """RuntimeError naming WHAT when the template SHOWN (uncompressed: TARBALL) does not fit in SIZE bytes."""
    try:
        need = unpacked_size(tarball)
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise RuntimeError(f"template {shown}: not a readable tar archive ({one_line(exc)})") from None
    if need > size:
        raise RuntimeError(f"{what} is too small for template {shown}: its files take {need / (1 << 20):.1f} MiB")


def unpack(tarball, root, shown, what):
    """Unpack TARBALL (the template SHOWN) into ROOT; one line when it fails (WHAT ran out of space...)."""
    rc, out, err = run(["tar", "--numeric-owner", "-xpf", tarball, "-C", root], timeout=3600)
    if rc == 0:
        return
    if "No space left on device" in err:
        raise RuntimeError(f"{what} is too small for template {shown}: unpacking it ran out of space")
    raise RuntimeError(f"template {shown}: cannot unpack: {one_line(err or out)}")


def disk_lacks(path, fmt):
    """What the disk image PATH (format FMT) lacks to hold a node's root ([] when nothing we can tell)."""
    rc, out, err = run(["qemu-img", "info", "-U", "--output=json", "-f", fmt, path], timeout=60)
    if rc != 0:
        return [f"qemu-img info failed: {one_line(err)}"]
    size = int(json.loads(out).get("virtual-size") or 0)
    if size < MIN_DISK:
        return [f"a disk of {size} bytes is too small to hold a root file system (at least 1 MiB)"]
    return []


_PLAIN_LOCK = threading.Lock()
_SHORT_SUFFIXES = {".tgz": ".gz", ".txz": ".xz", ".tbz2": ".bz2", ".tzst": ".zst", ".zstd": ".zst"}


def plain_tarball(path, cache_dir):
    """PATH, or an uncompressed copy of the tarball PATH made once in CACHE_DIR (each container's
    `tar -x` then skips the decompression: about 1.5 s of CPU per container for the Debian image)."""
    ext = os.path.splitext(path)[1]
    suffix = ext if ext in COMPRESSED else _SHORT_SUFFIXES.get(ext)
    if not suffix:
        return path
    st = os.stat(path)
    key = hashlib.sha256(f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
    out = os.path.join(cache_dir, f"template-{key}.tar")
    with _PLAIN_LOCK:  # (the module prepares containers in threads: one decompression for all)
        if os.path.exists(out):
            return out
        os.makedirs(cache_dir, mode=0o755, exist_ok=True)
        tmp = f"{out}.tmp{os.getpid()}"
        try:
            if COMPRESSED[suffix] == "zstd":
                rc, _out, err = run(["zstd", "-q", "-d", "-f", "-o", tmp, path], timeout=3600)
                if rc != 0:
                    raise RuntimeError(f"template {path}: zstd failed: {err.strip()}")
            else:
                opener = {"gzip": gzip.open, "xz": lzma.open, "bzip2": bz2.open}[COMPRESSED[suffix]]
                try:
                    with opener(path, "rb") as fin, open(tmp, "wb") as fout:
                        shutil.copyfileobj(fin, fout, 1 << 20)
                except (EOFError, zlib.error, lzma.LZMAError, OSError, ValueError) as exc:
                    raise RuntimeError(f"template {path}: cannot decompress: {exc}") from None
            os.replace(tmp, out)
        finally:
            remove_path(tmp)
    return out
