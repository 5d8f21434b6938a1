"""qemu nodes: the module's node-side scripts and helpers on this machine, then a real swap-in.

Marked slow: the last tests boot a real node under TCG (about half a minute); CI runs them.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import proc_alive
from ansible_collections.containerize.deploy.plugins.module_utils.image_cache import Image, image_kind, split_url
from ansible_collections.containerize.deploy.plugins.module_utils.initramfs import cpio_newc
from ansible_collections.containerize.deploy.plugins.module_utils.qemu_config import load_scripts, tc_args, validate
from ansible_collections.containerize.deploy.plugins.module_utils.qemu_exec import node_exec
from ansible_collections.containerize.deploy.plugins.module_utils.qemu_node import QemuNode
from tests.e2e import ENV, MODULES, RECAP, REPO, compile_topology

pytestmark = pytest.mark.slow
IMAGE_DIR = Path("/var/cache/containerize/test-image")
ROLES = MODULES.parent.parent / "roles"


def _scripts_dir(tmp_path: Path) -> Path:
    """A scripts_dir as the hv and qemu roles lay it out (their role_files tasks)."""
    scripts = tmp_path / "scripts"
    if not scripts.exists():
        shutil.copytree(ROLES / "qemu" / "files", scripts / "qemu")
        (scripts / "hv").mkdir()
        shutil.copy(ROLES / "hv" / "files" / "start-command.sh", scripts / "hv")
    return scripts


def _ctx(tmp_path: Path, **overrides) -> SimpleNamespace:
    ctx = SimpleNamespace(
        default_url="/images/root.tar.gz", memory=256, cpus=1, images={}, hosts="127.0.0.1 localhost\n",
        qemu_dir=str(tmp_path / "qemu"), nodes_dir=str(tmp_path / "nodes"), shares=[],
        accounts={"passwd": "", "group": "", "shadow": ""}, rpath=lambda name: str(tmp_path / "run" / name),
        scripts=load_scripts(_scripts_dir(tmp_path)), authorized_keys=[],
    )  # fmt: skip
    for key, value in overrides.items():
        setattr(ctx, key, value)
    return ctx


NODE = {
    "name": "a", "kind": "qemu", "hostname": "a", "startcmd": "echo hi", "forwarding": True,
    "interfaces": [{"ifname": "eth0", "switch": "s0", "port": 1, "mac": "02:00:00:00:00:01", "address": "10.0.0.1",
                    "prefix": 24, "tc": {"bandwidth": 10000000, "delay_ms": 0.0, "loss": 0.0}}],
    "routes": [{"dest": "10.1.0.0/16", "gateway": "10.0.0.254"}],
}  # fmt: skip


def _write_config(tmp_path: Path, ctx) -> Path:
    cfg = tmp_path / "cfg"
    for rel, (content, mode) in QemuNode(ctx, NODE).config_files().items():
        path = cfg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)
    return cfg


def _apply(root: Path, cfg: Path, check: bool = False) -> list[str]:
    proc = subprocess.run(["sh", str(cfg / "apply.sh"), str(root), str(cfg), "check" if check else ""],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return [line.removeprefix("changed ") for line in proc.stdout.splitlines()]


def test_apply_configures_a_root_once_and_keeps_what_is_not_ours(tmp_path):
    root = tmp_path / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    (root / "etc" / "fstab").write_text("/dev/vda1 / ext4 defaults 0 1\n")
    (root / "etc" / "rc.local").write_text("#!/bin/sh\necho mine\nexit 0\n")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    accounts = {"passwd": "alice:x:2001:2001:alice:/users/alice:/bin/sh\n", "group": "alice:x:2001:\n",
                "shadow": "alice:*:19000:0:99999:7:::\n"}  # fmt: skip
    shares = [{"name": "users", "path": "/users", "mount": "/users", "readonly": False},
              {"name": "share", "path": "/share", "mount": "/share", "readonly": True}]  # fmt: skip
    cfg = _write_config(tmp_path, _ctx(tmp_path, accounts=accounts, shares=shares,
                                       hosts="127.0.0.1 localhost\n10.0.0.1 a a-lan0\n"))  # fmt: skip

    assert _apply(root, cfg, check=True)
    assert not (root / "etc" / "hosts").exists(), "check mode wrote a file"
    first = _apply(root, cfg)
    assert {"hostname", "hosts", "fstab", "rc.local", "passwd alice", "group alice", "shadow alice", "systemd",
            "systemd enable", "containerize/boot.sh", "mkdir /users"} <= set(first)  # fmt: skip
    assert _apply(root, cfg) == []
    assert _apply(root, cfg, check=True) == []

    fstab = (root / "etc" / "fstab").read_text()
    assert fstab.startswith("/dev/vda1 / ext4 defaults 0 1\n# BEGIN containerize\n")
    assert "cz-containers /var/containers 9p trans=virtio," in fstab
    assert "cz-share /share 9p trans=virtio,version=9p2000.L,msize=262144,ro,nofail 0 0" in fstab
    assert fstab.count("# BEGIN containerize") == 1
    rc_local = (root / "etc" / "rc.local").read_text()
    assert rc_local == ("#!/bin/sh\necho mine\n# BEGIN containerize\n/etc/containerize/boot.sh\n"
                        "# END containerize\nexit 0\n")  # fmt: skip
    assert os.access(root / "etc" / "rc.local", os.X_OK)
    assert (root / "etc" / "passwd").read_text().count("\nalice:") == 1
    assert (root / "etc" / "hostname").read_text() == "a\n"
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/containerize.service") == (
        "/etc/systemd/system/containerize.service"
    )
    net = (root / "etc" / "containerize" / "net").read_text()
    assert net == "02:00:00:00:00:01 eth0 10.0.0.1/24 tbf rate 10000000bit burst 12500 latency 50ms\n"
    assert (root / "etc" / "containerize" / "routes").read_text() == "10.1.0.0/16 10.0.0.254\n"
    assert "FORWARDING=1" in (root / "etc" / "containerize" / "settings").read_text()

    # a drifted file is reported and repaired, the rest left alone
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    assert _apply(root, cfg, check=True) == ["hosts"]
    assert _apply(root, cfg) == ["hosts"]


def test_apply_starts_files_an_image_lacks(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    cfg = _write_config(tmp_path, _ctx(tmp_path))
    _apply(root, cfg)
    assert (root / "etc" / "rc.local").read_text().startswith("#!/bin/sh\n# BEGIN containerize\n")
    assert (root / "etc" / "fstab").read_text().startswith("# BEGIN containerize\n")
    assert not (root / "etc" / "systemd").exists()
    assert (root / "var" / "containers").is_dir()


def test_config_hash_follows_the_plan(tmp_path):
    ctx = _ctx(tmp_path)
    first = QemuNode(ctx, NODE)
    again = QemuNode(ctx, dict(NODE))
    moved = QemuNode(ctx, {**NODE, "routes": [{"dest": "default", "gateway": "10.0.0.254"}]})
    assert first.config_hash(first.config_files()) == again.config_hash(again.config_files())
    assert first.config_hash(first.config_files()) != moved.config_hash(moved.config_files())


def test_end_node_shaping_arguments():
    assert tc_args(None) == ""
    assert tc_args({"bandwidth": None, "delay_ms": 0.0, "loss": 0.0}) == ""
    assert tc_args({"bandwidth": 8000000, "delay_ms": 0.0, "loss": 0.0}) == (
        "tbf rate 8000000bit burst 10000 latency 50ms"
    )
    assert tc_args({"bandwidth": 1000000, "delay_ms": 2.5, "loss": 0.01}) == (
        "netem delay 2.5ms loss 1% rate 1000000bit"
    )


def test_image_kinds(tmp_path):
    assert image_kind(str(tmp_path)) == "rootfs"
    assert image_kind("https://example.org/root.tar.zst") == "rootfs"
    assert image_kind("/images/debian.qcow2") == "disk"
    assert image_kind("/images/debian.raw.xz") == "disk"
    assert image_kind("/images/odd-name#kind=rootfs") == "rootfs"
    assert split_url("/a/b.img#sha256=abc&kind=disk") == ("/a/b.img", {"sha256": "abc", "kind": "disk"})


def test_validate_names_every_problem(tmp_path):
    ctx = _ctx(tmp_path, default_url="")
    ctx.run_dir = str(tmp_path / "run")
    bad = {**NODE, "name": "b", "qemu_arch": "sparc",
           "interfaces": [{"ifname": "eth0", "switch": "s/0", "mac": "zz", "address": "", "prefix": 24}],
           "routes": [{"dest": "10.0.0.0/8; reboot", "gateway": "10.0.0.1"}]}  # fmt: skip
    errors = validate(ctx, [bad])
    text = "\n".join(errors)
    for needle in ("qemu_arch 'sparc'", "no image", "switch 's/0'", "MAC 'zz'", "address and prefix", "bad route"):
        assert needle in text, text


def test_initramfs_archive_is_newc(tmp_path):
    data = cpio_newc([("bin", 0o40755, None, None), ("dev/console", 0o20600, None, (5, 1)),
                         ("init", 0o100755, b"#!/bin/sh\n", None)])  # fmt: skip
    names, pos = [], 0
    while True:
        assert data[pos : pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        pos = pos + 110 + namesize
        pos += (4 - pos % 4) % 4
        body = data[pos : pos + filesize]
        pos += filesize + (4 - filesize % 4) % 4
        if name == "TRAILER!!!":
            break
        names.append((name, fields[1], body, fields[9:11]))
    assert names == [("bin", 0o40755, b"", [0, 0]), ("dev/console", 0o20600, b"", [5, 1]),
                     ("init", 0o100755, b"#!/bin/sh\n", [0, 0])]  # fmt: skip
    assert pos == len(data)
    if subprocess.run(["which", "cpio"], capture_output=True).returncode == 0:
        listing = subprocess.run(["cpio", "-it", "--quiet"], input=gzip.decompress(gzip.compress(data)),
                                 capture_output=True, check=True).stdout.decode().split()  # fmt: skip
        assert listing == ["bin", "dev/console", "init"]


def test_exec_protocol_against_the_agent_script(tmp_path):
    """The host side of exec against the node's agent script, run here on a plain directory."""
    node = tmp_path / "node"
    (node / "exec").mkdir(parents=True)
    agent = tmp_path / "agent.sh"
    text = (ROLES / "qemu" / "files" / "agent.sh").read_text()
    agent.write_text(text.replace("X=/var/containers/exec", f"X={node / 'exec'}"))
    proc = subprocess.Popen(["sh", str(agent)], start_new_session=True)
    try:
        out, err = _Buffer(), _Buffer()
        rc = node_exec(str(node), ["sh", "-c", "echo one; echo two >&2; printf '%s' \"$1\"; exit 5", "sh", "a b'c"],
                           stdout=out, stderr=err)  # fmt: skip
        assert (rc, out.text, err.text) == (5, "one\na b'c", "two\n")
        assert sorted(os.listdir(node / "exec")) == []
        assert node_exec(str(node), ["true"]) == 0
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    err = _Buffer()
    started = time.monotonic()
    assert node_exec(str(node), ["true"], claim_timeout=0.5, stderr=err) == 255
    assert time.monotonic() - started < 5
    assert "did not answer" in err.text
    assert os.listdir(node / "exec") == []


