"""A second, different real image boots (issue 13): Debian 12 with sysvinit and ifupdown, no systemd.

Built with mmdebstrap from Debian's package registry by the same builder as the default image
(module_utils/os_image.py, profile `debian-12-sysvinit`, `containerize image-build --name
debian-12-sysvinit`: about 45 s once, then cached). One swap-in boots it as an openvz node (ct, on
one pnode) and as a qemu node (vm, on another: the kinds never share one), each next to a process
node over a 10 ms link: sysvinit is PID 1, its rc.local (initscripts' /etc/init.d/rc.local) ran the
start command after the network was up, status says `booted`, the link has its planned delay and
`containerize exec` works.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time

import pytest

from ansible_collections.containerize.deploy.plugins.module_utils.os_image import DEFAULT_DIR, OsImage
from tests.e2e import ENV, REPO, assert_delay, changed, compile_topology, node_exec, playbook

pytestmark = pytest.mark.slow
NAME = "debian-12-sysvinit"
START = "cat /proc/1/comm; ip -o -4 addr show eth0 | wc -l; ping -c1 -W5 $NB >/dev/null && echo pinged"
TOPOLOGY = f"""\
set ns [new Simulator]
source tb_compat.tcl
set ct [$ns node]
set pn1 [$ns node]
set vm [$ns node]
set pn0 [$ns node]
tb-add-node-attribute $ct containers:node_type openvz
tb-add-node-attribute $ct containers:openvz_template {NAME}
tb-add-node-attribute $vm containers:node_type qemu
tb-add-node-attribute $vm containers:qemu_url {DEFAULT_DIR}/{NAME}.tar.gz
tb-add-node-attribute $pn0 containers:node_type process
tb-add-node-attribute $pn1 containers:node_type process
tb-add-node-attribute $vm containers:partition 0
tb-add-node-attribute $pn0 containers:partition 0
tb-add-node-attribute $ct containers:partition 1
tb-add-node-attribute $pn1 containers:partition 1
tb-set-node-startcmd $ct "{START.replace("$NB", "pn1")}"
tb-set-node-startcmd $vm "{START.replace("$NB", "pn0")}"
set link0 [$ns duplex-link $ct $pn1 100Mb 10ms DropTail]
set link1 [$ns duplex-link $vm $pn0 100Mb 10ms DropTail]
$ns rtproto Static
$ns run
"""
NEIGHBOUR = {"ct": "pn1", "vm": "pn0"}


def cz(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "containerize.cli", *args], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def image():
    """The sysvinit image in the default image directory (built once, then found current)."""
    proc = cz("image-build", "--name", NAME, "--quiet", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    built = OsImage(DEFAULT_DIR, NAME)
    assert built.state()["current"]
    return built


@pytest.fixture(scope="module")
def sysvinit(tmp_path_factory, image):
    work = tmp_path_factory.mktemp("sysvinit")
    (work / "sysv.tcl").write_text(TOPOLOGY)
    expdir = work / "exp"
    compile_topology(work / "sysv.tcl", expdir, "e2esysv", "two")
    try:
        started = time.monotonic()
        playbook(expdir, "swapin", "-e", '{"qemu_memory": 256}')
        print(f"swap-in of a sysvinit openvz and qemu node: {time.monotonic() - started:.1f} s")
        yield expdir
    finally:
        started = time.monotonic()
        playbook(expdir, "swapout")
        print(f"swap-out: {time.monotonic() - started:.1f} s")


def test_the_image_is_sysvinit_with_ifupdown_and_no_systemd(image):
    with tarfile.open(image.path) as tar:
        names = set(tar.getnames())
    for path in ("./etc/init.d/rc.local", "./etc/inittab", "./usr/sbin/ifup", "./usr/sbin/init", "./usr/bin/kmod",
                 "./usr/bin/udevadm", "./etc/acpi/events/powerbtn"):
        assert path in names, path
    assert not [n for n in names if n.endswith("/systemd") and "/lib/systemd/" in n], "systemd is in the image"


@pytest.mark.parametrize("node", ["ct", "vm"])
def test_node_boots_sysvinit_and_is_booted(sysvinit, node):
    proc = cz("status", str(sysvinit), "--json")
    assert proc.returncode == 0, proc.stderr
    states = {n["name"]: n["state"] for n in json.loads(proc.stdout)["nodes"]}
    assert states[node] == "booted", states
    comm = node_exec(sysvinit, node, "cat", "/proc/1/comm")
    assert comm.returncode == 0 and comm.stdout.strip() == "init", comm.stdout + comm.stderr
    release = node_exec(sysvinit, node, "sh", "-c",
                        "grep ^ID= /etc/os-release; test -d /run/systemd/system || echo no-systemd")
    assert release.stdout.split() == ["ID=debian", "no-systemd"], release.stdout + release.stderr


@pytest.mark.parametrize("node", ["ct", "vm"])
def test_start_command_ran_after_the_network(sysvinit, node):
    log = "/var/containers/log/start_command"
    out = node_exec(sysvinit, node, "cat", f"{log}.out", f"{log}.log")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["init", "1", "pinged"], out.stdout
    assert "exit 0" in out.stdout


@pytest.mark.parametrize("node", ["ct", "vm"])
def test_neighbour_by_name_with_the_planned_delay(sysvinit, node):
    assert_delay(sysvinit, node, NEIGHBOUR[node], 20.0)


def test_rerun_changes_nothing(sysvinit):
    assert changed(playbook(sysvinit, "swapin", "-e", '{"qemu_memory": 256}')) == 0
