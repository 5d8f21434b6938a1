"""Golden cases: tests/topology/input/NAME.{tcl,ns,xml} (+ NAME.args) -> tests/topology/expected/NAME/.

Regenerate with `python3 -m tests.golden` (or scripts/regen-golden) and review the diff.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from containerize.cli import main

ROOT = Path(__file__).resolve().parent / "topology"
INPUT, EXPECTED = ROOT / "input", ROOT / "expected"
SKIP = {"visualization.png"}  # drawn by Graphviz, whose version is not ours: determinism is checked elsewhere


def cases() -> list[Path]:
    return sorted(p for p in INPUT.iterdir() if p.suffix in (".tcl", ".ns", ".xml"))


def compile_case(source: Path, out: Path) -> int:
    args_file = source.with_suffix(".args")
    args = shlex.split(args_file.read_text()) if args_file.exists() else ["--default-container=process"]
    return main([*args, "--no-image", "--force", "--out", str(out), "golden", source.stem, str(source)])


def tree(path: Path) -> dict[str, bytes]:
    files = {}
    for item in sorted(path.rglob("*")):
        if item.is_file() and item.name not in SKIP:
            rel = str(item.relative_to(path))
            files[rel] = item.read_bytes()
    return files


def regenerate() -> None:
    for source in cases():
        target = EXPECTED / source.stem
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "exp"
            if compile_case(source, out) != 0:
                sys.exit(f"{source}: compile failed")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(out, target, ignore=shutil.ignore_patterns(*SKIP))
        print(f"regenerated {target.relative_to(ROOT.parent.parent)}")


if __name__ == "__main__":
    regenerate()
