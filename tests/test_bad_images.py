"""Bad images say so in one line (issue 13): qemu and openvz nodes whose image or template is bad.

One swap-in per kind puts every bad case on the same pnode as a good node of the same kind and a
process node: an image URL on a closed port, a corrupt (truncated) tarball, a wrong sha256, a disk
too small for any file system, images without modprobe or without a shell; a template that is not
a root file system, one without a shell, one larger than its disk space. Swap-in fails with one
line naming each bad node and why; the good node of the same pnode is booted and answers pings;
nothing of the bad nodes is left (no node directory, no partial file in the image cache, no mount,
no loop device); swap-out is clean. The busybox test images keep it fast.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.e2e import ENV, REPO, compile_topology, node_exec, playbook

pytestmark = pytest.mark.slow
TEST_IMAGE = Path("/var/cache/containerize/test-image")  # tests/test_qemu.py's busybox image


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tarball(path: Path, files: dict[str, bytes | None], big: int = 0) -> Path:
    """A .tar.gz at PATH with FILES ({name: content, None for a directory}), plus BIG bytes of zeros."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in {**files, **({"var/filler": b"\0" * big} if big else {})}.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o755
                tar.addfile(info, io.BytesIO(content))
    return path


def swap_in_fails(expdir: Path, *extra: str) -> str:
    """Run the swap-in, which must fail; the one failure message of the node task."""
    cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), str(REPO / "playbooks" / "swapin.yml"), *extra]
    env = {**ENV, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}  # (one result a line)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    assert proc.returncode != 0, proc.stdout[-3000:]
    failures = [json.loads(line.split(" => ", 1)[1]) for line in proc.stdout.splitlines()
                if line.startswith("fatal: ") and " => " in line]
    assert len(failures) == 1, proc.stdout[-4000:]
    msg = failures[0]["msg"]
    assert "\n" not in msg and "Traceback" not in proc.stdout, msg
    return msg


def node_paths(expdir: Path) -> tuple[Path, dict]:
    """(the pnode's root, the experiment's group variables) of a one-pnode experiment."""
    host_vars = yaml.safe_load(next((expdir / "inventory" / "host_vars").glob("*.yml")).read_text())
    group = yaml.safe_load((expdir / "inventory" / "group_vars" / "all.yml").read_text())
    return Path(host_vars["containerize_root"]), group


def leftovers(directory: Path) -> list[str]:
    """Partial or temporary files below DIRECTORY."""
    if not directory.exists():
        return []
    marks = (".part", ".new", ".tmp", "download.", ".build.")
    return sorted(str(p) for p in directory.rglob("*") if any(m in p.name for m in marks))


def lan_topology(kind: str, attributes: dict[str, dict[str, str]]) -> str:
    """ns2 source: a process node pn and the nodes of ATTRIBUTES ({node: {attribute: value}}) of KIND, all
    on pnode 0 and on one LAN."""
    lines = ["set ns [new Simulator]", "source tb_compat.tcl", "set pn [$ns node]",
             "tb-add-node-attribute $pn containers:node_type process",
             "tb-add-node-attribute $pn containers:partition 0"]  # fmt: skip
    for name, attrs in attributes.items():
        lines += [f"set {name} [$ns node]", f"tb-add-node-attribute ${name} containers:node_type {kind}",
                  f"tb-add-node-attribute ${name} containers:partition 0"]  # fmt: skip
        lines += [f"tb-add-node-attribute ${name} containers:{key} {{{value}}}" for key, value in attrs.items()]
    lines += ['set lan0 [$ns make-lan "$pn ' + " ".join(f"${n}" for n in attributes) + '" 100Mb 2ms]',
              "$ns rtproto Static", "$ns run"]  # fmt: skip
    return "\n".join(lines) + "\n"


def assert_each_named(msg: str, kind: str, expected: dict[str, str]) -> None:
    """MSG is the one line of a failed KIND module naming each node of EXPECTED with its text, and no other."""
    assert msg.startswith(f"some {kind} nodes failed: "), msg
    for node, text in expected.items():
        assert f"{node}: {text}" in msg, f"{node}: {msg}"
    named = {part.split(":", 1)[0] for part in msg[len(f"some {kind} nodes failed: "):].split("; ")}
    assert set(expected) <= named and "good" not in named, named


