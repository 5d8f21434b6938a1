"""Deterministic YAML output.

Files are written in YAML's flow syntax as produced by the JSON encoder: every JSON document
is valid YAML, and Ansible and PyYAML read it unchanged. The top two levels are spread over
lines for reading and diffing; below that each item is one compact line, which keeps the C
encoder in play (a YAML emitter takes tens of seconds on a 10,000-node inventory).
"""

from __future__ import annotations

import json
from pathlib import Path

_compact = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": ")).encode


def _render(data, depth: int = 0) -> str:
    pad = " " * (depth + 1)
    if depth < 2 and isinstance(data, dict) and data:
        items = [f"{pad}{_compact(str(k))}: {_render(v, depth + 1)}" for k, v in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if depth < 2 and isinstance(data, list) and data:
        items = [f"{pad}{_render(v, depth + 1)}" for v in data]
        return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"
    return _compact(data)


def dump(data, path: Path, header: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    comment = f"# {header}\n" if header else ""
    path.write_text(comment + _render(data) + "\n", encoding="utf-8")
