"""Placing a Tcl error in the ns2 file: the line of the file where it happened, read from Tcl's
errorInfo (inside procs and loops too), with a small scanner of Tcl words."""

from __future__ import annotations

import re

_LEVEL_SPLIT = re.compile(r"\n    (?:while executing|invoked from within)\n")
_LEVEL = re.compile(r'"(.*)"((?:\n    \([^\n]*\))*)\Z', re.S)
_CONTEXT = re.compile(r"\((.*) line (\d+)\)\Z")
_PROCEDURE = re.compile(r'procedure "(.*)"\Z')
_FILE = re.compile(r'file "(.*)"\Z')


class _ErrorTrace:
    """Finds the file line of a Tcl error from errorInfo.

    errorInfo lists the failing commands innermost first, each with a context such as
    ``(file "F" line 12)`` (absolute), ``(procedure "p" line 3)`` (relative to the proc body, whose
    start the trace on ``proc`` recorded) or ``("foreach" body line 2)`` (relative to a script
    that is a word of the enclosing command). Walking from the file inwards gives the line; when
    a script is not a literal of the file (``eval $s``) the enclosing command's line is the answer.
    """

    def __init__(self, info: str, file: str, text: str, procs: dict[str, int]):
        self.file, self.text, self.procs = file, text, procs
        self.lines = text.split("\n")
        self.levels = []  # (command text, context or None, line or None), innermost first
        for chunk in _LEVEL_SPLIT.split(info)[1:]:
            m = _LEVEL.match(chunk)
            if not m:
                self.levels.append(("", None, None))
                continue
            context = _CONTEXT.search(m.group(2).rstrip())
            self.levels.append((m.group(1), context and context.group(1), context and int(context.group(2))))

    def _is_file(self, context: str | None) -> bool:
        m = _FILE.match(context or "")
        if not m:
            return False
        shown = m.group(1)  # Tcl shortens long paths with "..."
        return shown == self.file or (shown.endswith("...") and self.file.startswith(shown[:-3]))

    def line(self) -> int | None:
        outer = [i for i, (_, context, _) in enumerate(self.levels) if self._is_file(context)]
        if not outer:
            return None
        start = outer[-1]
        enclosing, line = self.levels[start][0], self.levels[start][2]
        for text, context, relative in reversed(self.levels[:start]):
            if context is None:
                break
            if self._is_file(context):
                line = relative
            elif m := _PROCEDURE.match(context):
                body = self._proc_body(m.group(1))
                if body is None:
                    break
                line = body + relative - 1
            else:
                found = self._in_word(line, enclosing, relative, text)
                if found is None:
                    break
                line = found
            enclosing = text
        return line

    def _proc_body(self, invoked: str) -> int | None:
        """Body line of a proc by the name it was called with (qualified or not)."""
        name = invoked.lstrip(":")
        if name in self.procs:
            return self.procs[name]
        tail = name.rsplit("::", 1)[-1]
        found = [line for full, line in self.procs.items() if full.rsplit("::", 1)[-1] == tail]
        return found[0] if len(found) == 1 else None

    def _in_word(self, line: int, enclosing: str, relative: int, inner: str) -> int | None:
        """Line of ``inner``, at line ``relative`` of a braced word of ``enclosing`` (at ``line``)."""
        if not 0 < line <= len(self.lines):
            return None
        probe = _probe(enclosing)
        col = self.lines[line - 1].find(probe) if probe else -1
        if col < 0:
            col = len(self.lines[line - 1]) - len(self.lines[line - 1].lstrip())
        offset = sum(len(x) + 1 for x in self.lines[: line - 1]) + col
        wanted = _probe(inner)
        for start, _end in reversed(_words(self.text, offset)[1:]):
            if self.text[start] != "{":
                continue
            candidate = line + self.text.count("\n", offset, start) + relative - 1
            if 0 < candidate <= len(self.lines) and wanted and wanted in self.lines[candidate - 1]:
                return candidate
        return None


def _probe(command: str) -> str:
    """The first line of a command as errorInfo shows it (which cuts long ones with '...')."""
    first = command.split("\n", 1)[0]
    if first == command and first.endswith("..."):
        first = first[:-3]
    return first.strip()


def _words(text: str, i: int) -> list[tuple[int, int]]:
    """(start, end) of each word of the Tcl command starting at ``text[i]`` (good enough for
    locating errors: follows braces, quotes, brackets and backslashes)."""
    words, n = [], len(text)
    while i < n:
        c = text[i]
        if c in " \t\r":
            i += 1
            continue
        if text.startswith("\\\n", i):
            i += 2
            continue
        if c in "\n;":
            break
        start = i
        if text.startswith("{*}", i) and i + 3 < n and text[i + 3] not in " \t\r\n;":
            i += 3
        if text[i] == "{":
            i = _skip_braces(text, i)
        elif text[i] == '"':
            i += 1
            while i < n and text[i] != '"':
                i = _skip_bracket(text, i) if text[i] == "[" else i + (2 if text[i] == "\\" else 1)
            i += 1
        else:
            while i < n and text[i] not in " \t\r\n;":
                i = _skip_bracket(text, i) if text[i] == "[" else i + (2 if text[i] == "\\" else 1)
        words.append((start, min(i, n)))
    return words


def _skip_group(text: str, i: int, opening: str, closing: str) -> int:
    """The index after the OPENING ... CLOSING group that starts at I (backslash escapes skipped; inside a
    bracket group, braced words are skipped whole, as Tcl does)."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{" and opening == "[":
            i = _skip_braces(text, i)
            continue
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _skip_braces(text: str, i: int) -> int:
    return _skip_group(text, i, "{", "}")


def _skip_bracket(text: str, i: int) -> int:
    return _skip_group(text, i, "[", "]")
