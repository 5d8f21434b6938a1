"""The command line of the benches that read their arguments by hand: -h/--help prints the bench's
docstring, a bad number is one line and exit status 2, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run(main: Callable[[], int], doc: str | None) -> int:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(doc)
        return 0
    try:
        return main()
    except ValueError as exc:
        print(f"{sys.argv[0]}: {exc}: see --help", file=sys.stderr)
        return 2
