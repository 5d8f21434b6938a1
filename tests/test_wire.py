"""cz-wire, the shaping element in each wirefilter's place (issue 15), and wire_element, which builds it.

Real parts: gcc builds the vde role's files/wire (cz-wire.c, mgmt.c, wire.h), two real vde_switch daemons and two
network namespaces with vde_plug2tap taps carry real pings through it. The element's management
socket is read with the same code (wirefilter_mgmt) that link_shaping, status and `containerize shape` use.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import shaping_args
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter_mgmt import (
    WirefilterSession,
    parse_showinfo,
)
from tests.e2e import REPO

DEPLOY = REPO / "ansible_collections" / "containerize" / "deploy"
WIRE = DEPLOY / "roles" / "vde" / "files" / "wire"
MODULE = DEPLOY / "plugins" / "modules" / "wire_element.py"

needs_gcc = pytest.mark.skipif(not shutil.which("gcc"), reason="no gcc (scripts/install.sh installs it)")


def wire_element(tmp_path: Path, edits: dict | None = None, **params) -> dict:
    """Run the wire_element module (its own main, as Ansible runs it) with PARAMS on the role's sources (with
    EDITS, {name: text appended}); its JSON result."""
    args = tmp_path / f"args{time.monotonic_ns()}.json"
    files = {path.name: {"content": path.read_text() + (edits or {}).get(path.name, ""), "mode": "0644"}
             for path in sorted(WIRE.iterdir())}
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"files": files, **params}}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(MODULE), str(args)], capture_output=True, text=True, env=env,
                          check=False, timeout=180)
    return json.loads(proc.stdout)


def test_shaping_args_exact_for_cz_wire_and_whole_ms_for_wirefilter():
    spec = {"delay_ms": 2.5, "bandwidth": 100_000_000, "loss": 0.1}
    assert shaping_args("LR", spec) == ["-d", "LR3", "-b", "LR12500000", "-l", "LR10"]
    assert shaping_args("RL", spec) == ["-d", "RL2", "-b", "RL12500000", "-l", "RL10"]
    assert shaping_args("LR", spec, exact=True) == ["-d", "LR2.5", "-b", "LR12500000", "-l", "LR10"]
    assert shaping_args("RL", {"delay_ms": 0.0125}, exact=True) == ["-d", "RL0.0125"]


@needs_gcc
def test_wire_element_builds_once_per_source_and_falls_back(tmp_path):
    dest = tmp_path / "wire"
    first = wire_element(tmp_path, dest=str(dest))
    assert first["changed"] and first["element"] == "cz-wire", first
    assert Path(first["program"]).name == "cz-wire" and os.access(first["program"], os.X_OK)
    assert subprocess.run([first["program"], "--selftest"], check=False).returncode == 0
    again = wire_element(tmp_path, dest=str(dest))
    assert not again["changed"] and again["program"] == first["program"], again
    edited = wire_element(tmp_path, {"mgmt.c": "/* edited */\n"}, dest=str(dest))  # any source: a new build
    assert edited["changed"] and edited["element"] == "cz-wire" and edited["program"] != first["program"], edited
    assert not os.path.exists(first["program"])
    # no compiler: wirefilter, recorded and warned, not a failure; the same fallback again is no change
    other = tmp_path / "other"
    fallback = wire_element(tmp_path, dest=str(other), cc="no-such-cc")
    assert fallback["element"] == "wirefilter" and fallback["program"] == "wirefilter", fallback
    assert "no C compiler" in fallback["reason"] and fallback.get("failed") is not True
    assert "wirefilter shapes the links" in json.dumps(fallback)  # the warning
    assert json.loads((other / "element.json").read_text())["element"] == "wirefilter"
    assert not wire_element(tmp_path, dest=str(other), cc="no-such-cc")["changed"]
    # check mode writes nothing
    dry = tmp_path / "dry"
    assert wire_element(tmp_path, dest=str(dry), _ansible_check_mode=True)["changed"]
    assert not dry.exists()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> str:
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    out = tmp_path_factory.mktemp("czw") / "cz-wire"
    units = [str(path) for path in sorted(WIRE.glob("*.c"))]
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(out), *units, "-l:libvdeplug.so.2"], check=True)
    return str(out)


def test_bad_arguments_are_one_line_and_exit_2(built):
    proc = subprocess.run([built, "-v", "a:b", "-d", "LRfast"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "allowed" in proc.stderr
    assert subprocess.run([built], capture_output=True, check=False).returncode == 2


class Wire:
    """Two switches, a cz-wire between them, and a namespace with a tap on each (10.77.0.1, .2)."""

    def __init__(self, program: str, base: Path, *shaping: str):
        self.base, self.tag = base, f"czw{os.getpid()}"
        self.procs: list[subprocess.Popen] = []
        self.pids: list[int] = []
        for side in "lr":
            subprocess.run(["vde_switch", "-d", "-s", str(base / f"{side}.ctl"), "-p", str(base / f"{side}.pid")],
                           check=True)
            self.pids.append(self.pid(base / f"{side}.pid"))
        subprocess.run([program, "--daemon", "--pidfile", str(base / "w.pid"), "-M", str(base / "w.mgmt"),
                        "-v", f"{base / 'l.ctl'}:{base / 'r.ctl'}", *shaping], check=True)
        self.pids.append(self.pid(base / "w.pid"))
        for number, side in enumerate("lr", 1):
            ns = f"{self.tag}{side}"
            subprocess.run(["ip", "netns", "add", ns], check=True)
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "vde_plug2tap", "-s",
                                                str(base / f"{side}.ctl"), "eth0"]))
            for _ in range(100):
                if subprocess.run(["ip", "-n", ns, "link", "show", "eth0"], capture_output=True,
                                  check=False).returncode == 0:
                    break
                time.sleep(0.05)
            subprocess.run(["ip", "-n", ns, "addr", "add", f"10.77.0.{number}/24", "dev", "eth0"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)

    @staticmethod
    def pid(path: Path) -> int:
        """The pid a daemon writes to PATH after it forked (vde_switch -d writes it a moment later)."""
        for _ in range(200):
            if path.exists() and path.read_text().strip():
                return int(path.read_text())
            time.sleep(0.025)
        raise AssertionError(f"{path}: no pid file")

    def rtts(self, count: int, interval: float = 0.02) -> list[float]:
        subprocess.run(["ip", "netns", "exec", f"{self.tag}l", "ping", "-c", "2", "-W", "2", "10.77.0.2"],
                       capture_output=True, check=False)
        proc = subprocess.run(["ip", "netns", "exec", f"{self.tag}l", "ping", "-n", "-c", str(count), "-i",
                               str(interval), "-W", "2", "10.77.0.2"], capture_output=True, text=True, check=False)
        return [float(part.split("=")[1]) for part in proc.stdout.split() if part.startswith("time=")]

    def close(self):
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=10)
        for pid in self.pids:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
        for side in "lr":
            subprocess.run(["ip", "netns", "del", f"{self.tag}{side}"], check=False)
        time.sleep(0.2)


@pytest.mark.slow
def test_delay_by_the_microsecond_and_the_management_socket(built, tmp_path):
    """A 2.25 ms delay each way (4.5 ms round trip, wirefilter would give 4) through real switches and taps;
    the management socket speaks wirefilter's protocol and changes the delay live."""
    wire = Wire(built, tmp_path, "-d", "2.25")
    try:
        rtts = wire.rtts(100)
        assert len(rtts) >= 95
        p50 = statistics.median(rtts)
        print(f"cz-wire 4.5 ms planned: p50 {p50:.3f} ms, min {min(rtts):.3f}")
        assert 4.5 <= min(rtts) and p50 <= 4.5 + 0.5, rtts
        with WirefilterSession(str(tmp_path / "w.mgmt"), 2.0) as session:
            assert session.values()["LR"]["delay"] == 2.25
            assert session.command("delay LR 0.5").startswith("1000")
            assert session.command("delay RL 0.5").startswith("1000")
            assert session.command("loss LR 101").startswith("1022")
            assert session.command("nonsense").startswith("1038")
            shown = parse_showinfo(session.command("showinfo"))
        assert shown["left_to_right"]["delay_ms"] == 0.5 and shown["right_to_left"]["loss"] == 0.0
        rtts = wire.rtts(50)
        assert 1.0 <= min(rtts) and statistics.median(rtts) <= 1.5, rtts
    finally:
        wire.close()


