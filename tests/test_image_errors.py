"""Bad images and templates, and the second image's recipe, without swapping in (tests/test_bad_images.py and
tests/test_second_image.py do it end to end)."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
import tarfile
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible_collections.containerize.deploy.plugins.module_utils.image_cache import (
    Image,
    check_fits,
    disk_lacks,
    one_line,
    unpack,
)
from ansible_collections.containerize.deploy.plugins.module_utils.nspawn import kill_signal
from ansible_collections.containerize.deploy.plugins.module_utils.os_image import OsImage, recipe
from tests.e2e import ENV, MODULES, REPO

ROLES = MODULES.parent.parent / "roles"


def packed(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def test_one_line_joins_lines_and_drops_tars_chatter():
    text = ("gzip: stdin: unexpected end of file\ntar: Unexpected EOF in archive\ntar: Unexpected EOF in archive\n"
            "tar: Error is not recoverable: exiting now\n")  # fmt: skip
    assert one_line(text) == "gzip: stdin: unexpected end of file; tar: Unexpected EOF in archive"
    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    assert one_line(refused) == "[Errno 111] Connection refused"
    missing = urllib.error.HTTPError("http://x/y", 404, "Not Found", {}, None)
    assert one_line(missing) == "HTTP Error 404: Not Found"
    assert one_line("") == "unknown error"


def test_failed_fetches_leave_nothing_in_the_cache(tmp_path):
    good = packed(tmp_path / "root.tar", {"bin/sh": b"", "sbin/init": b""})
    gz = tmp_path / "root.tar.gz"
    whole = gzip.compress(good.read_bytes())
    gz.write_bytes(whole[: len(whole) // 2])  # cut short
    cache = tmp_path / "cache"
    ctx = SimpleNamespace(cache=str(cache), checksums={}, timeout=5)
    cases = {str(gz): "cannot unpack: ", f"{good}#sha256={'0' * 64}": "does not match the expected",
             str(tmp_path / "none.tar"): "cannot fetch: [Errno 2] No such file or directory",
             "http://127.0.0.1:9/x.raw.gz": "cannot fetch: "}  # fmt: skip
    for url, why in cases.items():
        with pytest.raises(RuntimeError) as failed:
            Image(ctx, url).fetch()
        assert why in str(failed.value) and "\n" not in str(failed.value), (url, failed.value)
        assert str(failed.value).startswith(f"image {url.split('#')[0]}: "), failed.value
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_disk_too_small_for_a_file_system(tmp_path):
    tiny, fine = tmp_path / "tiny.raw", tmp_path / "fine.qcow2"
    tiny.write_bytes(b"\0" * 4096)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(fine), "64M"], check=True)
    assert disk_lacks(str(tiny), "raw") == ["a disk of 4096 bytes is too small to hold a root file system "
                                            "(at least 1 MiB)"]  # fmt: skip
    assert disk_lacks(str(fine), "qcow2") == []
    assert disk_lacks(str(tmp_path / "none"), "raw")[0].startswith("qemu-img info failed: ")


def test_a_template_larger_than_its_disk_or_not_a_tar(tmp_path):
    big = packed(tmp_path / "big.tar", {"bin/sh": b"", "var/filler": b"\0" * (3 << 20)})
    with pytest.raises(RuntimeError, match=r"^disk space 2M is too small for template /t/big.tar.gz: its files take 3"):
        check_fits(str(big), 2 << 20, "disk space 2M", "/t/big.tar.gz")
    check_fits(str(big), 4 << 20, "disk space 4M", "/t/big.tar.gz")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"no tar archive\n" * 100)
    with pytest.raises(RuntimeError, match=r"^template /t/junk.tar.gz: not a readable tar archive"):
        check_fits(str(junk), 4 << 20, "disk space 4M", "/t/junk.tar.gz")
    (tmp_path / "out").mkdir()
    with pytest.raises(RuntimeError, match=r"^template /t/junk.tar.gz: cannot unpack: tar: This does not look") as e:
        unpack(str(junk), str(tmp_path / "out"), "/t/junk.tar.gz", "disk space 4M")
    assert "\n" not in str(e.value)


def test_sysvinit_roots_stop_on_sigint(tmp_path):
    (tmp_path / "sbin").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "sbin" / "init").write_bytes(b"\x7fELF")
    assert kill_signal(str(tmp_path), "") == ""  # (a file, but no inittab: not known)
    (tmp_path / "etc" / "inittab").write_text("id:2:initdefault:\n")
    assert kill_signal(str(tmp_path), "") == "SIGINT"
    assert kill_signal(str(tmp_path), "SIGTERM") == "SIGTERM"
    (tmp_path / "sbin" / "init").unlink()
    (tmp_path / "sbin" / "init").symlink_to("/lib/systemd/systemd")
    assert kill_signal(str(tmp_path), "") == ""


def test_the_sysvinit_recipe_has_no_systemd_hooks():
    r = recipe("debian-12-sysvinit")
    assert "sysvinit-core" in r["packages"] and "ifupdown" in r["packages"] and "systemd-sysv" not in r["packages"]
    argv = OsImage("/nonexistent", "debian-12-sysvinit").argv("/o.tar.gz", "/unit")
    hooks = [a for a in argv if a.startswith("--customize-hook=")]
    assert not [h for h in hooks if "systemd" in h], hooks
    assert any("inittab" in h for h in hooks) and any("acpi/events/powerbtn" in h for h in hooks)
    systemd = OsImage("/nonexistent", "debian-12").argv("/o.tar.gz", "/unit")
    assert any("containerize-ssh-keys.service" in a for a in systemd) and not any("inittab" in a for a in systemd)


def test_a_refused_checksum_fails_its_node_only_and_check_mode_writes_nothing(tmp_path):
    """A checksum of another algorithm than sha256 is refused before any fetch: that node fails, named."""
    scripts = tmp_path / "scripts"
    shutil.copytree(ROLES / "qemu" / "files", scripts / "qemu")
    (scripts / "hv").mkdir()
    shutil.copy(ROLES / "hv" / "files" / "start-command.sh", scripts / "hv")
    root = tmp_path / "root"
    args = {"root": str(root), "run_dir": str(root / "run" / "t"), "exp_name": "bad.test", "project": "test",
            "experiment": "bad", "scripts_dir": str(scripts), "image_cache": str(tmp_path / "cache"), "accel": "tcg",
            "checksums": {"/images/md.tar.gz": "md5:0123"},
            "nodes": [{"name": "md", "kind": "qemu", "interfaces": [], "qemu_url": "/images/md.tar.gz"},
                      {"name": "ok", "kind": "qemu", "interfaces": [], "qemu_url": "/images/ok.tar.gz"}]}  # fmt: skip
    cmd = ["ansible", "localhost", "--check", "-m", "containerize.deploy.qemu_nodes", "-a", json.dumps(args), "-e",
           json.dumps({"ansible_python_interpreter": sys.executable})]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**ENV, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
                          cwd=REPO, timeout=120, check=False)  # fmt: skip
    result = json.loads(proc.stdout.split("=>", 1)[1])
    want = "some qemu nodes failed: md: image /images/md.tar.gz: only sha256 checksums are supported, not md5"
    assert result["msg"] == want, result["msg"]
    assert result["started"] == ["ok"] and "fetch /images/ok.tar.gz" in result["pnode"]
    assert not root.exists() and not (tmp_path / "cache").exists()
