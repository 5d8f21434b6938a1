"""The error corpus: every bad input in tests/errors/ gives one exact line on stderr and exit status 2.

A case is tests/errors/NAME.{tcl,ns,xml} with NAME.expected (the whole stderr, one line) and an
optional NAME.args (extra command-line arguments, shlex syntax). Unless NAME.args holds
``{topology}`` (then it gives the positional arguments itself), ``proj exp TOPOLOGY`` is
appended. The compiler runs in-process from the repository root with a relative topology path
and ``--out`` in a temporary directory, which must stay empty. Every case must end within
DEADLINE seconds, print no traceback and write nothing.

Inputs too big to keep in the repository (100,000-node TopDL files) are GENERATED at run time into
a temporary copy of tests/errors/, so their messages read like the others'; their NAME.expected
lives in tests/errors/ all the same. (ns2 needs no generator: a loop in a small file makes 100,000
nodes.)

The case names start with the kind of mistake they show (CATEGORIES), so that every kind the
hardening issue lists keeps several ns2 and TopDL cases.

Regenerate the expected messages with ``python3 -m tests.test_errors --regen`` and review the
diff; ``python3 -m tests.test_errors`` alone shows every case's message.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from containerize.cli import main
from containerize.readers.ns2 import read_ns2

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "errors"
SUFFIXES = (".tcl", ".ns", ".xml")
# The reader stops a file after 30 s (wall clock); endless-loop cases shorten that so `while 1 {}` stays
# quick. The others keep the real limit; each case must take under DEADLINE seconds of CPU (a 100,000-node
# file is read in about 4 s on this machine; CPU time, not wall time, so a loaded CI machine does not fail it).
TIME_LIMIT = 2.0
SHORT_LIMIT_PREFIX = "tcl-endless"
DEADLINE = 10.0

# Kinds of bad input the corpus must cover (case-name prefixes), each with at least MIN_PER_CATEGORY
# cases, in ns2 and in TopDL unless the kind exists in one format only.
MIN_PER_CATEGORY = 3
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # category: (name prefixes, suffixes that must be present)
    "truncated": (("truncated-", "tcl-unclosed-", "xml-unclosed", "empty-file"), (".tcl", ".xml")),
    "wrong types": (("type-",), (".tcl", ".xml")),
    "unknown commands": (("tcl-unknown-", "ns-unknown-", "unknown-", "kind-unknown", "rtproto-unknown"),
                         (".tcl", ".xml")),
    "cycles of names": (("cycle-", "name-duplicate", "name-host-collision", "name-node-and-lan"), (".tcl", ".xml")),
    "huge numbers": (("huge-",), (".tcl", ".xml")),
    "unicode and control characters": (("unicode-", "name-unicode", "name-control-char"), (".tcl", ".xml")),
    "XML entities": (("xml-",), (".xml",)),
    "100k-node inputs": (("nodes-100k-",), (".tcl", ".xml")),
    "bad option combinations": (("option-", "config-", "packing-", "pass-", "size-", "out-", "kind-unknown-default",
                                 "project-", "group-", "experiment-"), (".tcl",)),
}


# --- generated inputs --------------------------------------------------------------------------

def _lan_topdl(count: int, *, network: str | None = None, duplicate_last: bool = False,
               last_substrate: str = "lan0") -> bytes:
    """One LAN of `count` computers n0..n{count-1}, each on lan0 (the last one maybe elsewhere)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<experiment>\n<substrates><name>lan0</name>']
    if network:
        parts.append(f"<attribute><attribute>containers:network</attribute><value>{network}</value></attribute>")
    parts.append("</substrates>\n<elements>\n")
    for i in range(count):
        last = i == count - 1
        name = "n0" if last and duplicate_last else f"n{i}"
        substrate = last_substrate if last else "lan0"
        parts.append(f"<computer><name>{name}</name><interface><substrate>{substrate}</substrate></interface>"
                     "</computer>\n")
    parts.append("</elements>\n</experiment>\n")
    return "".join(parts).encode()


GENERATED: dict[str, Callable[[], bytes]] = {
    # a /16 holds 65,534 hosts
    "nodes-100k-subnet-too-small-topdl.xml": lambda: _lan_topdl(100_000, network="10.0.0.0/16"),
    "nodes-100k-missing-substrate-topdl.xml": lambda: _lan_topdl(100_000, last_substrate="lan1"),
    "nodes-100k-duplicate-name-topdl.xml": lambda: _lan_topdl(100_000, duplicate_last=True),
}


# --- running a case ----------------------------------------------------------------------------

def cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.suffix in SUFFIXES)


def case_id(source: Path) -> str:
    return source.name


def argv_for(source: Path, out: Path, cwd: Path = REPO) -> list[str]:
    topology = str(source.relative_to(cwd))
    args_file = CASES / (source.stem + ".args")
    text = args_file.read_text(encoding="utf-8") if args_file.exists() else ""
    args = [arg.replace("{topology}", topology) for arg in shlex.split(text)]
    if "{topology}" not in text:
        args += ["proj", "exp", topology]
    return ["--out", str(out), *args]


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    defaults = read_ns2.__kwdefaults__
    saved = defaults["time_limit"]
    if seconds is not None:
        defaults["time_limit"] = seconds
    try:
        yield
    finally:
        defaults["time_limit"] = saved


