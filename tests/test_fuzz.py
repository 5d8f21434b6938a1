"""Fuzzing the readers and the whole compile path with hypothesis. Whatever the input, the outcome is a
successful compile or the project's clean error: ContainerizeError from a reader, or exit status 2
from ``containerize.cli.main`` with one-line messages that say something, and nothing written.
Never another exception, an internal error or a bare "Tcl error".

The inputs: random bytes and random words (readers alone); the valid examples (tests/topology/input,
examples/, /work/shared/examples) cut, with lines deleted, repeated or swapped and words replaced by
values near every limit; TopDL trees with elements changed, removed, duplicated, moved or renamed;
small topologies built from scratch out of the commands and attributes the compiler reads (so most
of them reach the planners and writers); one hostile value in one place of a valid file; random
option combinations.

Bounded and reproducible: derandomized, no example database, a fixed number of examples per test;
the whole file takes about half a minute. A failure prints the input hypothesis shrank it to.
CONTAINERIZE_FUZZ_SCALE=20 CONTAINERIZE_FUZZ_RANDOM=1 runs a longer hunt with fresh examples.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from containerize.cli import main
from containerize.errors import MAX_ERRORS, ContainerizeError
from containerize.readers.ns2 import read_ns2
from containerize.readers.topdl import read_topdl

REPO = Path(__file__).resolve().parent.parent
SHARED_EXAMPLES = Path("/work/shared/examples")  # the project's shared examples, where present
TIME_LIMIT = 0.5  # seconds of Tcl per file: a mutation may well make an endless loop


def _sources(suffixes: tuple[str, ...]) -> list[Path]:
    found: dict[bytes, Path] = {}
    for folder in (REPO / "tests" / "topology" / "input", REPO / "examples", SHARED_EXAMPLES):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix in suffixes:
                    found.setdefault(path.read_bytes(), path)
    return list(found.values())


NS2_SOURCES = _sources((".tcl", ".ns"))
TOPDL_SOURCES = _sources((".xml",))

# Values a mutation puts in place of a word: numbers at and past every limit, names the compiler
# must refuse, Tcl syntax, control and unicode characters, and words the files already use.
INTERESTING = [
    "0", "-1", "1", "2", "16", "17", "1e400", "-1e400", "1e-400", "99999999999999999999", "nan", "inf", "0.5",
    "100Mb", "1000Gb", "1001Gb", "0ms", "3600s", "3601s", "10ms", "1.5", "2G", "0G", "lots",
    "", " ", "$ns", "$a", "[", "]", "{", "}", '"', "\\", ";", "\n", "$(hostname)", "[$ns node]", "{*}",
    "\x00", "\x01", "\x7f", "\u202e", "\u200b", "\ufeff", "é", "\U0001F5A5", "\ud800",
    "255.255.255.255", "255.255.255.0", "0.0.0.0", "128.0.0.0", "999.1.1.1", "10.0.0.1", "127.0.0.1",
    "224.0.0.1", "10.0.0.0/8", "0.0.0.0/0",
    "pnode-0001", "a" * 70, "n-1", "_o1", "_o999", "::tb::where", "::tb::name", "exec", "open", "source",
    "while 1 {}", "proc unknown args {}", "rename set {}", "upvar 0 x x",
    "lan0", "link0", "node", "make-lan", "duplex-link", "add-route", "Manual", "Static", "rtproto",
    "qemu", "openvz", "process", "embedded_pnode", "docker", "containers:partition", "containers:PartitionPass",
    "containers:node_type", "containers:openvz_diskspace", "containers:network", "containers:kind", "ip4_address",
    "ip4_netmask", "computer", "substrates", "interface", "substrate", "elements", "experiment",
    "&amp;", "&foo;", "&#0;", "<!ENTITY x 'y'>", "<", ">", "]]>", "<!--",
]
WORD = re.compile(r"[^\s{}\[\]\"<>;]+")


def _replacement():
    return st.one_of(st.sampled_from(INTERESTING), st.text(max_size=12))


@st.composite
def mutated_text(draw, sources: list[Path]) -> tuple[str, bytes]:
    """(suffix, bytes): a valid example with one to four random edits."""
    source = draw(st.sampled_from(sources))
    text = source.read_text(encoding="utf-8")
    rnd = draw(st.randoms(use_true_random=True))
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        kind = draw(st.sampled_from(["truncate", "delete-lines", "duplicate-line", "swap-lines", "word", "word",
                                     "word", "insert"]))
        # positions come from a seeded Random: hypothesis favours small integers, which would mostly cut or
        # break the first lines and leave the rest of the file untested
        if kind == "truncate" and text:
            text = text[: rnd.randrange(len(text))]
        elif kind == "delete-lines" and lines:
            start = rnd.randrange(len(lines))
            del lines[start: start + draw(st.integers(1, 5))]
            text = "\n".join(lines)
        elif kind == "duplicate-line" and lines:
            at = rnd.randrange(len(lines))
            lines.insert(at, lines[rnd.randrange(len(lines))])
            text = "\n".join(lines)
        elif kind == "swap-lines" and len(lines) > 1:
            i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == "word":
            words = list(WORD.finditer(text))
            if words:
                m = draw(st.sampled_from(words))
                text = text[: m.start()] + draw(_replacement()) + text[m.end():]
        else:
            at = rnd.randrange(len(text) + 1)
            text = text[:at] + draw(_replacement()) + text[at:]
    return source.suffix, text.encode("utf-8", errors="surrogatepass")


TOPDL_TAGS = ["experiment", "substrates", "elements", "computer", "interface", "substrate", "name", "attribute",
              "value", "capacity", "rate", "latency", "time", "kind", "os", "version", "router"]


@st.composite
def mutated_tree(draw) -> bytes:
    """A valid TopDL example with elements changed, removed, duplicated, moved or renamed."""
    root = etree.fromstring(draw(st.sampled_from(TOPDL_SOURCES)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        elements = list(root.iter(etree.Element))
        el = draw(st.sampled_from(elements))
        kind = draw(st.sampled_from(["text", "text", "remove", "duplicate", "move", "rename"]))
        parent = el.getparent()
        if kind == "text":
            value = draw(_replacement())
            try:
                el.text = value
            except ValueError:  # lxml refuses text XML cannot hold; the raw-text fuzzers cover it
                el.text = repr(value)
        elif parent is None:
            continue
        elif kind == "remove":
            parent.remove(el)
        elif kind == "duplicate":
            parent.insert(parent.index(el), etree.fromstring(etree.tostring(el)))
        elif kind == "move":
            target = draw(st.sampled_from(elements))
            if target is not el and el not in target.iterancestors():
                target.append(el)
        else:
            el.tag = draw(st.sampled_from(TOPDL_TAGS))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# Small topologies built from scratch out of the commands and attributes the compiler reads, with
# values near every limit: most of them read, so they reach the planners (addresses, routes, kinds,
# partitions) rather than stopping at the first typo.
def _uniform(options: list):
    """Any of `options`, evenly (hypothesis' own choices lean towards the first and the last)."""
    return st.randoms(use_true_random=True).map(lambda rnd: rnd.choice(options))


def _mostly(valid: list[str], invalid: list[str]):
    """A value from `valid` 19 times in 20, so that most files read and the planners get to run. (A seeded
    Random: hypothesis' own choices lean towards the first and the last options.)"""
    return st.randoms(use_true_random=True).map(
        lambda rnd: rnd.choice(valid) if rnd.random() < 0.95 else rnd.choice(invalid))


ADDRESSES = _mostly(["10.0.0.1", "10.0.0.2", "10.0.1.1", "192.168.1.1", "10.255.255.254", "10.0.0.3"],
                    ["10.0.0.255", "10.0.0.0", "127.0.0.1", "0.0.0.1", "224.0.0.1", "999.1.1.1", ""])
NETMASKS = _mostly(["255.255.255.0", "255.255.255.252", "255.255.255.254", "255.255.0.0", "255.0.0.0"],
                   ["255.255.255.255", "128.0.0.0", "0.0.0.0", "255.0.255.0", "24"])
NETWORKS = _mostly(["10.0.0.0/24", "10.0.0.0/30", "192.168.0.0/16", "10.1.0.0/16"],
                   ["10.0.0.0/8", "0.0.0.0/0", "10.0.0.1/24", "bad"])
ATTRIBUTES = {
    "containers:node_type": _mostly(["qemu", "openvz", "process", "embedded_pnode"], ["docker", ""]),
    "containers:partition": _mostly(["0", "1", "2"], ["-1", "x", "99999999999999999999"]),
    "containers:PartitionPass": _mostly(["0", "1", "7"], ["-1", "two"]),
    "containers:openvz_diskspace": _mostly(["2G", "4", "500M"], ["0", "17T", "lots"]),
    "containers:openvz_template": _mostly(["debian-12", "busybox"], ["../x", "a b"]),
    "containers:ghost": st.sampled_from(["true", "false"]),
    "startup": _mostly(["echo hi", "sleep 1 &", "echo <$(hostname)>"], ["x" * 70000, "echo \x07", "\x1b[31m"]),
    "type": _mostly(["pc", "pc3000"], ["pc x", "", "pc\x0b"]),
    "osid": _mostly(["Ubuntu1804-STD", "FBSD"], ["../etc x", "", "FBSD\x01"]),
}
VALUES = {"bandwidth": _mostly(["100Mb", "1Gb", "10kb", "1000Gb"], ["0Mb", "1001Gb", "fast", "1e400"]),
          "delay": _mostly(["0ms", "10ms", "1s", "3600s"], ["3601s", "-1ms", "soon"]),
          "loss": _mostly(["0", "0.1", "1", "0.5"], ["1.5", "nan", "-0.1"]),
          "rate": _mostly(["100000", "1000", "1000000000"], ["0", "-5", "1e20", "inf", "x"]),
          "time": _mostly(["0", "10", "3600000"], ["3600001", "-1", "x"])}


@st.composite
def built_ns2(draw) -> bytes:
    nodes = [f"n{i}" for i in range(draw(_mostly([2, 3, 4, 5], [1])))]
    lines = ["set ns [new Simulator]", "source tb_compat.tcl"] + [f"set {n} [$ns node]" for n in nodes]
    links: list[str] = []
    lans: list[str] = []
    for _ in range(draw(_uniform(range(1, 13)))):
        kind = draw(_uniform(["link", "link", "lan", "ip", "iplink", "netmask", "loss", "lanparams", "simplex",
                              "route", "rtproto", "attr", "os", "hw", "startcmd"]))
        a = draw(_uniform(nodes))
        b = draw(_uniform([n for n in nodes if n != a] or nodes))
        bw, delay = draw(VALUES["bandwidth"]), draw(VALUES["delay"])
        if kind == "link":
            links.append(f"l{len(links)}")
            lines.append(f"set {links[-1]} [$ns duplex-link ${a} ${b} {bw} {delay} DropTail]")
        elif kind == "lan":
            members = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=5, unique=True))
            lans.append(f"lan{len(lans)}")
            lines.append(f'set {lans[-1]} [$ns make-lan "{" ".join("$" + m for m in members)}" {bw} {delay}]')
        elif kind == "ip":
            lines.append(f"tb-set-ip ${a} {draw(ADDRESSES)}")
        elif kind == "iplink" and links + lans:
            sub = draw(st.sampled_from(links + lans))
            command = "tb-set-ip-link" if sub in links else "tb-set-ip-lan"
            lines.append(f"{command} ${a} ${sub} {draw(ADDRESSES)}")
        elif kind == "netmask" and links + lans:
            lines.append(f"tb-set-netmask ${draw(st.sampled_from(links + lans))} {draw(NETMASKS)}")
        elif kind == "loss" and links:
            lines.append(f"tb-set-link-loss ${draw(st.sampled_from(links))} {draw(VALUES['loss'])}")
        elif kind == "lanparams" and lans:
            lines.append(f"tb-set-node-lan-params ${a} ${draw(st.sampled_from(lans))} {delay} {bw} "
                         f"{draw(VALUES['loss'])}")
        elif kind == "simplex" and links:
            lines.append(f"tb-set-link-simplex-params ${draw(st.sampled_from(links))} ${a} {delay} {bw} "
                         f"{draw(VALUES['loss'])}")
        elif kind == "route":
            dest = draw(st.sampled_from(nodes + links + lans))
            lines.append(f"${a} add-route ${dest} ${b}")
        elif kind == "rtproto":
            lines.append(f"$ns rtproto {draw(st.sampled_from(['Static', 'Manual', 'Session', 'ospf']))}")
        elif kind == "attr":
            key = draw(st.sampled_from(sorted(ATTRIBUTES)))
            if key in ("startup", "type", "osid"):
                continue
            lines.append(f"tb-add-node-attribute ${a} {key} {{{draw(ATTRIBUTES[key])}}}")
        elif kind in ("os", "hw", "startcmd"):
            key = {"os": "osid", "hw": "type", "startcmd": "startup"}[kind]
            command = {"os": "tb-set-node-os", "hw": "tb-set-hardware", "startcmd": "tb-set-node-startcmd"}[kind]
            lines.append(f"{command} ${a} {{{draw(ATTRIBUTES[key])}}}")
    lines.append("$ns run")
    return "\n".join(lines).encode()


