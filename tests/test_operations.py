"""Operating a running experiment: status, list, exec/console, info, image, live link changes,
annotate, readiness.

The first tests need no swap-in. The ones marked slow swap in a sample with every kind this
machine runs: process nodes (one running a long start command, one whose start command fails, a
ghost), an openvz container (systemd-nspawn) and a qemu node (TCG); CI runs them.
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter_mgmt import parse_showinfo
from containerize.expdir import ExperimentDir
from tests.e2e import ENV, RECAP, REPO, assert_delay, compile_topology, ping_rtts

EXAMPLES = REPO / "examples"
QEMU_IMAGE_DIR = Path("/var/cache/containerize/test-image")
OPENVZ_TEMPLATE_DIR = Path("/var/cache/containerize/openvz")
QEMU_VARS = {"qemu_default_url": str(QEMU_IMAGE_DIR / "rootfs.tar.gz"), "qemu_memory": 160, "qemu_stop_timeout": 10,
             "qemu_boot_timeout": 240}  # fmt: skip


def cz(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "containerize.cli", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=ENV, cwd=REPO, timeout=timeout, check=False)


def _one_line_error(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ----------------------------------------------------------------------------------------------
# without a swap-in


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    # routed.tcl with every node a process node (it asks for a qemu and an openvz node)
    work = tmp_path_factory.mktemp("routed")
    text = (EXAMPLES / "routed.tcl").read_text()
    (work / "routed.tcl").write_text(re.sub(r"^tb-add-node-attribute .*containers:node_type.*$", "", text, flags=re.M))
    expdir = work / "exp"
    compile_topology(work / "routed.tcl", expdir, "opst", "routed", "--default-container=process", "--size=2")
    return expdir


def test_status_of_an_experiment_not_swapped_in(routed):
    proc = cz("status", routed, "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    states = {name: node["state"] for entry in status["pnodes"].values() for name, node in entry["nodes"].items()}
    assert set(states) == set(ExperimentDir(routed).nodes)
    assert set(states.values()) == {"dead"}
    reply = cz("status", routed, "--deter").stdout.strip()
    assert reply.startswith("status_reply {")
    parsed = ast.literal_eval(reply[len("status_reply "):])
    assert sorted(parsed) == ["pnode-0000", "pnode-0001"]
    assert all(value == ["dead", None] for nodes in parsed.values() for value in nodes.values())


def test_list_agrees_with_ansible_inventory(routed):
    data = json.loads(cz("list", routed, "--json").stdout)
    graph = subprocess.run(["ansible-inventory", "-i", str(routed / "inventory"), "--graph"], capture_output=True,
                           text=True, env=ENV, cwd=REPO, check=True).stdout  # fmt: skip
    groups, current = {}, None
    for line in graph.splitlines():
        group = re.search(r"@(pnode_\d+):", line)
        if group:
            current = groups.setdefault(group.group(1), [])
        elif current is not None and re.match(r"^  \|  \|--", line):
            current.append(line.split("--", 1)[1])
        elif not line.startswith("  |  "):
            current = None
    assert {p.replace("-", "_"): [p] + [n["name"] for n in e["nodes"]] for p, e in data["pnodes"].items()} == groups
    text = cz("list", routed).stdout
    assert text.splitlines()[0].startswith("pnode-0000: ")
    assert "r1" in text and "c-2" in text


def test_unreachable_pnodes_report_unknown(routed, tmp_path):
    import shutil

    expdir = tmp_path / "exp"
    shutil.copytree(routed, expdir)
    embedding = (expdir / "embedding.yaml").read_text()
    embedding = embedding.replace('"target": "local"', '"target": "testbed"')
    embedding = re.sub(r'"pnode_host_pattern": "[^"]*"', '"pnode_host_pattern": "pnode-{index:04d}.invalid"', embedding)
    (expdir / "embedding.yaml").write_text(embedding)
    proc = cz("status", expdir, "--deter")  # over Ansible: SSH to pnode-0000.invalid fails
    assert proc.returncode == 0, proc.stderr
    parsed = ast.literal_eval(proc.stdout.strip().removeprefix("status_reply "))
    assert {v[0] for nodes in parsed.values() for v in nodes.values()} == {"unknown"}
    assert "pnode-0001 (pnode-0001.invalid" in cz("list", expdir, "--extra").stdout


def test_parse_wirefilter_showinfo():
    text = ("0000 DATA END WITH '.'\nWireFilter: bidirectional\nLoss   L->R 1.5+0U   R->L 0+0U\n"
            "Delay  L->R 7.25+0U   R->L 5+0U\nBandw  L->R 1.25e+07+0U   R->L 0+0U\n.\n1000 Success\n")
    assert parse_showinfo(text) == {
        "left_to_right": {"loss": 0.015, "delay_ms": 7.25, "bandwidth": 100000000},
        "right_to_left": {"loss": 0.0, "delay_ms": 5.0, "bandwidth": None},
    }


def test_annotate_converts_ns2_and_sets_attributes(tmp_path):
    out = tmp_path / "routed.xml"
    proc = cz("annotate", EXAMPLES / "routed.tcl", out, "--type", "r*", "qemu", "--partition", "a-*,r1", "0",
              "--partition", "b-*,c-*,r2", "1", "--set", "c-2", "containers:node_type=process",
              "--clear", "c-1", "containers:node_type", "--pass", "*", "0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "set containers:node_type=qemu on 2 node(s) matching r*" in proc.stderr
    expdir = tmp_path / "exp"
    compile_topology(out, expdir, "opst", "annotated", "--default-container=process")
    nodes = ExperimentDir(expdir).nodes
    assert {n: (e["kind"], e["pnode"]) for n, e in nodes.items() if n in ("r1", "r2", "a-1", "b-1", "c-1", "c-2")} == {
        "r1": ("qemu", "pnode-0000"), "a-1": ("process", "pnode-0000"), "r2": ("qemu", "pnode-0001"),
        "b-1": ("process", "pnode-0001"), "c-1": ("process", "pnode-0001"), "c-2": ("process", "pnode-0001"),
    }  # fmt: skip
    # annotating TopDL keeps everything else and is idempotent
    again = tmp_path / "again.xml"
    assert cz("annotate", out, again, "--type", "r*", "qemu").returncode == 0
    assert again.read_bytes() == out.read_bytes()
    cleared = tmp_path / "cleared.xml"
    assert cz("annotate", out, cleared, "--clear", "*", "containers:partition").returncode == 0
    assert "containers:partition" not in cleared.read_text() and "containers:PartitionPass" in cleared.read_text()
    # a file that exists is replaced only with --force, and is left as it was otherwise
    before = out.read_bytes()
    proc = cz("annotate", out, out, "--type", "*", "process")
    assert proc.returncode == 2 and "--force" in proc.stderr and out.read_bytes() == before
    assert cz("annotate", out, out, "--type", "*", "process", "--force").returncode == 0
    assert out.read_bytes() != before


@pytest.mark.parametrize("args", [
    ["annotate", "examples/routed.tcl", "/tmp/x.xml", "--type", "zz*", "qemu"],
    ["annotate", "examples/routed.tcl", "/tmp/x.xml", "--type", "r1", "vmware"],
    ["annotate", "examples/routed.tcl", "/tmp/x.xml", "--partition", "r1", "one"],
    ["annotate", "examples/nope.tcl", "/tmp/x.xml"],
    ["status", "/nonexistent"],
    ["list", "/nonexistent"],
    ["exec", "/nonexistent", "a", "--", "true"],
    ["info", "/nonexistent", "a"],
    ["image", "--topo", "examples/routed.tcl", "-o", "/tmp/x.gif"],
    ["image"],
    ["status", "--bogus"],
    ["status-server"],
])
def test_bad_input_is_one_line_and_exit_2(args):
    _one_line_error(cz(*args))


def test_bad_node_link_and_values(routed):
    _one_line_error(cz("exec", routed, "nope", "--", "true"))
    _one_line_error(cz("shape", routed, "no-such-link", "--delay", "5ms"))
    _one_line_error(cz("shape", routed, "core", "--delay", "fast"))
    _one_line_error(cz("shape", routed, "core", "--loss", "2"))
    _one_line_error(cz("shape", routed, "core"))
    # lanC has bandwidth only: its process nodes are shaped by tbf, which cannot add delay
    _one_line_error(cz("shape", routed, "lanC", "--delay", "5ms"))


def test_shape_plans_like_the_compiler_and_records(routed, tmp_path):
    import shutil

    expdir = tmp_path / "exp"
    shutil.copytree(routed, expdir)
    before = (expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text()
    dry = cz("shape", expdir, "lanA", "--delay", "8ms", "--loss", "0.19", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text() == before
    proc = cz("shape", expdir, "lanA", "--delay", "8ms", "--loss", "0.19", "--no-apply")
    assert proc.returncode == 0, proc.stderr
    exp = ExperimentDir(expdir)
    lan_a = [w for p in exp.pnodes for w in exp.pnode_vars(p)["containerize_wirefilters"]
             if w["node"] in ("a-1", "a-2", "a-3") or (w["node"] == "r1" and w["interface"] == "eth0")]
    assert len(lan_a) == 4
    for wf in lan_a:  # each hop: half the delay, loss 1-sqrt(1-0.19) = 0.1
        for direction in ("left_to_right", "right_to_left"):
            assert wf[direction]["delay_ms"] == 4.0 and abs(wf[direction]["loss"] - 0.1) < 1e-9
            assert wf[direction]["bandwidth"] == 100000000
    assert "lanA: delay 8ms, loss 0.19" in (expdir / "shape.log").read_text()
    assert yaml.safe_load((expdir / "wirefilters.yaml").read_text())  # still readable
    # one node's hop only
    assert cz("shape", expdir, "lanA", "--node", "a-2", "--delay", "3ms", "--no-apply").returncode == 0
    exp = ExperimentDir(expdir)
    hops = {w["node"]: w["left_to_right"]["delay_ms"] for p in exp.pnodes
            for w in exp.pnode_vars(p)["containerize_wirefilters"] if w["node"] in ("a-1", "a-2")}
    assert hops == {"a-1": 4.0, "a-2": 3.0}
    # bandwidth on a tbf-shaped LAN changes the nodes' tc
    assert cz("shape", expdir, "lanC", "--bandwidth", "5Mb", "--no-apply").returncode == 0
    exp = ExperimentDir(expdir)
    tcs = [i["tc"]["bandwidth"] for p in exp.pnodes for g in exp.pnode_nodes(p) for i in g["interfaces"]
           if i["substrate"] == "lanC"]
    assert tcs and set(tcs) == {5000000}


def test_image_of_100_nodes_is_readable(tmp_path):
    from bench.topologies import lan_tree

    source = tmp_path / "tree.tcl"
    source.write_text(lan_tree(92, lan_size=12))
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "opst", "tree", "--default-container=process", "--packing=25")
    started = time.monotonic()
    proc = cz("image", expdir, "--partitions", "-o", tmp_path / "tree.png")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60
    data = (tmp_path / "tree.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    # about 1300 px square: node boxes of 9 pt text stay legible at full size, nothing is minuscule
    assert 600 < width < 4000 and 600 < height < 4000, (width, height)
    dot = tmp_path / "tree.dot"
    assert cz("image", expdir, "--partitions", "-o", dot).returncode == 0
    text = dot.read_text()
    assert text.count("subgraph \"cluster_pnode-") == 4
    assert "10.0.7.1" in text and "lan-3" in text
    proc = cz("image", expdir, "-o", dot)
    assert proc.returncode == 2 and "--force" in proc.stderr and dot.read_text() == text
    assert cz("image", expdir, "-o", dot, "--force").returncode == 0
    svg = tmp_path / "routed.svg"
    proc = cz("image", "--topo", EXAMPLES / "routed.tcl", "--link-labels", "--program", "neato", "-o", svg)
    assert proc.returncode == 0, proc.stderr
    assert "lanB" in svg.read_text() and "10.1.1.11" in svg.read_text()
    root = tmp_path / "experiments"
    compile_topology(EXAMPLES / "star10.tcl", root / "opst" / "star", "opst", "star", "--default-container=process")
    proc = cz("image", "--experiment", "opst/star", "--experiments-root", root)
    assert proc.returncode == 0, proc.stderr
    assert (root / "opst" / "star" / "topology.png").exists()


# ----------------------------------------------------------------------------------------------
# on a swapped-in sample with every kind


SAMPLE = textwrap.dedent("""\
    # process nodes (a runs a long start command, f one that fails, g is a ghost), an openvz
    # container c, a qemu node vm; link0 is delay-shaped (wirefilters), lan1 bandwidth only (tbf)
    set ns [new Simulator]
    source tb_compat.tcl
    foreach n {a b c d g f vm} { set $n [$ns node] }
    set link0 [$ns duplex-link $a $b 100Mb 10ms DropTail]
    set lan0 [$ns make-lan "$b $c $g $f $vm" 100Mb 2ms]
    set lan1 [$ns make-lan "$a $d" 10Mb 0ms]
    tb-add-node-attribute $c containers:node_type openvz
    tb-add-node-attribute $vm containers:node_type qemu
    tb-add-node-attribute $g containers:ghost true
    tb-set-node-startcmd $a "sleep 1000"
    tb-set-node-startcmd $f "echo failing; exit 3"
    tb-set-node-startcmd $c "echo hi from c"
    tb-set-node-startcmd $vm "echo hi from vm"
    $ns rtproto Static
    $ns run