def mounts_below(path: Path) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(str(path))]


# ----------------------------------------------------------------------------------------------
# qemu


QEMU_BAD = ["unreach", "corrupt", "badsum", "tiny", "nokmod", "noshell"]


@pytest.fixture(scope="module")
def qemu_bad(tmp_path_factory):
    subprocess.run(["bash", str(REPO / "scripts" / "build-test-image.sh"), str(TEST_IMAGE)], check=True,
                   capture_output=True)  # fmt: skip
    work = tmp_path_factory.mktemp("badqemu")
    good = TEST_IMAGE / "rootfs.tar.gz"
    packed = good.read_bytes()
    (work / "corrupt.tar.gz").write_bytes(packed[: len(packed) // 2])  # a download cut in the middle
    shutil.copy(good, work / "copy.tar.gz")
    (work / "tiny.raw").write_bytes(b"\0" * 65536)
    stub = b"#!/bin/sh\n"
    tarball(work / "nokmod.tar.gz", {"bin/": None, "bin/sh": stub, "sbin/": None, "sbin/init": stub, "sbin/ip": stub})
    tarball(work / "noshell.tar.gz", {"sbin/": None, "sbin/init": stub, "sbin/modprobe": stub, "sbin/ip": stub})
    wrong = hashlib.sha256(b"something else").hexdigest()
    urls = {"good": str(good), "unreach": f"http://127.0.0.1:{closed_port()}/images/debian.tar.gz",
            "corrupt": str(work / "corrupt.tar.gz"), "badsum": f"{work / 'copy.tar.gz'}#sha256={wrong}",
            "tiny": str(work / "tiny.raw"), "nokmod": str(work / "nokmod.tar.gz"),
            "noshell": str(work / "noshell.tar.gz")}  # fmt: skip
    (work / "bad.tcl").write_text(lan_topology("qemu", {name: {"qemu_url": url} for name, url in urls.items()}))
    expdir = work / "exp"
    compile_topology(work / "bad.tcl", expdir, "e2ebad", "qemu")
    root, group = node_paths(expdir)
    try:
        msg = swap_in_fails(expdir, "-e", json.dumps({"qemu_memory": 160, "qemu_boot_timeout": 240}))
        yield {"msg": msg, "urls": urls, "expdir": expdir, "root": root, "name": group["containerize_exp_name"],
               "wrong": wrong}
    finally:
        playbook(expdir, "swapout")
        assert not (root / "qemu" / group["containerize_exp_name"]).exists()
        assert not (root / "nodes" / group["containerize_exp_name"]).exists()
        assert not mounts_below(root / "qemu")


def test_qemu_bad_images_fail_in_one_line_naming_each_node(qemu_bad):
    msg, urls = qemu_bad["msg"], qemu_bad["urls"]
    assert_each_named(msg, "qemu", {
        "unreach": f"image {urls['unreach']}: cannot fetch: [Errno 111] Connection refused",
        "corrupt": f"image {urls['corrupt']}: cannot unpack: gzip: stdin: unexpected end of file",
        "badsum": f"image {urls['badsum'].split('#')[0]}: sha256 ",
        "tiny": f"image {urls['tiny']}: a disk of 65536 bytes is too small to hold a root file system",
        "nokmod": f"image {urls['nokmod']}: no modprobe (kmod or busybox) to load the NIC driver",
        "noshell": f"image {urls['noshell']}: no shell (/bin/sh)",
    })
    assert f"does not match the expected {qemu_bad['wrong']}" in msg


def test_qemu_bad_images_leave_nothing_half_made(qemu_bad):
    root, name = qemu_bad["root"], qemu_bad["name"]
    cache = root / "images"
    assert leftovers(cache) == []
    keys = {p.name for p in cache.iterdir() if p.is_dir()}
    for node in ("unreach", "corrupt", "badsum"):
        key = hashlib.sha256(qemu_bad["urls"][node].split("#")[0].encode()).hexdigest()[:16]
        assert key not in keys, f"{node}: its failed fetch left {cache / key}"
    for node in QEMU_BAD:
        assert not (root / "qemu" / name / node).exists(), node
        assert not (root / "nodes" / name / node).exists(), node


def test_qemu_good_node_of_the_same_pnode_booted_and_answers(qemu_bad):
    proc = node_exec(qemu_bad["expdir"], "pn", "ping", "-c", "2", "-W", "5", "good")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (qemu_bad["root"] / "nodes" / qemu_bad["name"] / "good" / "log" / "booted").exists()


# ----------------------------------------------------------------------------------------------
# openvz


@pytest.fixture(scope="module")
def openvz_bad(tmp_path_factory):
    work = tmp_path_factory.mktemp("badovz")
    templates = work / "templates"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "build-openvz-template.sh"), str(templates), "busybox"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # the busybox template with 48 MiB more: larger than a 33M disk
    with tarfile.open(templates / "busybox.tar.gz") as src, tarfile.open(templates / "large.tar.gz", "w:gz") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        filler = tarfile.TarInfo("./var/filler")
        filler.size = 48 << 20
        dst.addfile(filler, io.BytesIO(b"\0" * filler.size))
    tarball(templates / "junk.tar.gz", {"README": b"not a root\n", "data/": None})
    tarball(templates / "noshell.tar.gz", {"sbin/": None, "sbin/init": b"\x7fELF", "etc/": None})
    (templates / "garbage.tar.gz").write_bytes(gzip.compress(b"this is no tar archive\n" * 100))
    nodes = {"good": ("busybox", None), "notroot": ("junk", None), "noshell": ("noshell", None),
             "notar": ("garbage", None), "small": ("large", "33M")}
    attributes = {name: {"openvz_template": template, **({"openvz_diskspace": disk} if disk else {})}
                  for name, (template, disk) in nodes.items()}  # fmt: skip
    (work / "bad.tcl").write_text(lan_topology("openvz", attributes))
    expdir = work / "exp"
    compile_topology(work / "bad.tcl", expdir, "e2ebad", "ovz", f"--openvz-template-dir={templates}")
    root, group = node_paths(expdir)
    try:
        msg = swap_in_fails(expdir)
        yield {"msg": msg, "expdir": expdir, "root": root, "name": group["containerize_exp_name"],
               "files": {node: templates / f"{template}.tar.gz" for node, (template, _disk) in nodes.items()}}
    finally:
        playbook(expdir, "swapout")
        assert not (root / "openvz" / group["containerize_exp_name"]).exists()
        assert not mounts_below(root / "openvz")


def test_openvz_bad_templates_fail_in_one_line_naming_each_node(openvz_bad):
    files = openvz_bad["files"]
    assert_each_named(openvz_bad["msg"], "openvz", {
        "notroot": f"template {files['notroot']}: not a root file system (no shell (/bin/sh); no init",
        "noshell": f"template {files['noshell']}: no shell (/bin/sh)",
        "notar": f"template {files['notar']}: cannot unpack: tar: This does not look like a tar archive",
        "small": f"disk space 33M is too small for template {files['small']}: its files take 5",
    })


def test_openvz_bad_templates_leave_nothing_half_made(openvz_bad):
    root, name = openvz_bad["root"], openvz_bad["name"]
    assert leftovers(root / "images" / "openvz") == []
    for node in ("notroot", "noshell", "notar", "small"):
        assert not (root / "openvz" / name / node).exists(), node
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout
    assert str(root / "openvz" / name) not in loops


def test_openvz_good_node_of_the_same_pnode_booted_and_answers(openvz_bad):
    proc = node_exec(openvz_bad["expdir"], "pn", "ping", "-c", "2", "-W", "5", "good")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    boot_log = openvz_bad["root"] / "nodes" / openvz_bad["name"] / "good" / "log" / "boot.log"
    assert boot_log.exists()