@st.composite
def built_topdl(draw) -> bytes:
    def attr(key: str, value: str) -> str:
        return f"<attribute><attribute>{key}</attribute><value>{xml_escape(value)}</value></attribute>"

    subs = [f"s{i}" for i in range(draw(st.integers(1, 3)))]
    parts = ["<experiment>"]
    for sub in subs:
        body = f"<name>{sub}</name>"
        if draw(st.booleans()):
            body += f"<capacity><rate>{draw(VALUES['rate'])}</rate><kind>max</kind></capacity>"
        if draw(st.booleans()):
            body += f"<latency><time>{draw(VALUES['time'])}</time><kind>max</kind></latency>"
        for key, choices in (("containers:network", NETWORKS), ("containers:netmask", NETMASKS),
                             ("containers:kind", _mostly(["link", "lan"], ["wan"])), ("loss", VALUES["loss"])):
            if draw(st.integers(0, 3)) == 0:
                body += attr(key, draw(choices))
        parts.append(f"<substrates>{body}</substrates>")
    parts.append("<elements>")
    for i in range(draw(st.integers(1, 5))):
        body = f"<name>c{i}</name>"
        for key in draw(st.lists(st.sampled_from(sorted(ATTRIBUTES)), max_size=3, unique=True)):
            body += attr(key, draw(ATTRIBUTES[key]))
        for sub in draw(st.lists(_mostly(subs, ["c0", "missing"]), max_size=3, unique=True)):
            extra = ""
            if draw(st.booleans()):
                extra += attr("ip4_address", draw(ADDRESSES))
            if draw(st.integers(0, 2)) == 0:
                extra += attr("ip4_netmask", draw(NETMASKS))
            if draw(st.integers(0, 3)) == 0:
                key = draw(st.sampled_from(["containers:override_rate", "containers:override_latency",
                                            "containers:override_loss", "containers:simplex_rate",
                                            "containers:simplex_latency", "containers:simplex_loss"]))
                extra += attr(key, draw(VALUES["loss"] if key.endswith("loss") else
                                        VALUES["time"] if key.endswith("latency") else VALUES["rate"]))
            body += f"<interface><substrate>{sub}</substrate>{extra}</interface>"
        parts.append(f"<computer>{body}</computer>")
    parts.append("</elements></experiment>")
    return "".join(parts).encode()