""")
KINDS = {"a": "process", "b": "process", "d": "process", "g": "process", "f": "process", "c": "openvz",
         "vm": "qemu"}


def run_playbook(expdir: Path, book: Path, *extra: str, check: bool = True) -> tuple[int, str]:
    cmd = ["ansible-playbook", "-i", str(expdir / "inventory"), "-e", json.dumps(QEMU_VARS), *extra, str(book)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    if check:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return sum(int(m[2]) for m in RECAP.findall(proc.stdout)), proc.stdout + proc.stderr


# Other experiments on this machine share /etc/hosts: a re-run may rewrite this experiment's block there.
HOSTS_BLOCK = {"hv : Set the pnode up for the experiment (and its VDE network with hv_network), or remove it"}


def changed_tasks(output: str) -> set[str]:
    """Names of the tasks that reported a change in ansible-playbook's default output."""
    found, task = set(), None
    for line in output.splitlines():
        header = re.match(r"^TASK \[(.*)\] \**$", line)
        if header:
            task = header.group(1)
        elif line.startswith("changed: [") and task:
            found.add(task)
    return found


class Sample:
    def __init__(self, expdir: Path, swapin: Path, swapout: Path):
        self.expdir, self.swapin, self.swapout = expdir, swapin, swapout
        self.exp = ExperimentDir(expdir)

    def status(self) -> dict:
        proc = cz("status", self.expdir, "--json")
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        return {name: node for entry in data["pnodes"].values() for name, node in entry["nodes"].items()}

    def run_dir(self, node: str) -> Path:
        return Path(self.exp.run_dir(self.exp.pnode_of(node)))

    def wirefilter_pids(self) -> dict[str, int]:
        return {w["id"] + "@" + p: int((Path(self.exp.run_dir(p)) / f"{w['id']}.wf.pid").read_text())
                for p in self.exp.pnodes for w in self.exp.pnode_vars(p)["containerize_wirefilters"]}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    for script, out in (("build-test-image.sh", QEMU_IMAGE_DIR), ("build-openvz-template.sh", OPENVZ_TEMPLATE_DIR)):
        subprocess.run(["bash", str(REPO / "scripts" / script), str(out)], check=True, capture_output=True)
    work = tmp_path_factory.mktemp("ops")
    (work / "sample.tcl").write_text(SAMPLE)
    expdir = work / "exp"
    compile_topology(work / "sample.tcl", expdir, "opst", "sample", "--default-container=process",
                     f"--openvz-template-dir={OPENVZ_TEMPLATE_DIR}", "--openvz-template=busybox")
    swapin, swapout = REPO / "playbooks" / "swapin.yml", REPO / "playbooks" / "swapout.yml"
    try:
        run_playbook(expdir, swapin)
        yield Sample(expdir, swapin, swapout)
    finally:
        run_playbook(expdir, swapout)


