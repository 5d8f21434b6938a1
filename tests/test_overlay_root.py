"""overlay_root: the template unpacked once per pnode, and a container's overlay on it (real tar, real mounts)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

import pytest

from ansible_collections.containerize.deploy.plugins.module_utils.loop_disk import mounts_below, unmount_all
from ansible_collections.containerize.deploy.plugins.module_utils.overlay_root import (
    MARK,
    mount_overlay,
    overlay_lower,
    overlay_usable,
    shared_root,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not overlay_usable(), reason="needs root and overlayfs")


def _tarball(path, names):
    with tarfile.open(path, "w") as tar:
        for name in names:
            data = f"#!/bin/sh\n# {name}\n".encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_shared_root_is_unpacked_once_and_checked(tmp_path):
    tarball = _tarball(tmp_path / "t.tar", ["bin/sh", "sbin/init", "etc/hostname"])
    cache = tmp_path / "cache"
    root = shared_root(tarball, str(cache))
    assert os.path.isfile(os.path.join(root, "sbin", "init")) and os.path.isfile(os.path.join(root, MARK))
    before = os.stat(os.path.join(root, "etc", "hostname")).st_ino
    assert shared_root(tarball, str(cache)) == root
    assert os.stat(os.path.join(root, "etc", "hostname")).st_ino == before  # not unpacked again
    bad = _tarball(tmp_path / "bad.tar", ["etc/motd"])
    with pytest.raises(RuntimeError, match=r"bad\.tar: not a root file system"):
        shared_root(bad, str(cache))
    assert sorted(os.listdir(cache)) == [".root.lock", os.path.basename(root)]  # nothing half-made left


def test_overlay_writes_go_to_the_container_only(tmp_path):
    lower = shared_root(_tarball(tmp_path / "t.tar", ["bin/sh", "sbin/init", "etc/hostname"]), str(tmp_path / "c"))
    shared = tmp_path / "openvz"
    private = shared / "n1"
    target = private / "root"
    target.mkdir(parents=True)
    try:
        mount_overlay(lower, str(private), str(target), str(shared))
        assert overlay_lower(str(target)) == lower
        (target / "etc" / "hostname").write_text("n1\n")
        (target / "new").write_text("x")
        assert (private / "upper" / "etc" / "hostname").read_text() == "n1\n"
        assert "n1" not in open(os.path.join(lower, "etc", "hostname")).read()
        assert not os.path.exists(os.path.join(lower, "new"))
    finally:
        assert unmount_all(str(shared)) == []
    assert overlay_lower(str(target)) is None and mounts_below(str(tmp_path)) == []
    assert os.listdir(target) == []
    with pytest.raises(RuntimeError, match="may not hold"):
        mount_overlay(lower, str(tmp_path / "a,b"), str(target), str(shared))
    subprocess.run(["umount", str(shared)], check=False, capture_output=True)
