"""Deterministic YAML output (libyaml when present: the 10,000-node inventory is large)."""

from __future__ import annotations

from pathlib import Path

import yaml

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data, path: Path, header: str = "") -> None:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000,
                     allow_unicode=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(("---\n" if not header else f"---\n# {header}\n") + text, encoding="utf-8")
