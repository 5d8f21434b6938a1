"""The compiler's output for every golden case is byte-identical to the reviewed expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden import EXPECTED, cases, compile_case, tree


@pytest.mark.parametrize("source", cases(), ids=lambda p: p.stem)
def test_golden(source: Path, tmp_path: Path):
    out = tmp_path / "exp"
    assert compile_case(source, out) == 0
    got, want = tree(out), tree(EXPECTED / source.stem)
    assert sorted(got) == sorted(want), "files differ; run python3 -m tests.golden and review"
    for name in want:
        assert got[name] == want[name], f"{name} differs; run python3 -m tests.golden and review"
