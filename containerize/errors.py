"""Typed user-facing errors. Only the CLI prints them (``file:line: message``)."""

from __future__ import annotations

MAX_MESSAGE = 400  # characters of one error line; longer ones keep their start and their end
MAX_SHOWN = 100  # characters of a user's value quoted in a message
MAX_ERRORS = 20  # errors of one pass shown; the rest are counted


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` for a message, shortened when the user gave something huge."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else None
    keep = max(limit // 2 - 4, 8)
    tail = f" ({size} characters)" if size is not None else ""
    return f"{text[:keep]}...{text[-keep:]}{tail}"


def one_line(text: str) -> str:
    """The message as one printable line: control characters escaped, very long ones cut in the middle."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > MAX_MESSAGE:
        text = f"{text[: MAX_MESSAGE - 160]} ... {text[-150:]}"
    return text


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
        return one_line(f"{where}: {self.message}" if where else self.message)


class ErrorList(ContainerizeError):
    """Several problems found in one pass; the CLI prints each on its own line."""

    def __init__(self, errors: list[ContainerizeError]):
        super().__init__("; ".join(str(e) for e in errors[:MAX_ERRORS]))
        self.errors = errors

    def lines(self) -> list[str]:
        """What the CLI prints: the first MAX_ERRORS errors, then how many more there are."""
        shown_lines = [str(e) for e in self.errors[:MAX_ERRORS]]
        more = len(self.errors) - MAX_ERRORS
        if more > 0:
            shown_lines.append(f"... and {more} more error{'s' * (more != 1)} of the same pass")
        return shown_lines


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
