"""Real operating systems in qemu and openvz nodes, out of the box, and ssh into every one (issue 13).

One experiment with no image, template or site option: a qemu node and an openvz node (on two
pnodes: they never share one) and a process node between them. Swap-in builds (or finds) the
Debian image, both nodes boot it with systemd, and `containerize ssh EXPDIR NODE` logs into each
through the experiment's own key, over paths that listen on no pnode address. Then the bad input:
an image that is not a root file system fails with one line naming the node.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from ansible_collections.containerize.deploy.plugins.module_utils.image_cache import root_lacks
from ansible_collections.containerize.deploy.plugins.module_utils.node_status import boot_failure
from containerize.expdir import ExperimentDir
from tests.e2e import ENV, REPO, compile_topology, playbook

TOPOLOGY = """\
set ns [new Simulator]
source tb_compat.tcl
set vm [$ns node]
set ct [$ns node]
set mid [$ns node]
tb-add-node-attribute $vm containers:node_type qemu
tb-add-node-attribute $ct containers:node_type openvz
tb-add-node-attribute $mid containers:node_type process
tb-add-node-attribute $vm containers:partition 0
tb-add-node-attribute $mid containers:partition 0
tb-add-node-attribute $ct containers:partition 1
set l0 [$ns duplex-link $vm $mid 100Mb 2ms DropTail]
set l1 [$ns duplex-link $ct $mid 100Mb 2ms DropTail]
$ns rtproto Static
$ns run
"""


def cz(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "containerize.cli", *args], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=timeout, check=False)


def listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets process PID listens on."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


def test_status_reads_the_boot_scripts_failure(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    assert boot_failure(str(log), {"started": time.time()}) == ""
    (log / "failed").write_text("eth2: no such interface; no route to 10.0.0.0/8 via 10.1.1.1\n")
    assert boot_failure(str(log), {"started": time.time()}).startswith("eth2: no such interface")
    assert boot_failure(str(log), {"started": time.time() + 60}) == ""  # from an earlier start


def test_root_lacks_names_what_is_missing(tmp_path):
    assert root_lacks(str(tmp_path / "none")) == ["not a root file system (no directory)"]
    (tmp_path / "bin").mkdir()
    assert root_lacks(str(tmp_path))[0].startswith("not a root file system")
    (tmp_path / "bin" / "sh").write_text("")
    assert root_lacks(str(tmp_path)) == ["no init (/sbin/init)", "no modprobe (kmod or busybox) to load the NIC driver",
                                         "no ip (iproute2 or busybox) to configure the interfaces"]
    (tmp_path / "bin" / "busybox").write_text("")
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin" / "init").symlink_to("/bin/busybox")
    assert root_lacks(str(tmp_path)) == []


@pytest.fixture(scope="module")
def debian(tmp_path_factory):
    work = tmp_path_factory.mktemp("osnodes")
    (work / "os.tcl").write_text(TOPOLOGY)
    expdir = work / "exp"
    compile_topology(work / "os.tcl", expdir, "e2eos", "deb")
    try:
        started = time.monotonic()
        playbook(expdir, "swapin", "-e", '{"qemu_memory": 384}')
        print(f"swap-in with a Debian qemu and openvz node: {time.monotonic() - started:.1f} s")
        yield expdir
    finally:
        playbook(expdir, "swapout")
        assert not (expdir / "ssh_config").exists() and not (expdir / "ssh").exists()


@pytest.mark.slow
@pytest.mark.parametrize("node", ["vm", "ct"])
def test_debian_node_boots_systemd_and_takes_ssh_by_name(debian, node):
    proc = cz("ssh", str(debian), node, "--",  # (ssh hands the remote shell one command line)
              "grep ^ID= /etc/os-release; cat /proc/1/comm; hostname; ip -o -4 addr show dev eth0; "
              "ls /var/containers/log; command -v iperf3 tcpdump python3 ping")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ID=debian" in out and "\nsystemd\n" in out and f"\n{node}\n" in out, out
    assert " 10." in out and "iperf3" in out and "tcpdump" in out and "python3" in out, out
    plain = subprocess.run(["ssh", "-F", str(debian / "ssh_config"), node, "true"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert plain.returncode == 0, plain.stderr
    key = debian / "ssh" / "id_ed25519"
    assert key.stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_qemu_ssh_forward_listens_on_loopback_only(debian):
    exp = ExperimentDir(debian)
    pid = int((Path(exp.run_dir(exp.pnode_of("vm"))) / "vm.qemu.pid").read_text().split()[0])
    addresses = listening(pid)
    assert addresses and all(a.startswith("127.0.0.1:") for a in addresses), addresses


@pytest.mark.slow
def test_image_that_is_not_a_root_fails_naming_the_node(tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "README").write_text("not a root\n")
    image = tmp_path / "junk.tar.gz"
    with tarfile.open(image, "w:gz") as tar:
        tar.add(junk, arcname=".")
    source = tmp_path / "bad.tcl"
    source.write_text(TOPOLOGY.replace("tb-add-node-attribute $vm containers:node_type qemu",
                                       f"tb-add-node-attribute $vm containers:node_type qemu\n"
                                       f"tb-add-node-attribute $vm containers:qemu_url {image}")
                      .replace("containers:node_type openvz", "containers:node_type process"))
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "e2eos", "bad")
    try:
        cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), str(REPO / "playbooks" / "swapin.yml")]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600, check=False)
        assert proc.returncode != 0
        assert f"vm: image {image}: not a root file system" in proc.stdout, proc.stdout[-3000:]
        exp = ExperimentDir(expdir)
        assert not (Path(exp.root(exp.pnode_of("vm"))) / "qemu" / exp.exp_name / "vm" / "root").exists()
    finally:
        playbook(expdir, "swapout")


@pytest.mark.slow
def test_qemu_server_with_twenty_links(tmp_path):
    """A Debian qemu server with a link to each of 20 process nodes: all 20 NICs (behind a PCI bridge) up."""
    lines = ["set ns [new Simulator]", "source tb_compat.tcl", "set server [$ns node]",
             "tb-add-node-attribute $server containers:node_type qemu"]
    for i in range(20):
        lines += [f"set c{i} [$ns node]", f"tb-add-node-attribute $c{i} containers:node_type process",
                  f"set l{i} [$ns duplex-link $server $c{i} 100Mb 0ms DropTail]"]
    lines += ["$ns rtproto Static", "$ns run"]
    source = tmp_path / "server20.tcl"
    source.write_text("\n".join(lines) + "\n")
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "e2eos", "srv20", "--size=1")
    try:
        playbook(expdir, "swapin", "-e", '{"qemu_memory": 384}')
        proc = cz("ssh", str(expdir), "server", "--", "ip -o -4 addr show | grep -c ' eth'")
        assert proc.returncode == 0 and proc.stdout.strip() == "20", proc.stdout + proc.stderr
        far = cz("exec", str(expdir), "c19", "--", "ping", "-c", "1", "-W", "5", "server")
        assert far.returncode == 0, far.stdout + far.stderr
    finally:
        playbook(expdir, "swapout")


def test_templates_are_decompressed_once(tmp_path):
    from ansible_collections.containerize.deploy.plugins.module_utils.image_cache import plain_tarball

    (tmp_path / "root" / "bin").mkdir(parents=True)
    (tmp_path / "root" / "bin" / "sh").write_text("")
    packed = tmp_path / "t.tar.gz"
    with tarfile.open(packed, "w:gz") as tar:
        tar.add(tmp_path / "root", arcname=".")
    plain = plain_tarball(str(packed), str(tmp_path / "cache"))
    assert plain.endswith(".tar") and tarfile.open(plain).getnames()
    assert plain_tarball(str(packed), str(tmp_path / "cache")) == plain
    assert plain_tarball(plain, str(tmp_path / "cache")) == plain  # already plain
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(RuntimeError, match="cannot decompress"):
        plain_tarball(str(broken), str(tmp_path / "cache"))
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [Path(plain).name]