def test_images_are_fetched_once_verified_and_unpacked(tmp_path):
    """http(s) and local images, compressed or not, checked against their sha256."""
    import functools
    import hashlib
    import http.server
    import lzma
    import tarfile

    served = tmp_path / "served"
    served.mkdir()
    raw = served / "disk.raw"
    raw.write_bytes(b"\0" * 65536)
    (served / "disk.raw.gz").write_bytes(gzip.compress(raw.read_bytes()))
    (served / "disk.raw.gz.sha256").write_text(hashlib.sha256((served / "disk.raw.gz").read_bytes()).hexdigest() + "\n")
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text("ID=tiny\n")
    with tarfile.open(served / "root.tar", "w") as tar:
        tar.add(tree, arcname=".")
    (served / "root.tar.xz").write_bytes(lzma.compress((served / "root.tar").read_bytes()))
    tar_sum = hashlib.sha256((served / "root.tar.xz").read_bytes()).hexdigest()

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        ctx = SimpleNamespace(cache=str(tmp_path / "cache"), checksums={}, timeout=10)
        disk = Image(ctx, f"{url}/disk.raw.gz")
        assert (disk.kind, disk.ready()) == ("disk", False)
        assert disk.fetch() == []  # the checksum came from disk.raw.gz.sha256
        assert disk.ready() and disk.disk_format() == "raw"
        assert Path(disk.base).read_bytes() == raw.read_bytes()

        root = Image(ctx, f"{url}/root.tar.xz#sha256={tar_sum}")
        assert root.kind == "rootfs" and root.want == tar_sum
        root.fetch()
        assert (Path(root.base) / "etc" / "os-release").read_text() == "ID=tiny\n"
        assert root.ident == tar_sum

        bad = Image(SimpleNamespace(cache=ctx.cache, checksums={f"{url}/root.tar": "sha256:" + "0" * 64},
                                       timeout=10), f"{url}/root.tar")  # fmt: skip
        with pytest.raises(RuntimeError, match="does not match"):
            bad.fetch()
        assert not bad.ready()

        local = Image(ctx, str(served / "disk.raw"))
        assert local.fetch() == [f"image {served / 'disk.raw'} has no checksum (give one in qemu_image_checksums)"]
        assert local.ready()
        time.sleep(1.1)
        raw.write_bytes(b"\1" * 65536)  # the source changed: fetched again, as a new version
        assert not local.ready()
        local.fetch()
        assert Path(local.base).read_bytes() == b"\1" * 65536
        assert len(list(Path(local.dir).glob("disk-*"))) == 2
    finally:
        server.shutdown()


