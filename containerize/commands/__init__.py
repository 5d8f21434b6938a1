"""The CLI's runtime commands (`containerize NAME ...` on a compiled experiment), one module each.

Each module has `run_NAME(argv) -> exit status`, parses with `base.CommandParser` (a usage error is
one line and exit status 2) and raises `ContainerizeError` for anything else that goes wrong;
containerize/cli.py dispatches to them and is the only layer that prints an error.
"""
