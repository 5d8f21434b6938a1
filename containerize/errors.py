"""Typed user-facing errors. Only the CLI prints them (``file:line: message``)."""

from __future__ import annotations


class ContainerizeError(Exception):
    """A problem with the user's input or options: shown as one line, exit status 2."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line

    def __str__(self) -> str:
        where = self.source or ""
        if where and self.line:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}" if where else self.message


class ErrorList(ContainerizeError):
    """Several problems found in one pass; the CLI prints each on its own line."""

    def __init__(self, errors: list[ContainerizeError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


class Collector:
    """Gathers errors during a planner pass and raises them together."""

    def __init__(self) -> None:
        self.errors: list[ContainerizeError] = []

    def add(self, message: str, source: str | None = None, line: int | None = None) -> None:
        self.errors.append(ContainerizeError(message, source, line))

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ErrorList(self.errors)