class _Buffer:
    def __init__(self):
        self.data = b""
        self.lock = threading.Lock()

    def write(self, data: bytes):
        with self.lock:
            self.data += data

    def flush(self):
        pass

    @property
    def text(self) -> str:
        return self.data.decode()


def test_a_node_that_cannot_boot_is_reported(tmp_path):
    """An image without /sbin/init: the initramfs powers the node off and the task names it."""
    disk = tmp_path / "empty.raw"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(disk), "8M"], check=True, capture_output=True)
    root = tmp_path / "root"
    args = {"root": str(root), "run_dir": str(root / "run" / "t"), "exp_name": "bad.test", "project": "test",
            "experiment": "bad", "nodes": [{"name": "nope", "kind": "qemu", "interfaces": []}],
            "scripts_dir": str(_scripts_dir(tmp_path)),
            "default_url": str(disk), "image_cache": str(tmp_path / "cache"), "memory": 128, "boot_timeout": 120,
            "stop_timeout": 2}  # fmt: skip
    cmd = ["ansible", "localhost", "-m", "containerize.deploy.qemu_nodes", "-a", json.dumps(args), "-e",
           json.dumps({"ansible_python_interpreter": sys.executable})]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300, check=False)
        assert proc.returncode != 0
        assert "1 of 1 qemu nodes did not boot within 120 s: nope is dead" in proc.stdout, proc.stdout[-3000:]
        assert "no root file system found" in proc.stdout
    finally:
        subprocess.run(cmd[:5] + [json.dumps({**args, "state": "absent"})] + cmd[6:], capture_output=True,
                       env=ENV, cwd=REPO, check=False)  # fmt: skip
    assert not (root / "qemu" / "bad.test").exists()