@pytest.mark.slow
def test_status_every_kind_with_exit_codes(sample):
    status = sample.status()
    assert {name: node["kind"] for name, node in status.items()} == KINDS
    assert {name: node["state"] for name, node in status.items()} == dict.fromkeys(KINDS, "booted")
    assert status["f"]["exit"] == 3  # its start command failed
    assert status["a"]["exit"] is None and status["a"]["start"] == "started"  # still running
    assert status["c"]["exit"] == 0 and status["vm"]["exit"] == 0
    assert status["g"]["ghost"] and status["g"]["start"] == "none"
    table = cz("status", sample.expdir).stdout
    assert re.search(r"^pnode-\d+\s+f\s+process\s+booted\s+3\b", table, re.M), table
    assert "7 nodes: 7 booted" in table
    reply = cz("status", sample.expdir, "--deter").stdout.strip()
    parsed = ast.literal_eval(reply.removeprefix("status_reply "))
    assert {n: v for nodes in parsed.values() for n, v in nodes.items()}["f"] == ["booted", 3]
    # the same through Ansible (playbooks/status.yml), as on a testbed target
    over_ansible = json.loads(cz("status", sample.expdir, "--json", "--ansible").stdout)
    assert {n: (v["state"], v["exit"]) for e in over_ansible["pnodes"].values() for n, v in e["nodes"].items()} == \
        {n: (v["state"], v["exit"]) for n, v in status.items()}