# --- what a clean failure is -------------------------------------------------------------------

def _clear(message: str) -> None:
    """One error line that says something: no traceback, no internal error, no bare 'Tcl error'."""
    assert message.strip() and "Traceback" not in message and "internal error" not in message, message
    assert not message.rstrip().endswith(": Tcl error"), message


@contextlib.contextmanager
def _short_tcl():
    defaults = read_ns2.__kwdefaults__
    saved = defaults["time_limit"]
    defaults["time_limit"] = TIME_LIMIT
    try:
        yield
    finally:
        defaults["time_limit"] = saved


def _read(reader, suffix: str, data: bytes) -> None:
    """Run one reader on `data`: a Topology or a one-line ContainerizeError, nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"t{suffix}"
        path.write_bytes(data)
        try:
            with _short_tcl():
                reader(str(path))
        except ContainerizeError as exc:
            message = str(exc)
            assert "\n" not in message, message
            _clear(message)


def _compile(suffix: str, data: bytes, args: list[str] | None = None) -> tuple[int, str]:
    """Compile `data` in-process with --out in a fresh directory; check the outcome is clean."""
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        topology = tmp / f"topo{suffix}"
        topology.write_bytes(data)
        out = tmp / "out"
        stdout, stderr = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            with _short_tcl(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                try:
                    status = main(["--out", str(out), "--no-image", *(args or ["--default-container=process"]),
                                   "proj", "exp", str(topology)])
                except SystemExit as exc:  # argparse: usage errors
                    status = exc.code
        finally:
            os.chdir(cwd)
        err = stderr.getvalue()
        assert status in (0, 2), (status, err)
        if status == 2:
            lines = err.splitlines()
            assert lines, "exit status 2 without a message"
            for line in lines:
                _clear(line)
            assert len(lines) <= MAX_ERRORS + 1, err
            assert stdout.getvalue() == "", stdout.getvalue()
            left = sorted(p.name for p in tmp.iterdir())
            assert left == [topology.name], f"failed compile left {left}"
        else:
            assert (out / "inventory").is_dir(), "a successful compile wrote no inventory"
        return status, err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# CONTAINERIZE_FUZZ_SCALE multiplies the examples, CONTAINERIZE_FUZZ_RANDOM=1 draws new ones each run (CI
# keeps the defaults: the same examples every time).
SCALE = float(os.environ.get("CONTAINERIZE_FUZZ_SCALE", "1"))
FUZZ = settings(derandomize=not os.environ.get("CONTAINERIZE_FUZZ_RANDOM"), database=None, deadline=None,
                print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=max(1, int(examples * SCALE)))


# --- the readers alone -------------------------------------------------------------------------

@fuzz(100)
@given(st.binary(max_size=400))
def test_ns2_reader_random_bytes(data):
    _read(read_ns2, ".tcl", data)


@fuzz(150)
@given(st.lists(st.one_of(st.sampled_from(INTERESTING), st.text(max_size=8)), max_size=30).map(" ".join))
def test_ns2_reader_random_words(text):
    """Random words after the usual preamble, so the commands do run."""
    head = "set ns [new Simulator]\nsource tb_compat.tcl\nset a [$ns node]\nset b [$ns node]\n"
    _read(read_ns2, ".tcl", (head + text).encode("utf-8", errors="surrogatepass"))


@fuzz(100)
@given(st.binary(max_size=400))
def test_topdl_reader_random_bytes(data):
    _read(read_topdl, ".xml", b"<?xml version='1.0'?>\n<experiment>" + data)


@fuzz(150)
@given(mutated_tree())
def test_topdl_reader_mutated_tree(data):
    _read(read_topdl, ".xml", data)


# --- the whole compile path --------------------------------------------------------------------

@fuzz(200)
@given(mutated_text(NS2_SOURCES))
def test_compile_mutated_ns2(case):
    _compile(*case)


@fuzz(120)
@given(mutated_text(TOPDL_SOURCES))
def test_compile_mutated_topdl_text(case):
    _compile(*case)


@fuzz(120)
@given(mutated_tree())
def test_compile_mutated_topdl_tree(data):
    _compile(".xml", data)


@fuzz(180)
@given(built_ns2())
def test_compile_built_ns2(data):
    _compile(".tcl", data)


@fuzz(200)
@given(built_topdl())
def test_compile_built_topdl(data):
    _compile(".xml", data)


# One hostile value in one place of a valid file: everything else is right, so the value travels as far
# as the compiler lets it (the writers included) and must be refused on the way, or written safely.
HOSTILE = [
    "", " ", "a b", "-1", "0", "nan", "1e400", "9" * 5000, "x" * 100_000, "../../etc/passwd", "a/b", "..",
    "a\x07b", "\x1b[31mred", "\x01", "tab\there", "line\nbreak", "\u202eevil", "\u200b", "\ufeffbom", "caf\u00e9",
    "\U0001F5A5", "\uFFFE", "pc;exec", "$(hostname)", "[exec ls]", "\\", "'", "\"", "<tag>", "&amp;", "]]>",
    "255.255.255.255", "0.0.0.0", "999.1.1.1", "10.0.0.1", "pnode-0001", "qemu", "embedded_pnode", "2G", "0G",
]
NS2_SLOTS = [
    "tb-set-node-startcmd $n(1) {%s}", "tb-set-node-os $n(1) {%s}", "tb-set-hardware $n(1) {%s}",
    "tb-add-node-attribute $n(1) {%s} x", "tb-add-node-attribute $n(1) note {%s}",
    *(f"tb-add-node-attribute $n(1) containers:{key} {{%s}}" for key in (
        "partition", "PartitionPass", "node_type", "openvz_diskspace", "openvz_template", "ghost")),
    "$ns duplex-link $n(1) $n(2) {%s} 0ms", "$ns duplex-link $n(1) $n(2) 1Mb {%s}", "tb-set-link-loss $link(1) {%s}",
    "tb-set-ip $n(1) {%s}", "tb-set-netmask $link(1) {%s}", "set {%s} [$ns node]", "$ns rtproto {%s}",
    "tb-make-soft-vtype {%s} {pc pc3000}", "$n(1) add-route {%s} $n(0)",
]
TOPDL_SLOTS = ["<name>lan0</name>", "<name>client</name>", "<value>process</value>", "<value>0</value>",
               "<value>ping -c 3 server</value>", "<value>10.0.7.1</value>", "<value>255.255.255.0</value>",
               "<substrate>lan0</substrate>", "<name>inf000</name>"]


@fuzz(150)
@given(_uniform(NS2_SLOTS), _uniform(HOSTILE))
def test_compile_one_hostile_value_ns2(slot, value):
    star = (REPO / "tests" / "topology" / "input" / "star10.tcl").read_text(encoding="utf-8")
    text = star.replace("$ns rtproto Static", slot % value + "\n$ns rtproto Static")
    _compile(".tcl", text.encode("utf-8", errors="surrogatepass"))


@fuzz(150)
@given(_uniform(TOPDL_SLOTS), _uniform(HOSTILE), st.integers(0, 3))
def test_compile_one_hostile_value_topdl(slot, value, which):
    xml = (REPO / "tests" / "topology" / "input" / "two-pnodes.xml").read_text(encoding="utf-8")
    tag = slot[1: slot.index(">")]
    places = [i for i in range(len(xml)) if xml.startswith(slot, i)]
    at = places[which % len(places)]
    replaced = f"<{tag}>{xml_escape(value)}</{tag}>"
    _compile(".xml", (xml[:at] + replaced + xml[at + len(slot):]).encode("utf-8", errors="surrogatepass"))


OPTION_VALUES = st.one_of(st.sampled_from(INTERESTING), st.sampled_from(
    ["0:3", "0:3,0:5", "1:2,1:2", "-1:3", "0:pc;1:bigpc", "0:pc;0:bpc", "0:", "x:pc", "pc,pc2", "pc;exec", "0,1",
     "²", "３", "/share/x", "rel/dir", "alice,bob", "../x", "debian-12", "../../etc", "/dev/null", "/nonexistent",
     "tests/errors"]), st.text(max_size=10))
OPTIONS = ["--default-container", "--packing", "--size", "--pass-pack", "--pass-size", "--pnode-types",
           "--pass-pnodes", "--pass-nodes-only", "--openvz-diskspace", "--openvz-template", "--openvz-template-dir",
           "--qemu-prefer-users", "--config"]
FLAGS = ["--force-partition", "--nodes-only", "--end-node-shaping", "--vde-switch-shaping", "--image", "--no-image",
         "--keep-tmp"]


@fuzz(100)
@given(st.lists(st.one_of(st.tuples(st.sampled_from(OPTIONS), OPTION_VALUES).map(lambda p: f"{p[0]}={p[1]}"),
                          st.sampled_from(FLAGS)), max_size=5),
       st.sampled_from(["proj", "proj/grp", "../x", "a/b/c", "", "p" * 70, "Pröj"]),
       st.sampled_from(["exp", "", "../../etc", "e x"]))
def test_compile_random_options(options, project, experiment):
    """Option combinations on a small valid topology: compiled, or refused with a clean error."""
    star = (REPO / "tests" / "topology" / "input" / "star10.tcl").read_bytes()
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        topology = tmp / "star10.tcl"
        topology.write_bytes(star)
        stderr = io.StringIO()
        with _short_tcl(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
            try:
                status = main(["--out", str(tmp / "out"), "--no-image", *options, project, experiment, str(topology)])
            except SystemExit as exc:
                status = exc.code
        err = stderr.getvalue()
        assert status in (0, 2), (status, err)
        if status == 2:
            assert len(err.splitlines()) == 1, err
            _clear(err)
            assert sorted(p.name for p in tmp.iterdir()) == ["star10.tcl"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_sources_found():
    assert NS2_SOURCES and TOPDL_SOURCES


@pytest.mark.parametrize("source", NS2_SOURCES + TOPDL_SOURCES, ids=lambda p: p.name)
def test_examples_compile(source):
    """The unmutated examples compile, so the fuzzers start from valid input."""
    status, err = _compile(source.suffix, source.read_bytes())
    assert status == 0, err