# ----------------------------------------------------------------------------------------------
# a real swap-in: compile, boot one qemu node (rootfs image) next to a process node, check, repair


TOPOLOGY = textwrap.dedent("""\
    set ns [new Simulator]
    source tb_compat.tcl
    set vm [$ns node]
    set pn [$ns node]
    set lan0 [$ns make-lan "$vm $pn" 100Mb 2ms]
    tb-add-node-attribute $vm containers:node_type qemu
    tb-add-node-attribute $pn containers:node_type process
    tb-set-node-startcmd $vm "ping -c 1 -W 10 pn > /dev/null; echo pinged $?"
    $ns rtproto Static
    $ns run
""")
SWAPIN = """---
- name: Swap in
  hosts: hv
  gather_facts: false
  roles: [containerize.deploy.hv, containerize.deploy.vde, containerize.deploy.process, containerize.deploy.qemu]
"""
SWAPOUT = """---
- name: Swap out
  hosts: hv
  gather_facts: false
  roles:
    - {role: containerize.deploy.qemu, vars: {qemu_state: absent}}
    - {role: containerize.deploy.process, vars: {process_state: absent}}
    - {role: containerize.deploy.vde, vars: {vde_state: absent}}
    - {role: containerize.deploy.hv, vars: {hv_state: absent}}
"""


def _playbook(expdir: Path, book: Path) -> int:
    extra = {"qemu_default_url": str(IMAGE_DIR / "rootfs.tar.gz"), "qemu_memory": 160, "qemu_stop_timeout": 10,
             "qemu_boot_timeout": 240}  # fmt: skip
    cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), "-e", json.dumps(extra), str(book)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return sum(int(m[2]) for m in RECAP.findall(proc.stdout))


