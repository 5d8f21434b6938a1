"""What every runtime command shares: the argument parser, and JSON output with a JMESPath query."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ContainerizeError

EXIT_USAGE = 2


class CommandParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, `PROG: error: WHAT (see --help)`, and exit status 2."""

    def __init__(self, name: str, **kwargs):
        kwargs.setdefault("prog", f"containerize {name}" if name else "containerize")
        super().__init__(**kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)

    def add_expdir(self, **kwargs) -> None:
        """The EXPDIR argument every runtime command starts with."""
        self.add_argument("expdir", metavar="EXPDIR", help="the experiment directory written by the compiler", **kwargs)

    def add_json(self, group=None) -> None:
        """--json (in GROUP when given), and --query."""
        (group or self).add_argument("--json", action="store_true", help="print JSON")
        self.add_query()

    def add_query(self) -> None:
        """--query EXPR: a JMESPath expression applied to the command's JSON (it implies --json)."""
        self.add_argument("--query", metavar="EXPR",
                          help="print only what the JMESPath expression EXPR selects from the JSON output, "
                               "e.g. \"nodes[?status!='booted'].name\" (implies --json)")


def json_wanted(args) -> tuple[bool, object]:
    """(print JSON?, the compiled --query or None) of parsed ARGS: a query implies JSON."""
    query = compile_query(args.query)
    return bool(getattr(args, "json", False) or query is not None), query


def compile_query(expression: str | None):
    """The compiled JMESPath EXPRESSION (None for none); a bad one is a one-line error."""
    if expression is None:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContainerizeError(f"--query {expression!r}: not a JMESPath expression ({first})") from None


def json_text(data, query=None, sort_keys: bool = False) -> str:
    """DATA as indented JSON, or what the compiled QUERY selects from it."""
    if query is not None:
        from jmespath.exceptions import JMESPathError

        try:
            data = query.search(data)
        except JMESPathError as exc:
            raise ContainerizeError(f"--query: {str(exc).strip().splitlines()[0]}") from None
    return json.dumps(data, indent=1, sort_keys=sort_keys)