def run_case(source: Path, out: Path, cwd: Path = REPO) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr, seconds) of compiling one case from ``cwd`` (the repository root)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    saved = os.getcwd()
    os.chdir(cwd)
    limit = TIME_LIMIT if source.name.startswith(SHORT_LIMIT_PREFIX) else None
    started = time.process_time()  # the compiler's own CPU time: a shared, loaded machine does not count
    try:
        with _time_limit(limit), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = main(argv_for(source, out, cwd))
            except SystemExit as exc:  # argparse usage errors
                status = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(saved)
    return status, stdout.getvalue(), stderr.getvalue(), time.process_time() - started


def generate(name: str, root: Path) -> Path:
    """Write GENERATED[name] as ROOT/tests/errors/NAME; ROOT is the directory to compile from."""
    source = root / "tests" / "errors" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(GENERATED[name]())
    return source


def _check(source: Path, expected_file: Path, status, stdout, stderr, seconds, capfd, leftovers) -> None:
    assert expected_file.exists(), f"{expected_file.name} missing; run python3 -m tests.test_errors --regen"
    expected = expected_file.read_text(encoding="utf-8")
    leaked_out, leaked_err = capfd.readouterr()  # anything written around sys.stdout/sys.stderr
    assert "Traceback" not in stderr + leaked_err
    assert stderr == expected
    assert len(stderr.splitlines()) == 1 and stderr.endswith("\n")
    assert status == 2, stderr
    assert stdout == "" and leaked_out == "" and leaked_err == ""
    assert leftovers == [], "the compiler left files behind"
    assert seconds < DEADLINE, f"{source.name} took {seconds:.1f} s"


@pytest.mark.parametrize("source", cases(), ids=case_id)
def test_error_case(source: Path, tmp_path: Path, capfd):
    out = tmp_path / "out"
    status, stdout, stderr, seconds = run_case(source, out)
    _check(source, source.with_suffix(".expected"), status, stdout, stderr, seconds, capfd, list(tmp_path.iterdir()))


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_case(name: str, tmp_path: Path, capfd):
    root = tmp_path / "root"
    source = generate(name, root)
    status, stdout, stderr, seconds = run_case(source, tmp_path / "out", cwd=root)
    leftovers = [p for p in tmp_path.iterdir() if p != root]
    _check(source, CASES / Path(name).with_suffix(".expected").name, status, stdout, stderr, seconds, capfd,
           leftovers)


def test_caught_exec_has_no_effect(tmp_path):
    canary = Path("/tmp/containerize-pwned")  # what tests/errors/tcl-exec-caught.tcl tries to create
    canary.unlink(missing_ok=True)
    status, _, _, _ = run_case(CASES / "tcl-exec-caught.tcl", tmp_path / "out")
    assert status == 2 and not canary.exists()


def test_force_never_deletes_the_input(tmp_path):
    """--force with an --out that holds the topology (or is where the user stands) is refused, and the
    directory is left alone."""
    topology = tmp_path / "exp" / "topo.tcl"
    topology.parent.mkdir()
    topology.write_text("set ns [new Simulator]\nsource tb_compat.tcl\nset a [$ns node]\n$ns run\n")
    for out, cwd in ((topology.parent, REPO), (tmp_path, REPO), (Path("."), topology.parent)):
        stderr = io.StringIO()
        saved = os.getcwd()
        os.chdir(cwd)
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                status = main(["--force", "--no-image", "--out", str(out), "proj", "exp", str(topology)])
        finally:
            os.chdir(saved)
        assert status == 2 and "--force would" in stderr.getvalue(), stderr.getvalue()
        assert topology.exists() and sorted(p.name for p in topology.parent.iterdir()) == ["topo.tcl"]


def test_corpus_is_complete():
    sources = cases()
    assert len(sources) + len(GENERATED) >= 150
    stems = {p.stem for p in sources} | {Path(name).stem for name in GENERATED}
    assert len(stems) == len(sources) + len(GENERATED), "two cases share a name"
    for path in CASES.iterdir():
        if path.suffix in (".expected", ".args", ".conf"):
            assert path.stem in stems, f"{path.name} belongs to no case"
    names = [p.name for p in sources] + list(GENERATED)
    for category, (prefixes, suffixes) in CATEGORIES.items():
        members = [n for n in names if n.startswith(prefixes)]
        assert len(members) >= MIN_PER_CATEGORY, f"{category}: only {members}"
        for suffix in suffixes:
            assert any(n.endswith(suffix) for n in members), f"{category}: no {suffix} case"


def regenerate(write: bool) -> int:
    changed = 0
    runs = [(source, source.with_suffix(".expected"), None) for source in cases()]
    runs += [(CASES / name, CASES / Path(name).with_suffix(".expected").name, name) for name in sorted(GENERATED)]
    for source, target, generated in runs:
        with tempfile.TemporaryDirectory() as tmp:
            if generated:
                root = Path(tmp) / "root"
                status, _, stderr, seconds = run_case(generate(generated, root), Path(tmp) / "out", cwd=root)
            else:
                status, _, stderr, seconds = run_case(source, Path(tmp) / "out")
        old = target.read_text(encoding="utf-8") if target.exists() else None
        mark = " " if old == stderr else "*"
        changed += old != stderr
        print(f"{mark} {source.name} [{status}, {seconds:.1f} s] {stderr.rstrip()}")
        if write and old != stderr:
            target.write_text(stderr, encoding="utf-8")
    print(f"{changed} case(s) {'rewritten' if write else 'differ'}; review with git diff tests/errors")
    return 0


if __name__ == "__main__":
    sys.exit(regenerate("--regen" in sys.argv[1:]))
