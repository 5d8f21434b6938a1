"""Deterministic YAML output.

Files are written in YAML's flow syntax as produced by the JSON encoder: every JSON document
is valid YAML, and Ansible and PyYAML read it unchanged. The top two levels are spread over
lines for reading and diffing; below that each item is one compact line, which keeps the C
encoder in play (a YAML emitter takes tens of seconds on a 10,000-node inventory).

No string is ever a template. Ansible renders any string it loads from host_vars/group_vars that
looks like Jinja (``{{``, ``{%``, ``{#`` or a leading ``#jinja2:``), so a start command or
attribute value such as ``{{ lookup('pipe', 'touch /x') }}`` would run on the controller. Such
strings are written with YAML's ``!unsafe`` tag (``"startcmd": !unsafe "..."``), which Ansible
keeps as literal text; every other string stays plain JSON, so ordinary files are unchanged.
Read these files with ``LOADER`` (a safe loader that knows ``!unsafe``), not ``yaml.safe_load``.

Ansible variable files are written with ``vars_file=True``: no comment header, so that a file
without ``!unsafe`` strings is pure JSON. Ansible tries JSON first, and a JSON vars file loads
several times faster than YAML and its values cost less every time a task templates or copies
them (ansible-core tags each YAML scalar with its own origin): 0.3 s per swap-in task that
takes 100 nodes. A file that needs ``!unsafe`` is YAML and gets the header.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ansible_collections.containerize.deploy.plugins.plugin_utils.unsafe_yaml import UNSAFE_TAG, Loader

_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": "))
_c_encoder = json.encoder.c_make_encoder
if _c_encoder is not None:  # the encoder's C core made once (encode() makes one per call); same text
    _c_encode = _c_encoder(None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                           False, False, True)
    _encode_str = json.encoder.encode_basestring_ascii

    def _compact(data) -> str:
        kind = type(data)
        if kind is str:
            return _encode_str(data)
        if kind is int:
            return int.__repr__(data)  # what the encoder writes for an int
        if data is None:
            return "null"
        return "".join(_c_encode(data, 0))
else:  # pragma: no cover - CPython always has _json
    _compact = _ENCODER.encode
    _encode_str = _compact
# What makes Ansible treat a string as a template (ansible-core's is_possibly_template). The JSON
# encoder never escapes these characters, and '{' followed by '{', '%' or '#' never occurs
# outside a string in its output, so the checks can run on the encoded text.
_JINJA_MARKS = ("{{", "{%", "{#")
_JINJA_HEADER = '"#jinja2:'
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _render(data, depth: int = 0, keys: dict[str, str] | None = None) -> str:
    if depth < 2 and isinstance(data, dict) and data:
        pad = " " * (depth + 1)
        keys = {} if keys is None else keys  # encoded keys: the same few names in every entry
        if depth:  # the values are one compact line each
            items = [f"{pad}{keys[k] if k in keys else _key(k, keys)}: "
                     f"{_encode_str(v) if type(v) is str else _compact(v)}" for k, v in data.items()]
        else:
            items = [f"{pad}{keys[k] if k in keys else _key(k, keys)}: {_render(v, 1, keys)}"
                     for k, v in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if depth < 2 and isinstance(data, list) and data:
        pad = " " * (depth + 1)
        if depth:
            items = [f"{pad}{_encode_str(v) if type(v) is str else _compact(v)}" for v in data]
        else:
            keys = {} if keys is None else keys
            items = [f"{pad}{_render(v, 1, keys)}" for v in data]
        return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"
    return _compact(data)


def _key(key, keys: dict[str, str]) -> str:
    text = _compact(str(key))
    if type(key) is str:  # only strings: True == 1, but str(True) != str(1)
        keys[key] = text
    return text


def _templatable(token: str) -> bool:
    """True when the JSON string TOKEN ("...") holds text Ansible would template."""
    return token.startswith(_JINJA_HEADER) or any(mark in token for mark in _JINJA_MARKS)


def _has_marks(text: str) -> bool:
    return _JINJA_HEADER in text or any(mark in text for mark in _JINJA_MARKS)


def _mark_unsafe(text: str) -> str:
    """TEXT (JSON) with every string Ansible would template tagged !unsafe (keys too)."""
    if not _has_marks(text):
        return text  # the usual case: a few scans of the text
    # a string never spans lines (the encoder escapes newlines): tokenize only the lines that need it
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _has_marks(line):
            lines[index] = _STRING.sub(lambda m: f"{UNSAFE_TAG} {m[0]}" if _templatable(m[0]) else m[0], line)
    return "\n".join(lines)


def render(data) -> str:
    return _mark_unsafe(_render(data))


def dump(data, path: Path, header: str = "", vars_file: bool = False) -> None:
    """Write DATA to PATH; HEADER is a comment line, left out of a VARS_FILE that is pure JSON."""
    text = render(data)
    comment = f"# {header}\n" if header and not (vars_file and UNSAFE_TAG not in text) else ""
    try:
        write_text(path, comment + text + "\n")
    except FileNotFoundError:  # the first file in its directory
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, comment + text + "\n")


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def write_text(path, text: str, dir_fd: int | None = None) -> None:
    """Path(PATH).write_text(TEXT, encoding="utf-8") in three system calls (open, write, close): tens of
    thousands of small files per experiment. PATH is relative to the directory DIR_FD when given."""
    data = text.encode("utf-8")
    fd = os.open(path, _CREATE, 0o666, dir_fd=dir_fd)
    try:
        written = os.write(fd, data)
        if written < len(data):  # a short write (large files, signals): the rest
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(fd, view):]
    finally:
        os.close(fd)


LOADER = Loader
