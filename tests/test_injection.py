"""No injection: text from a topology never runs anything on a pnode, except each start command, once,
inside its own node, as `sh -c 'COMMAND'` would run it.

The payloads below carry shell and Jinja metacharacters (`;`, `$(...)`, backquotes, quotes, newlines,
`{{ }}`, `{% %}`, `{# #}`, a `#jinja2:` header, a Jinja key). Each would create a file in a marker
directory on the pnode if anything but the node's own shell ran it: Ansible templating the inventory
(host_vars/group_vars are trusted templates), a second shell evaluation on the pnode or in the node,
or a script that pasted the text in. Names are the other vector: the compiler rejects every name
that is not letters, digits and '-', so names never need quoting.

Fast tests compile only. The slow ones swap in for real: process, openvz (systemd-nspawn) and one
qemu node from an ns2 file, process nodes from a TopDL file, and the embedded_pnode start path on a
simulated machine root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from xml.sax.saxutils import escape

import pytest
import yaml

from ansible_collections.containerize.deploy.plugins.plugin_utils.modules import COLLECTION
from containerize.cli import main as containerize_main
from containerize.expdir import ExperimentDir, library_module
from containerize.writers.yamlout import LOADER, render
from tests.e2e import ENV, REPO, compile_topology, host_state, node_exec, playbook

QEMU_IMAGE_DIR = Path("/var/cache/containerize/test-image")
OPENVZ_TEMPLATE_DIR = Path("/var/cache/containerize/openvz")
QEMU_VARS = {"qemu_default_url": str(QEMU_IMAGE_DIR / "rootfs.tar.gz"), "qemu_memory": 160, "qemu_stop_timeout": 10,
             "qemu_boot_timeout": 240}  # fmt: skip
PROJECT = "inj"
COMPILE_ARGS = ("--default-container=process", "--openvz-template=busybox",
                f"--openvz-template-dir={OPENVZ_TEMPLATE_DIR}")

# MARK is replaced by the marker directory. Every line but the last prints one line of .out.
START = r"""echo "J={{ lookup('pipe', 'touch MARK/jinja-start') }}"
echo "B={% if true %}{{ lookup('pipe', 'touch MARK/jinja-block') }}{% endif %}{# MARK #}"
echo 'S=$(touch MARK/shell-dollar) `touch MARK/shell-backquote`; touch MARK/shell-semicolon'
echo "D=\"double\" 'single'"
echo "H=$(hostname)"
echo "E=`cat /var/containers/eid`"
echo once >> /var/containers/log/runs"""
START_OUT = """J={{ lookup('pipe', 'touch MARK/jinja-start') }}
B={% if true %}{{ lookup('pipe', 'touch MARK/jinja-block') }}{% endif %}{# MARK #}
S=$(touch MARK/shell-dollar) `touch MARK/shell-backquote`; touch MARK/shell-semicolon
D="double" 'single'
H=NODE
E=EID
"""
NOTE = ("x; $(touch MARK/attr-dollar) `touch MARK/attr-backquote` 'single' \"double\" | touch MARK/attr-pipe &\n"
        "second line {{ lookup('pipe', 'touch MARK/jinja-attr') }} "
        "{% if true %}{{ lookup('pipe', 'touch MARK/jinja-attr-block') }}{% endif %}")
HEADER = "#jinja2:variable_start_string:'[[', variable_end_string:']]'\n[[ lookup('pipe', 'touch MARK/jinja-header') ]]"
KEY = "{{ lookup('pipe', 'touch MARK/jinja-key') }}"
# OS ids and hardware types must be plain words (the compiler says so); these are refused
OS = "os'; $(touch MARK/os-dollar) {{ lookup('pipe', 'touch MARK/jinja-os') }}"
HARDWARE = "pc`touch MARK/hw-backquote`;{{ lookup('pipe', 'touch MARK/jinja-hw') }}\nnext"
# argv for `containerize exec`: each must arrive as one argument, untouched
EXEC_ARGS = [";", "$(touch MARK/exec-dollar)", "`touch MARK/exec-backquote`", "'", '"', "a\nb", "*", "a  b", "",
             "{{ lookup('pipe', 'touch MARK/exec-jinja') }}", "x; touch MARK/exec-semicolon"]


def _mark(text: str, marks: Path) -> str:
    return text.replace("MARK", str(marks))


def attributes(marks: Path) -> dict[str, str]:
    return {"note": _mark(NOTE, marks), _mark(KEY, marks): "value", "header": _mark(HEADER, marks)}


def markers(marks: Path) -> list[str]:
    return sorted(p.name for p in marks.iterdir())


def _braced(text: str) -> str:
    """A Tcl word in braces: the text exactly, no substitution."""
    depth = 0
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, text
    assert depth == 0 and "\\\n" not in text, text
    return "{" + text + "}"


def ns2_topology(marks: Path, extra: str = "") -> str:
    """a (process), c (openvz) and vm (qemu) run START and carry every payload; b has nothing."""
    lines = ["set ns [new Simulator]", "source tb_compat.tcl", "foreach n {a b c vm} { set $n [$ns node] }",
             'set lan0 [$ns make-lan "$a $b $c $vm" 100Mb 0ms]',
             "tb-add-node-attribute $c containers:node_type openvz",
             "tb-add-node-attribute $vm containers:node_type qemu"]
    for node in ("a", "c", "vm"):
        lines.append(f"tb-set-node-startcmd ${node} {_braced(_mark(START, marks))}")
        lines += [f"tb-add-node-attribute ${node} {_braced(k)} {_braced(v)}" for k, v in attributes(marks).items()]
    return "\n".join([*lines, extra, "$ns rtproto Static", "$ns run", ""])


def _topdl_attribute(key: str, value: str) -> str:
    return f"<attribute><attribute>{escape(key)}</attribute><value>{escape(value)}</value></attribute>"


def topdl_topology(marks: Path, node_names=("x", "y"), substrate="link0", extra=()) -> str:
    """x runs START and carries every payload (startup and other attributes); y has nothing."""
    computers = []
    for name in node_names:
        attrs = ""
        if name == node_names[0]:
            attrs = "".join(_topdl_attribute(k, v) for k, v in [
                ("startup", _mark(START, marks)), *attributes(marks).items(), *extra])
        computers.append(f"<computer><name>{escape(name)}</name>{attrs}"
                         f"<interface><substrate>{escape(substrate)}</substrate></interface></computer>")
    return (f'<?xml version="1.0"?>\n<experiment><substrates><name>{escape(substrate)}</name></substrates>'
            f"<elements>{''.join(computers)}</elements></experiment>\n")


def ansible(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120, check=False)


def node_of(host: dict, node: str) -> dict:
    return next(g for g in host["containerize_nodes"] if g["name"] == node)


# ----------------------------------------------------------------------------------------------
# names: the compiler rejects every metacharacter (exit 2, one line, no directory)

NAME_CHARS = [";", "$", "(", ")", "`", "'", '"', "\n", " ", "\t", "{", "}", "%", "|", "&", "<", ">", "*", "?",
              "\\", "/", ".", "#", "!", "~", "=", ":", ",", "@", "^", "[", "]", "+", "\u00e9"]


def _tcl_string(text: str) -> str:
    """A double-quoted Tcl word for TEXT (any characters)."""
    return '"' + re.sub(r'([\\"$\[\]])', r"\\\1", text).replace("\n", "\\n").replace("\t", "\\t") + '"'


def _ns2_named(what: str, name: str) -> str:
    var = _tcl_string(name)
    body = "set n0 [$ns node]\nset n1 [$ns node]\n"
    if what == "node":
        body += f"set {var} [$ns node]\nset l0 [$ns duplex-link $n0 $n1 10Mb 0ms DropTail]\n"
    else:
        body += f"set {var} [$ns duplex-link $n0 $n1 10Mb 0ms DropTail]\n"
    return f"set ns [new Simulator]\nsource tb_compat.tcl\n{body}$ns run\n"


@pytest.mark.parametrize("fmt", ["ns2", "topdl"])
@pytest.mark.parametrize("what", ["node", "substrate"])
@pytest.mark.parametrize("char", NAME_CHARS, ids=[repr(c) for c in NAME_CHARS])
def test_names_with_metacharacters_are_rejected(tmp_path, capsys, fmt, what, char):
    name = f"a{char}b"
    if fmt == "ns2":
        source = tmp_path / "names.tcl"
        source.write_text(_ns2_named(what, name))
    else:
        source = tmp_path / "names.xml"
        nodes = (name, "b0") if what == "node" else ("a0", "b0")
        source.write_text(topdl_topology(tmp_path, nodes, name if what == "substrate" else "link0"))
    out = tmp_path / "exp"
    status = containerize_main(["--no-image", "--out", str(out), "--default-container=process", PROJECT, "names",
                                str(source)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(r"name|invalid|cannot", err), err
    assert not out.exists()


@pytest.mark.parametrize("name", ["-a", "a" * 64, "", "pnode-0001"])
def test_names_that_would_be_options_or_too_long_are_rejected(tmp_path, capsys, name):
    source = tmp_path / "names.xml"
    source.write_text(topdl_topology(tmp_path, (name, "b0")))
    status = containerize_main(["--no-image", "--out", str(tmp_path / "exp"), PROJECT, "names", str(source)])
    assert status == 2, capsys.readouterr().err
    assert not (tmp_path / "exp").exists()


# ----------------------------------------------------------------------------------------------
# the compiled inventory: every value verbatim, nothing a template


def test_yaml_writer_marks_every_template_string_unsafe():
    values = ["{{ x }}", "a {% if %}", "{# c #}", "#jinja2:x\n[[ y ]]", '\\"{{', "plain { } % #", "#jinja2 no"]
    data = {"top": [{"k": v, v: v} for v in values], "{{ key }}": 1}
    text = render(data)
    assert yaml.load(text, Loader=LOADER) == data
    tagged = re.findall(r'!unsafe ("(?:[^"\\]|\\.)*")', text)
    assert sorted(set(map(json.loads, tagged))) == sorted([*values[:5], "{{ key }}"])
    assert "!unsafe" not in render({"a": ["plain { } % #", "$(x) `y`; 'z'"]})


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The ns2 and TopDL topologies compiled (not swapped in), with their marker directories."""
    result = {}
    for fmt in ("ns2", "topdl"):
        work = tmp_path_factory.mktemp(f"compiled-{fmt}")
        marks = work / "marks"
        marks.mkdir()
        source = work / ("inj.tcl" if fmt == "ns2" else "inj.xml")
        source.write_text(ns2_topology(marks) if fmt == "ns2" else topdl_topology(marks))
        compile_topology(source, work / "exp", PROJECT, f"c{fmt}", *COMPILE_ARGS)
        result[fmt] = SimpleNamespace(expdir=work / "exp", marks=marks, node="a" if fmt == "ns2" else "x")
    return result


@pytest.mark.parametrize("fmt", ["ns2", "topdl"])
def test_inventory_shows_every_value_verbatim(compiled, fmt):
    exp = compiled[fmt]
    proc = ansible("ansible-inventory", "-i", str(exp.expdir / "inventory"), "--host", "pnode-0000")
    assert proc.returncode == 0, proc.stderr
    node = node_of(json.loads(proc.stdout), exp.node)
    assert node["startcmd"] == _mark(START, exp.marks)
    for key, value in attributes(exp.marks).items():
        assert node["attributes"][key] == value
    # the node itself: what the plugin sets, as data
    proc = ansible("ansible-inventory", "-i", str(exp.expdir / "inventory"), "--host", exp.node)
    assert proc.returncode == 0 and json.loads(proc.stdout)["containerize_kind"] == "process", proc.stderr
    # the written file: Jinja-looking strings carry !unsafe, the rest is plain JSON
    text = (exp.expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text()
    assert '"startcmd": !unsafe "echo' in text and '"header": !unsafe "#jinja2:' in text
    assert '"hostname": !unsafe' not in text
    assert markers(exp.marks) == []


@pytest.mark.parametrize("fmt", ["ns2", "topdl"])
def test_ansible_renders_the_inventory_without_evaluating_it(compiled, fmt):
    """Ansible templates every variable a task uses: debug shows each value as written, runs nothing."""
    exp = compiled[fmt]
    proc = ansible("ansible", "-i", str(exp.expdir / "inventory"), "pnode-0000", "-m", "ansible.builtin.debug",
                   "-a", "var=containerize_nodes", "-o")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert markers(exp.marks) == []
    shown = json.loads(proc.stdout.split("=>", 1)[1])["containerize_nodes"]
    node = node_of({"containerize_nodes": shown}, exp.node)
    assert node["startcmd"] == _mark(START, exp.marks)
    for key, value in attributes(exp.marks).items():
        assert node["attributes"][key] == value


def test_shape_rewrites_the_inventory_without_making_it_a_template(tmp_path):
    """`containerize shape` rewrites host_vars: what was !unsafe stays so, and Ansible still evaluates nothing."""
    marks = tmp_path / "marks"
    marks.mkdir()
    source = tmp_path / "inj.tcl"
    source.write_text(ns2_topology(marks).replace("100Mb 0ms", "100Mb 10ms"))
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, PROJECT, "shape", *COMPILE_ARGS)
    host_vars = expdir / "inventory" / "host_vars" / "pnode-0000.yml"
    before = host_vars.read_text()
    proc = subprocess.run([sys.executable, "-m", "containerize.cli", "shape", str(expdir), "lan0", "--delay", "20ms",
                           "--no-apply"], capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    after = host_vars.read_text()
    assert after != before  # rewritten with the new delay
    assert after.count("!unsafe") == before.count("!unsafe") > 0
    proc = ansible("ansible", "-i", str(expdir / "inventory"), "pnode-0000", "-m", "ansible.builtin.debug",
                   "-a", "var=containerize_nodes", "-o")
    assert proc.returncode == 0 and markers(marks) == [], proc.stdout + proc.stderr


@pytest.mark.parametrize("fmt", ["ns2", "topdl"])
@pytest.mark.parametrize("field", ["os", "hardware"])
def test_os_and_hardware_with_metacharacters_are_rejected(tmp_path, capsys, fmt, field):
    value = _mark(OS if field == "os" else HARDWARE, tmp_path)
    if fmt == "ns2":
        source = tmp_path / "inj.tcl"
        command = "tb-set-node-os" if field == "os" else "tb-set-hardware"
        source.write_text(ns2_topology(tmp_path, extra=f"{command} $b {_braced(value)}"))
    else:
        source = tmp_path / "inj.xml"
        source.write_text(topdl_topology(tmp_path, extra=[("osid" if field == "os" else "type", value)]))
    status = containerize_main(["--no-image", "--out", str(tmp_path / "exp"), *COMPILE_ARGS, PROJECT, "words",
                                str(source)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "exp").exists()
    assert markers(tmp_path) == ["inj.tcl" if fmt == "ns2" else "inj.xml"]


def test_physical_topology_quotes_hardware_and_os(tmp_path):
    """An embedded_pnode node's hardware and OS go into phys_topo.ns, Tcl that a testbed evaluates: whatever
    they hold stays one word (the compiler refuses such values before; this writer does not rely on it)."""
    from containerize.model import Node, Topology
    from containerize.readers.ns2 import read_ns2
    from containerize.writers.physical import phys_ns, phys_topology

    marks = tmp_path / "marks"
    marks.mkdir()
    topo = Topology(source="x", fmt="ns2")
    topo.nodes["e"] = Node("e", kind="embedded_pnode", os=_mark(OS, marks), hardware=_mark(HARDWARE, marks))
    phys = phys_topology(topo, {"pnode-0000": ["e"]}, {"pnode-0000": ["pc", "pc;x{", "$(y)"]}, {}, pid="p", eid="e")
    (tmp_path / "phys_topo.ns").write_text(phys_ns(phys, "p", "e"))
    back = read_ns2(str(tmp_path / "phys_topo.ns"))
    assert (back.nodes["pnode-0000"].hardware, back.nodes["pnode-0000"].os) == (_mark(HARDWARE, marks),
                                                                                  _mark(OS, marks))
    assert back.vtypes == {"pnodetype0": ["pc", "pc;x{", "$(y)"]}  # pnode types (options) are quoted too
    assert markers(marks) == []


def test_vzctl_config_refuses_shell_text():
    """CTID.conf of the vzctl runtime is sourced by shells: a template name cannot carry code into it."""
    from ansible_collections.containerize.deploy.plugins.module_utils.vzctl import vz_conf

    fake = SimpleNamespace(spec={"interfaces": [{"ifname": "eth0", "mac": "02:00:00:00:00:01"}]}, private="/p",
                           rootfs="/p/root", hostname="c", size=1 << 30, template="debian-12")
    conf = vz_conf(fake, 1000)
    assert 'OSTEMPLATE="debian-12"\n' in conf and 'NETIF="ifname=eth0,mac=02:00:00:00:00:01,' in conf
    for template in ['x"; touch /tmp/pwned; "', "$(touch /tmp/pwned)", "`touch /tmp/pwned`", "x\ntouch /tmp/pwned",
                     "x\\"]:
        fake.template = template
        with pytest.raises(RuntimeError, match="OSTEMPLATE"):
            vz_conf(fake, 1000)


@pytest.mark.parametrize("cpus", ["0;touch /tmp/pwned", "$(touch /tmp/pwned)", "0 --pid 1", "-a", "0\n1", ""])
def test_a_cpu_list_is_only_digits_commas_and_dashes(cpus):
    """A node's cpus becomes an argument of taskset: the compiler and the pnode accept nothing but a CPU list."""
    from ansible_collections.containerize.deploy.plugins.module_utils.process_plan import cpu_set, validate
    from containerize.planners.kinds import cpu_list_problem

    assert cpu_list_problem(cpus) is not None
    with pytest.raises(ValueError):
        cpu_set(cpus)
    node = {"name": "a", "namespace": "a.e.p", "cpus": cpus}
    assert cpus == "" or any("cpus" in error for error in validate("/tmp/run", [node]))


# ----------------------------------------------------------------------------------------------
# swapped in for real


def nothing_left(expdir: Path) -> list[str]:
    """What of the experiment is still on this machine (other experiments may run beside it)."""
    exp = ExperimentDir(expdir)
    ids = (exp.exp_name, exp.exp_tag, f".{exp.experiment}.{exp.project}")
    state = host_state()
    return sorted(x for key in ("namespaces", "processes", "files", "hosts", "links") for x in state[key]
                  if any(i in x for i in ids))


def wait_for_exit(expdir: Path, node: str, timeout: float = 90) -> Path:
    """The node's log directory on the pnode, once its start command has exited."""
    logdir = Path(ExperimentDir(expdir).node_dir(node)) / "log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = logdir / "start_command.log"
        if log.exists() and re.search(r"^exit ", log.read_text(), re.M):
            return logdir
        time.sleep(0.5)
    raise AssertionError(f"{node}: the start command did not finish in {timeout} s")


def assert_ran_once_as_written(expdir: Path, node: str, marks: Path) -> None:
    logdir = wait_for_exit(expdir, node)
    eid = ExperimentDir(expdir).experiment
    want = _mark(START_OUT, marks).replace("NODE", node).replace("EID", eid)
    assert (logdir / "start_command.out").read_text() == want
    assert (logdir / "start_command.err").read_text() == ""
    log = (logdir / "start_command.log").read_text()
    assert len(re.findall(r"^start ", log, re.M)) == 1 and "\nexit 0\n" in log, log
    assert (logdir / "runs").read_text() == "once\n"


@pytest.fixture(scope="module")
def images():
    for script, out in (("build-test-image.sh", QEMU_IMAGE_DIR), ("build-openvz-template.sh", OPENVZ_TEMPLATE_DIR)):
        proc = subprocess.run(["bash", str(REPO / "scripts" / script), str(out)], capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, proc.stderr


def swapped_in(work: Path, source_name: str, text: str, experiment: str, *extra: str):
    source = work / source_name
    source.write_text(text)
    expdir = work / "exp"
    compile_topology(source, expdir, PROJECT, experiment, *COMPILE_ARGS)
    try:
        playbook(expdir, "swapin", *extra)
        yield expdir
    finally:
        playbook(expdir, "swapout", *extra)
        assert nothing_left(expdir) == []


@pytest.fixture(scope="module")
def ns2_marks(tmp_path_factory):
    return tmp_path_factory.mktemp("ns2-marks")


@pytest.fixture(scope="module")
def ns2_exp(tmp_path_factory, images, ns2_marks):
    """a: process, c: openvz (systemd-nspawn), vm: qemu; each with every payload."""
    yield from swapped_in(tmp_path_factory.mktemp("inj-ns2"), "inj.tcl", ns2_topology(ns2_marks), "ns2",
                          "-e", json.dumps(QEMU_VARS))
    assert markers(ns2_marks) == []


@pytest.fixture(scope="module")
def topdl_marks(tmp_path_factory):
    return tmp_path_factory.mktemp("topdl-marks")


@pytest.fixture(scope="module")
def topdl_exp(tmp_path_factory, topdl_marks):
    yield from swapped_in(tmp_path_factory.mktemp("inj-topdl"), "inj.xml", topdl_topology(topdl_marks), "topdl")
    assert markers(topdl_marks) == []


@pytest.mark.slow
@pytest.mark.parametrize("node", ["a", "c", "vm"])
def test_ns2_start_command_runs_once_as_written(ns2_exp, ns2_marks, node):
    assert_ran_once_as_written(ns2_exp, node, ns2_marks)
    assert markers(ns2_marks) == []


@pytest.mark.slow
@pytest.mark.parametrize("node", ["a", "c", "vm"])
def test_exec_passes_argv_literally(ns2_exp, ns2_marks, node):
    args = [_mark(arg, ns2_marks) for arg in EXEC_ARGS]
    proc = node_exec(ns2_exp, node, "printf", "[%s]\\n", *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "".join(f"[{arg}]\n" for arg in args)
    # the first word too: `sh` gets its script as one argument, and $0/$1 are not re-read
    proc = node_exec(ns2_exp, node, "sh", "-c", 'printf "%s|%s" "$(hostname)" "$1"', "sh", args[1])
    assert proc.stdout == f"{node}|{args[1]}", proc.stderr
    assert markers(ns2_marks) == []


@pytest.mark.slow
def test_topdl_start_command_runs_once_even_after_a_repair_run(topdl_exp, topdl_marks):
    assert_ran_once_as_written(topdl_exp, "x", topdl_marks)
    playbook(topdl_exp, "swapin")  # a repair run templates the same inventory again
    assert_ran_once_as_written(topdl_exp, "x", topdl_marks)
    assert markers(topdl_marks) == []


@pytest.mark.slow
def test_embedded_pnode_start_command_runs_once_as_written(tmp_path, images):
    """The embedded_pnode module's start argv on a simulated machine (a root directory, as its molecule
    scenario builds): the command runs on the machine itself, so $(hostname) is this pnode's name."""
    root, marks = tmp_path / "machine", tmp_path / "marks"
    root.mkdir()
    marks.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(OPENVZ_TEMPLATE_DIR / "busybox.tar.gz"), "-C", str(root)],
                   check=True)
    (root / "dev").mkdir(exist_ok=True)
    os.mknod(root / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # as simulate.sh makes it
    (root / "var" / "containers").mkdir(parents=True, exist_ok=True)
    (root / "var" / "containers" / "eid").write_text("emb\n")
    scripts = tmp_path / "scripts"  # as the hv role puts its files in scripts_dir/hv
    (scripts / "hv").mkdir(parents=True)
    shutil.copy(COLLECTION / "roles" / "hv" / "files" / "start-command.sh", scripts / "hv")
    embedded = library_module("embedded_nodes")
    module = SimpleNamespace(params={"run_dir": str(tmp_path / "run"), "exp_name": "emb.inj", "netns": "",
                                     "machine_root": str(root), "scripts_dir": str(scripts)}, check_mode=False)
    node = embedded.Node(module, embedded.Machine("", str(root)), {"name": "e", "startcmd": _mark(START, marks)})
    node.plan_supervisor()  # the supervisor's copy in the machine
    node.apply()
    argv = node.start_argv()
    assert argv[-1] == _mark(START, marks) and argv[0] == "chroot"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    logdir = root / "var" / "containers" / "log"
    want = _mark(START_OUT, marks).replace("NODE", socket.gethostname()).replace("EID", "emb")
    assert (logdir / "start_command.out").read_text() == want
    assert (logdir / "runs").read_text() == "once\n"
    assert markers(marks) == []
    shutil.rmtree(root)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
