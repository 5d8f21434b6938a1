"""The error corpus: every bad input in tests/errors/ gives one exact line on stderr and exit status 2.

A case is tests/errors/NAME.{tcl,ns,xml} with NAME.expected (the whole stderr, one line) and an
optional NAME.args (extra command-line arguments, shlex syntax). Unless NAME.args holds
``{topology}`` (then it gives the positional arguments itself), ``proj exp TOPOLOGY`` is
appended. The compiler runs in-process from the repository root with a relative topology path
and ``--out`` in a temporary directory, which must stay empty.

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
from pathlib import Path

import pytest

from containerize.cli import main
from containerize.readers.ns2 import read_ns2

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "errors"
SUFFIXES = (".tcl", ".ns", ".xml")
# The reader stops a file after 10 s; the corpus shortens that so `while 1 {}` stays quick.
TIME_LIMIT = 2.0
DEADLINE = 10.0


def cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.suffix in SUFFIXES)


def case_id(source: Path) -> str:
    return source.name


def argv_for(source: Path, out: Path) -> list[str]:
    topology = str(source.relative_to(REPO))
    args_file = source.with_suffix(".args")
    text = args_file.read_text(encoding="utf-8") if args_file.exists() else ""
    args = [arg.replace("{topology}", topology) for arg in shlex.split(text)]
    if "{topology}" not in text:
        args += ["proj", "exp", topology]
    return ["--out", str(out), *args]


@contextlib.contextmanager
def _short_time_limit():
    defaults = read_ns2.__kwdefaults__
    saved = defaults["time_limit"]
    defaults["time_limit"] = TIME_LIMIT
    try:
        yield
    finally:
        defaults["time_limit"] = saved


def run_case(source: Path, out: Path) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr, seconds) of compiling one case from the repository root."""
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(REPO)
    started = time.monotonic()
    try:
        with _short_time_limit(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = main(argv_for(source, out))
            except SystemExit as exc:  # argparse usage errors
                status = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(cwd)
    return status, stdout.getvalue(), stderr.getvalue(), time.monotonic() - started


@pytest.mark.parametrize("source", cases(), ids=case_id)
def test_error_case(source: Path, tmp_path: Path, capfd):
    expected_file = source.with_suffix(".expected")
    assert expected_file.exists(), f"{expected_file.name} missing; run python3 -m tests.test_errors --regen"
    expected = expected_file.read_text(encoding="utf-8")
    out = tmp_path / "out"
    status, stdout, stderr, seconds = run_case(source, out)
    leaked_out, leaked_err = capfd.readouterr()  # anything written around sys.stdout/sys.stderr
    assert "Traceback" not in stderr + leaked_err
    assert stderr == expected
    assert len(stderr.splitlines()) == 1 and stderr.endswith("\n")
    assert status == 2, stderr
    assert stdout == "" and leaked_out == "" and leaked_err == ""
    assert list(tmp_path.iterdir()) == [], "the compiler left files behind"
    assert seconds < DEADLINE


def test_caught_exec_has_no_effect(tmp_path):
    canary = Path("/tmp/containerize-pwned")  # what tests/errors/tcl-exec-caught.tcl tries to create
    canary.unlink(missing_ok=True)
    status, _, _, _ = run_case(CASES / "tcl-exec-caught.tcl", tmp_path / "out")
    assert status == 2 and not canary.exists()


def test_corpus_is_complete():
    sources = cases()
    assert len(sources) >= 40
    stems = {p.stem for p in sources}
    assert len(stems) == len(sources), "two cases share a name"
    for path in CASES.iterdir():
        if path.suffix in (".expected", ".args"):
            assert path.stem in stems, f"{path.name} belongs to no case"


def regenerate(write: bool) -> int:
    changed = 0
    for source in cases():
        with tempfile.TemporaryDirectory() as tmp:
            status, _, stderr, seconds = run_case(source, Path(tmp) / "out")
        target = source.with_suffix(".expected")
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