@pytest.mark.slow
def test_list_matches_the_plan(sample):
    data = json.loads(cz("list", sample.expdir, "--json").stdout)
    listed = {n["name"]: (pnode, n["kind"], n["ghost"]) for pnode, e in data["pnodes"].items() for n in e["nodes"]}
    assert {n: (e["pnode"], e["kind"], e["ghost"]) for n, e in sample.exp.nodes.items()} == listed


@pytest.mark.slow
@pytest.mark.parametrize("node", ["a", "g", "c", "vm"])
def test_exec_every_kind(sample, node):
    proc = cz("exec", sample.expdir, node, "--", "sh", "-c", "hostname; cat /var/containers/eid; exit 7")
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert proc.stdout.split() == [node, "sample"]
    ping = cz("exec", sample.expdir, node, "--", "ping", "-c", "1", "-W", "5", "b")
    assert ping.returncode == 0, ping.stdout + ping.stderr


@pytest.mark.slow
@pytest.mark.parametrize("node", ["b", "c", "vm"])
def test_info_every_kind(sample, node):
    proc = cz("info", sample.expdir, node, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    plan = sample.exp.node_plan(node)
    assert (info["node"], info["kind"], info["project"], info["experiment"]) == (node, KINDS[node], "opst", "sample")
    assert {i["name"]: (i["address"], i["netmask"], i["mac"]) for i in info["interfaces"]} == {
        i["ifname"]: (i["address"], i["netmask"], i["mac"].lower()) for i in plan["interfaces"]}
    # the same command inside the node, where swap-in left it
    inside = cz("exec", sample.expdir, node, "--", "/var/containers/info", "--all")
    assert inside.returncode == 0, inside.stderr
    assert f"Node:       {node}" in inside.stdout and f"Kind:       {KINDS[node]}" in inside.stdout
    assert plan["interfaces"][0]["address"] in inside.stdout


@pytest.mark.slow
def test_console_is_an_interactive_shell(sample):
    proc = cz("console", sample.expdir, "b", stdin="echo on $(hostname)\nexit 4\n")
    assert proc.returncode == 4 and "on b" in proc.stdout, proc.stdout + proc.stderr
    proc = cz("console", sample.expdir, "vm", stdin="echo on $(hostname)\nfalse\nexit\n")
    assert "on vm" in proc.stdout and "[exit 1]" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.slow
def test_image_of_the_swapped_in_sample(sample, tmp_path):
    proc = cz("image", sample.expdir, "--partitions", "-o", tmp_path / "sample.svg")
    assert proc.returncode == 0, proc.stderr
    svg = html.unescape((tmp_path / "sample.svg").read_text())
    address = sample.exp.node_plan("vm")["interfaces"][0]["address"]
    for text in ("pnode-0000", "openvz", "qemu", "process", "ghost", address):
        assert text in svg


def delay_is(expdir: Path, node: str, target: str, want: float) -> None:
    assert_delay(expdir, node, target, want)


@pytest.mark.slow
def test_live_delay_change_shows_in_round_trips(sample):
    # the planned 20 ms round trip itself is judged by test_swapin/test_fidelity/test_datapath; here the
    # change: its median bound (1.25x + 2 ms) flaked at 20 ms on a loaded CI run (28.3 ms), see issue 15
    assert min(ping_rtts(sample.expdir, "a", "b")) >= 0.9 * 20.0 - 0.5
    pids = sample.wirefilter_pids()
    proc = cz("shape", sample.expdir, "link0", "--delay", "40ms")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    delay_is(sample.expdir, "a", "b", 80.0)
    assert sample.wirefilter_pids() == pids, "a wirefilter was restarted"
    links = json.loads(cz("status", sample.expdir, "--links", "--json").stdout)
    shown = [link for e in links["pnodes"].values() for link in e["links"].values()
             if link.get("method") == "wirefilter" and link["node"] in ("a", "b") and link["interface"] == "eth0"]
    assert len(shown) == 2 and all(link["left_to_right"]["delay_ms"] == 20.0 for link in shown)
    assert "differs from plan" not in cz("status", sample.expdir, "--links").stdout
    # a swap-in re-run keeps the new delay and restarts nothing
    _changed, output = run_playbook(sample.expdir, sample.swapin, "--diff")
    assert sample.wirefilter_pids() == pids
    delay_is(sample.expdir, "a", "b", 80.0)
    assert changed_tasks(output) <= HOSTS_BLOCK, output[-3000:]
    # back, through Ansible (playbooks/shape.yml)
    proc = cz("shape", sample.expdir, "link0", "--delay", "10ms", "--ansible")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    delay_is(sample.expdir, "a", "b", 20.0)
    assert sample.wirefilter_pids() == pids


@pytest.mark.slow
def test_live_bandwidth_change_on_a_tbf_lan(sample):
    ns = sample.exp.node_plan("a")["namespace"]
    ifname = next(i["ifname"] for i in sample.exp.node_plan("a")["interfaces"] if i["substrate"] == "lan1")

    def rate() -> int:
        out = subprocess.run(["tc", "-n", ns, "-j", "qdisc", "show", "dev", ifname], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
        return next(q["options"]["rate"] for q in json.loads(out) if q["kind"] == "tbf") * 8

    assert rate() == 10_000_000
    assert cz("shape", sample.expdir, "lan1", "--bandwidth", "5Mb").returncode == 0
    assert rate() == 5_000_000
    changed, output = run_playbook(sample.expdir, sample.swapin)
    assert rate() == 5_000_000
    _one_line_error(cz("shape", sample.expdir, "lan1", "--delay", "5ms"))
    assert cz("shape", sample.expdir, "lan1", "--bandwidth", "10Mb").returncode == 0
    assert rate() == 10_000_000


def _kill_namespace(ns: str) -> None:
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout.split()
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", ns], check=True)


@pytest.mark.slow
def test_killed_nodes_show_dead_then_booted_after_a_rerun(sample):
    _kill_namespace(sample.exp.node_plan("b")["namespace"])
    os.kill(int((sample.run_dir("a") / "a.start.pid").read_text()), signal.SIGKILL)
    os.kill(int((sample.run_dir("c") / "c.openvz.pid").read_text()), signal.SIGKILL)
    os.kill(int((sample.run_dir("vm") / "vm.qemu.pid").read_text()), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = sample.status()
        if all(status[n]["state"] == "dead" for n in ("a", "b", "c", "vm")):
            break
        time.sleep(0.2)
    assert {n: status[n]["state"] for n in ("a", "b", "c", "vm", "d", "f")} == {
        "a": "dead", "b": "dead", "c": "dead", "vm": "dead", "d": "booted", "f": "booted"}
    assert status["b"]["detail"] == "no namespace" and status["a"]["detail"] == "start command killed"
    assert status["f"]["exit"] == 3
    assert cz("exec", sample.expdir, "vm", "--", "true").returncode == 2  # one line: not running
    changed, _output = run_playbook(sample.expdir, sample.swapin)
    assert changed > 0
    status = sample.status()
    assert {n: s["state"] for n, s in status.items()} == dict.fromkeys(KINDS, "booted")
    assert cz("exec", sample.expdir, "vm", "--", "ping", "-c", "1", "-W", "5", "b").returncode == 0


@pytest.mark.slow
def test_readiness_names_late_nodes(sample, tmp_path):
    book = tmp_path / "ready.yml"
    book.write_text("---\n- {name: Ready, hosts: hv, gather_facts: false, roles: [containerize.deploy.readiness]}\n")
    _kill_namespace(sample.exp.node_plan("d")["namespace"])
    started = time.monotonic()
    _changed, output = run_playbook(sample.expdir, book, "-e", "readiness_timeout=2", check=False)
    assert time.monotonic() - started < 60
    assert re.search(r"not booted after 2 s: d dead \(no namespace\)", output), output[-3000:]
    run_playbook(sample.expdir, sample.swapin)
    _changed, output = run_playbook(sample.expdir, book)
    assert not changed_tasks(output), output[-3000:]


@pytest.mark.slow
def test_status_server_answers_deter_requests(sample):
    server = subprocess.Popen([sys.executable, "-m", "containerize.cli", "status-server", "--port", "0",
                               str(sample.expdir)], stdout=subprocess.PIPE, text=True, env=ENV, cwd=REPO)  # fmt: skip
    try:
        port = int(server.stdout.readline().strip().rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            stream = sock.makefile("rwb")

            def ask(line: bytes) -> str:
                stream.write(line)
                stream.flush()
                return stream.readline().decode().strip()

            reply = ask(b"status_request opst/sample\n")
            parsed = ast.literal_eval(reply.removeprefix("status_reply "))
            assert {n: v for nodes in parsed.values() for n, v in nodes.items()}["f"] == ["booted", 3]
            assert ask(b"status_request opst/other\n") == "status_error no experiment opst/other"
            assert ask(b"__import__('os').system('touch /tmp/pwned')\n").startswith("status_error")
            assert not Path("/tmp/pwned").exists()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