@pytest.mark.slow
def test_bandwidth_paces_and_loss_drops(built, tmp_path):
    """1,000-byte pings at 100 KB/s both ways are paced (10 ms a frame when sent faster), 50 % loss each way
    loses about 75 % of the round trips."""
    wire = Wire(built, tmp_path, "-b", "100000")
    try:
        subprocess.run(["ip", "netns", "exec", f"{wire.tag}l", "ping", "-c", "2", "-W", "2", "10.77.0.2"],
                       capture_output=True, check=False)
        started = time.monotonic()
        proc = subprocess.run(["ip", "netns", "exec", f"{wire.tag}l", "ping", "-n", "-c", "20", "-s", "1000", "-f",
                               "-W", "2", "10.77.0.2"], capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
        assert " 0% packet loss" in proc.stdout, proc.stdout
        assert elapsed >= 19 * 0.010, elapsed  # flood pings one at a time: each pays the pacing of its frame
        with WirefilterSession(str(tmp_path / "w.mgmt"), 2.0) as session:
            session.command("bandwidth 0")
            session.command("loss 50")
        proc = subprocess.run(["ip", "netns", "exec", f"{wire.tag}l", "ping", "-n", "-c", "400", "-i", "0.005",
                               "-W", "1", "10.77.0.2"], capture_output=True, text=True, check=False)
        received = int(proc.stdout.split(" received")[0].rsplit(" ", 1)[1])
        assert 60 <= received <= 140, proc.stdout  # 100 expected; 99.99 % binomial interval ~ 100 +- 34
    finally:
        wire.close()


class JoinedWire:
    """Two namespaces, each with a cz-wire as its plug (tap://eth0) joined to the other's by peer://, as
    process_nodes runs the two hops of a joined point-to-point link (no switch)."""

    def __init__(self, program: str, base: Path, *shaping: str):
        self.program, self.base, self.tag, self.shaping = program, base, f"czj{os.getpid()}", shaping
        for number, side in enumerate("lr", 1):
            subprocess.run(["ip", "netns", "add", f"{self.tag}{side}"], check=True)
            self.start(side)
            self.configure(side, number)

    def configure(self, side: str, number: int):
        """The address and MAC of SIDE's new tap (a fixed MAC, as process_nodes plans one: the peer's ARP entry
        stays right when the element and its tap are made again)."""
        ns = f"{self.tag}{side}"
        subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "address", f"02:00:0a:4e:00:0{number}"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", f"10.78.0.{number}/24", "dev", "eth0"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)

    def start(self, side: str):
        other = "r" if side == "l" else "l"
        peer = f"peer://{self.base / (side + '.data')},{self.base / (other + '.data')}"
        subprocess.run(["ip", "netns", "exec", f"{self.tag}{side}", self.program, "--daemon", "--pidfile",
                        str(self.base / f"{side}.pid"), "-M", str(self.base / f"{side}.mgmt"), "-v",
                        f"tap://eth0:{peer}", *self.shaping], check=True)

    def pid(self, side: str) -> int:
        return Wire.pid(self.base / f"{side}.pid")

    def rtts(self, count: int) -> list[float]:
        argv = ["ip", "netns", "exec", f"{self.tag}l", "ping", "-n", "-i", "0.02", "-W", "2", "10.78.0.2"]
        subprocess.run([*argv[:4], "ping", "-c", "2", "-W", "2", "10.78.0.2"], capture_output=True, check=False)
        out = subprocess.run([*argv[:5], "-c", str(count), *argv[5:]], capture_output=True, text=True,
                             check=False).stdout
        return [float(part.split("=")[1]) for part in out.split() if part.startswith("time=")]

    def close(self):
        for side in "lr":
            try:
                os.kill(self.pid(side), 15)
            except (ProcessLookupError, AssertionError):
                pass
            subprocess.run(["ip", "netns", "del", f"{self.tag}{side}"], check=False)
        time.sleep(0.2)


@pytest.mark.slow
def test_two_elements_joined_without_a_switch(built, tmp_path):
    """peer://SELF,PEER: two hops of 1.125 ms each way (4.5 ms round trip) with no switch between the elements;
    an element killed and started again is joined again (its peer sends to the path, whoever binds it),
    and its socket goes with it when it stops."""
    wire = JoinedWire(built, tmp_path, "-d", "1.125")
    try:
        rtts = wire.rtts(100)
        assert len(rtts) >= 95 and 4.5 <= min(rtts) and statistics.median(rtts) <= 4.5 + 0.5, rtts
        os.kill(wire.pid("r"), 9)
        time.sleep(0.2)
        wire.start("r")
        wire.configure("r", 2)  # a new tap
        assert len(wire.rtts(20)) >= 18
        os.kill(wire.pid("l"), 15)
        for _ in range(100):
            if not (tmp_path / "l.data").exists():
                break
            time.sleep(0.02)
        assert not (tmp_path / "l.data").exists() and (tmp_path / "r.data").exists()
    finally:
        wire.close()


def test_a_bad_peer_url_is_one_line_and_exit_2(built, tmp_path):
    left = f"peer://{tmp_path / 'a'},{tmp_path / 'b'}"
    proc = subprocess.run([built, "-v", f"{left}:peer://{tmp_path / 'only'}"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "peer://SELF,PEER" in proc.stderr, proc.stderr