@pytest.fixture(scope="module")
def qemu_lan(tmp_path_factory):
    subprocess.run(["bash", str(REPO / "scripts" / "build-test-image.sh"), str(IMAGE_DIR)], check=True,
                   capture_output=True)  # fmt: skip
    work = tmp_path_factory.mktemp("qemu")
    (work / "lan.tcl").write_text(TOPOLOGY)
    (work / "swapin.yml").write_text(SWAPIN)
    (work / "swapout.yml").write_text(SWAPOUT)
    expdir = work / "exp"
    compile_topology(work / "lan.tcl", expdir, "e2eq", "lan")
    host_vars = yaml.safe_load((expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text())
    group_vars = yaml.safe_load((expdir / "inventory" / "group_vars" / "all.yml").read_text())
    root = Path(host_vars["containerize_root"])
    paths = SimpleNamespace(
        expdir=expdir, work=work, node=root / "nodes" / group_vars["containerize_exp_name"] / "vm",
        run=root / "run" / group_vars["containerize_exp_tag"], qemu=root / "qemu" / group_vars["containerize_exp_name"],
    )  # fmt: skip
    try:
        _playbook(expdir, work / "swapin.yml")
        yield paths
    finally:
        _playbook(expdir, work / "swapout.yml")
        assert not paths.qemu.exists()
        assert not paths.node.exists()
        assert not paths.run.exists()


def _in_node(node: Path, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ansible_collections.containerize.deploy.plugins.module_utils.qemu_exec", str(node),
           "--", *command]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO)


def test_node_reaches_the_process_node_by_name(qemu_lan):
    ping = _in_node(qemu_lan.node, "ping", "-c", "3", "-W", "5", "pn")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "3 packets received" in ping.stdout
    mounts = _in_node(qemu_lan.node, "cat", "/proc/mounts").stdout
    assert "cz-containers /var/containers 9p" in mounts
    assert _in_node(qemu_lan.node, "cat", "/etc/hostname").stdout == "vm\n"
    assert _in_node(qemu_lan.node, "sh", "-c", "exit 4").returncode == 4


def test_start_command_ran_and_logged(qemu_lan):
    log = qemu_lan.node / "log" / "start_command.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "exit " not in (log.read_text() if log.exists() else ""):
        time.sleep(0.5)
    assert log.read_text().splitlines()[1] == "exit 0"
    assert (qemu_lan.node / "log" / "start_command.out").read_text() == "pinged 0\n"


def test_rerun_changes_nothing_and_a_dead_node_is_started_again(qemu_lan):
    assert _playbook(qemu_lan.expdir, qemu_lan.work / "swapin.yml") == 0
    pid = int((qemu_lan.run / "vm.qemu.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert _playbook(qemu_lan.expdir, qemu_lan.work / "swapin.yml") > 0
    new_pid = int((qemu_lan.run / "vm.qemu.pid").read_text())
    assert new_pid != pid and proc_alive(new_pid)
    assert (qemu_lan.node / "log" / "booted").exists()
    assert _in_node(qemu_lan.node, "ping", "-c", "1", "-W", "5", "pn").returncode == 0


def test_a_process_in_the_nodes_place_with_other_arguments_is_replaced(qemu_lan):
    """The node is judged by what runs, not by its record: a process holding its pid file with other
    arguments (a qemu restarted by hand) is stopped and the planned qemu started."""
    pidfile = qemu_lan.run / "vm.qemu.pid"
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    impostor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "-pidfile", str(pidfile)],
                                start_new_session=True)  # fmt: skip
    try:
        pidfile.write_text(f"{impostor.pid}\n")
        assert _playbook(qemu_lan.expdir, qemu_lan.work / "swapin.yml") > 0
        assert impostor.wait(timeout=30) is not None
        new_pid = int(pidfile.read_text())
        assert new_pid != impostor.pid and proc_alive(new_pid, str(pidfile))
        assert _in_node(qemu_lan.node, "ping", "-c", "1", "-W", "5", "pn").returncode == 0
        assert _playbook(qemu_lan.expdir, qemu_lan.work / "swapin.yml") == 0
    finally:
        impostor.kill()
        impostor.wait()


def test_ssh_key_and_control_nic_go_into_the_node(tmp_path):
    ctx = _ctx(tmp_path, authorized_keys=["ssh-ed25519 AAAAC3 containerize-test"])
    files = QemuNode(ctx, NODE).config_files()
    assert files["authorized_keys"] == ("ssh-ed25519 AAAAC3 containerize-test\n", 0o600)
    assert files["etc-containerize/net"][0].splitlines()[-1].split()[1:] == ["cz-ssh", "169.254.22.15/24"]
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    cfg = _write_config(tmp_path, ctx)
    assert "authorized_keys" in _apply(root, cfg)
    assert (root / "root" / ".ssh" / "authorized_keys").read_text().startswith("ssh-ed25519 ")
    assert (root / "root" / ".ssh" / "authorized_keys").stat().st_mode & 0o777 == 0o600
    assert "authorized_keys" not in _apply(root, cfg)
