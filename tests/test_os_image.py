"""The nodes' OS image builder: module_utils/os_image.py, the os_image module and `containerize image-build`.

The real build (mmdebstrap from Debian's package registry, ~40 s) is one slow test that builds into
the default cache, where the qemu and openvz tests find it afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

from ansible_collections.containerize.deploy.plugins.module_utils.os_image import (
    DEFAULT_DIR,
    BuildError,
    OsImage,
    recipe,
    sha256_file,
)
from tests.e2e import ENV, REPO


def cz(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "containerize.cli", *args], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=timeout, check=False)


def fake_built(image: OsImage, content: bytes = b"root") -> None:
    """Put an image's files in place as a build would (the recipe last)."""
    os.makedirs(image.dir, exist_ok=True)
    with open(image.path, "wb") as handle:
        handle.write(content)
    with open(image.sha_path, "w", encoding="ascii") as handle:
        handle.write(f"{sha256_file(image.path)}  {os.path.basename(image.path)}\n")
    with open(image.recipe_path, "w", encoding="utf-8") as handle:
        json.dump(image.recipe, handle)


def test_state_follows_files_recipe_and_checksum(tmp_path):
    image = OsImage(str(tmp_path), "debian-12")
    assert image.state() == {"current": False, "reason": "not built", "sha256": None}
    fake_built(image)
    assert image.state()["current"]
    assert not OsImage(str(tmp_path), "debian-12", packages=["vim"]).state()["current"]
    assert OsImage(str(tmp_path), "debian-12", packages=["vim"]).state()["reason"] == "built from another recipe"
    with open(image.path, "ab") as handle:
        handle.write(b"x")
    assert image.state()["reason"] == "sha256 mismatch (corrupt)"
    assert image.state(verify=False)["current"]


def test_recipe_adds_packages_once_and_refuses_unknown_profiles():
    r = recipe("debian-12", ["tcpdump", "vim", "vim"])
    assert r["packages"].count("tcpdump") == 1 and r["packages"][-1] == "vim" and r["suite"] == "bookworm"
    for needed in ("systemd-sysv", "udev", "kmod", "openssh-server", "iproute2", "iputils-ping", "python3",
                   "iperf3", "tcpdump"):
        assert needed in r["packages"]
    with pytest.raises(BuildError, match="no image profile"):
        recipe("windows-95")


def test_failed_build_leaves_the_previous_image_and_nothing_half_made(tmp_path):
    image = OsImage(str(tmp_path), "debian-12", mirror="file:///nonexistent/debian")
    fake_built(image, b"previous")
    before = sorted(os.listdir(tmp_path))
    lines = []
    with pytest.raises(BuildError) as failed:
        image.build(progress=lines.append, timeout=300)
    assert "mmdebstrap failed" in str(failed.value) and "\n" not in str(failed.value)
    assert lines, "no progress was shown"
    assert sorted(os.listdir(tmp_path)) == sorted({*before, "debian-12.build.log"})
    with open(image.path, "rb") as handle:
        assert handle.read() == b"previous"


def test_cli_bad_input_is_one_line(tmp_path):
    for args, expected in ((["--include", "Bad Name"], "not a Debian package name"),
                           (["--mirror", "ftp://x"], "expected an http(s)"),
                           (["--name", "nope"], "invalid choice")):
        proc = cz("image-build", "--dir", str(tmp_path), *args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr


def test_cli_failed_build_is_one_line_and_leaves_nothing(tmp_path):
    proc = cz("image-build", "--dir", str(tmp_path), "--mirror", "file:///nonexistent/debian", "--quiet")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "mmdebstrap failed" in proc.stderr, proc.stderr
    assert os.listdir(tmp_path) == ["debian-12.build.log"]


def test_module_query_check_and_absent(tmp_path):
    image = OsImage(str(tmp_path), "debian-12")
    fake_built(image)

    def module(*args: str) -> dict:
        proc = subprocess.run(["ansible", "localhost", "-o", "-m", "containerize.deploy.os_image", "-a",
                               f"dir={tmp_path} " + " ".join(a for a in args if not a.startswith("--")),
                               *[a for a in args if a.startswith("--")]],
                              capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120, check=False)
        assert "=>" in proc.stdout, proc.stdout + proc.stderr
        return json.loads(proc.stdout.split("=>", 1)[1])

    query = module("state=query")
    assert query["current"] and not query["changed"] and query["sha256"] == sha256_file(image.path)
    assert not module("state=present")["changed"]
    forced = module("force=true", "--check")
    assert forced["changed"] and os.path.getsize(image.path) == 4  # check mode built nothing
    assert module("state=absent", "--check")["changed"] and os.path.exists(image.path)
    assert module("state=absent")["changed"] and os.listdir(tmp_path) == []


@pytest.mark.slow
def test_real_build_into_the_default_cache():
    """Builds (or finds current) the Debian image the qemu and openvz nodes boot by default."""
    proc = cz("image-build", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    image = OsImage(DEFAULT_DIR, "debian-12")
    assert image.state()["current"]
    with tarfile.open(image.path) as tar:
        names = set(tar.getnames())
    for path in ("./usr/lib/systemd/systemd", "./usr/bin/ssh-keygen", "./usr/sbin/sshd", "./usr/bin/iperf3",
                 "./usr/bin/tcpdump", "./usr/bin/udevadm", "./usr/bin/kmod", "./usr/bin/python3",
                 "./etc/systemd/system/multi-user.target.wants/containerize-ssh-keys.service"):
        assert path in names or path.replace("/usr/bin/", "/bin/") in names or \
            path.replace("/usr/bin/", "/usr/sbin/") in names, path
    assert not [n for n in names if "ssh_host_" in n], "the image carries ssh host keys every node would share"
    again = cz("image-build")
    assert again.returncode == 0 and "current" in again.stdout
