"""What every runtime command shares: the argument parser."""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


class CommandParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, `PROG: error: WHAT (see --help)`, and exit status 2."""

    def __init__(self, name: str, **kwargs):
        kwargs.setdefault("prog", f"containerize {name}" if name else "containerize")
        super().__init__(**kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)
