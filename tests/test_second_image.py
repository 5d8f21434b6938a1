"""A second, different real image boots (issue 13): Debian 12 with sysvinit and ifupdown, no systemd.

Built with mmdebstrap from Debian's package registry by the same builder as the default image
(module_utils/os_image.py, profile `debian-12-sysvinit`, `containerize image-build --name
debian-12-sysvinit`: about 45 s once, then cached). It boots as an openvz node next to a process
node over a 10 ms link: sysvinit is PID 1, its rc.local (initscripts' /etc/init.d/rc.local) ran the
start command after the network was up, status says `booted`, the link has its planned delay and
`containerize exec` works.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ansible_collections.containerize.deploy.plugins.module_utils.os_image import DEFAULT_DIR, OsImage
from tests.e2e import ENV, REPO, assert_delay, compile_topology, node_exec, playbook

pytestmark = pytest.mark.slow
NAME = "debian-12-sysvinit"
TOPOLOGY = f"""\
set ns [new Simulator]
source tb_compat.tcl
set ct [$ns node]
set pn [$ns node]
tb-add-node-attribute $ct containers:node_type openvz
tb-add-node-attribute $ct containers:openvz_template {NAME}
tb-add-node-attribute $pn containers:node_type process
tb-add-node-attribute $ct containers:partition 0
tb-add-node-attribute $pn containers:partition 0
tb-set-node-startcmd $ct "cat /proc/1/comm; ip -o -4 addr show eth0 | wc -l; ping -c1 -W5 pn >/dev/null && echo pinged"
set link0 [$ns duplex-link $ct $pn 100Mb 10ms DropTail]
$ns rtproto Static
$ns run
"""


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
    compile_topology(work / "sysv.tcl", expdir, "e2esysv", "ovz")
    try:
        playbook(expdir, "swapin")
        yield expdir
    finally:
        playbook(expdir, "swapout")


def test_the_image_is_sysvinit_with_ifupdown_and_no_systemd(image):
    import tarfile

    with tarfile.open(image.path) as tar:
        names = set(tar.getnames())
    assert "./etc/init.d/rc.local" in names and "./etc/inittab" in names and "./sbin/ifup" in names | {
        n.replace("./usr/sbin/", "./sbin/") for n in names}
    assert not [n for n in names if n.endswith("/systemd") and "/lib/systemd/" in n], "systemd is in the image"


def test_openvz_node_boots_sysvinit_and_is_booted(sysvinit):
    proc = cz("status", str(sysvinit), "--json")
    assert proc.returncode == 0, proc.stderr
    states = {n["name"]: n["state"] for n in json.loads(proc.stdout)["nodes"]}
    assert states["ct"] == "booted", states
    comm = node_exec(sysvinit, "ct", "cat", "/proc/1/comm")
    assert comm.returncode == 0 and comm.stdout.strip() == "init", comm.stdout + comm.stderr
    release = node_exec(sysvinit, "ct", "sh", "-c",
                        "grep ^ID= /etc/os-release; test -d /run/systemd/system || echo no-systemd")
    assert release.stdout.split() == ["ID=debian", "no-systemd"], release.stdout + release.stderr


def test_start_command_ran_after_the_network(sysvinit):
    log = "/var/containers/log/start_command"
    out = node_exec(sysvinit, "ct", "cat", f"{log}.out", f"{log}.log")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[:3] == ["init", "1", "pinged"], out.stdout
    assert "exit 0" in out.stdout


def test_neighbour_by_name_with_the_planned_delay(sysvinit):
    assert_delay(sysvinit, "ct", "pn", 20.0)
