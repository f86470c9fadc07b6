"""The domain error hierarchy: every error names where it happened and how to fix it.

Messages are bounded: at most `limits.ISSUES` problems, `limits.MESSAGE_CHARS` characters, and a
rejected value is quoted as a short preview, never whole (it may be megabytes of someone's input).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from . import limits

Problem = tuple[str, str, str]  # (field path, message, fix)

_LINE_CHARS = limits.MESSAGE_CHARS // 4


def clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def preview(value: object) -> str:
    """A rejected value as the model may read it back: quoted, short, with its size when cut."""
    if isinstance(value, str):
        if len(value) <= limits.PREVIEW_CHARS:
            return repr(value)
        return f"{value[:limits.PREVIEW_CHARS]!r}… ({len(value):,} characters)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        try:
            return clip(repr(value), limits.PREVIEW_CHARS)
        except ValueError:  # an int too long for str() (Python's 4,300-digit guard)
            return "a very large number"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value):,} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def one_of(choices: Iterable[str], shown: int = 10) -> str:
    """`a, b, c` (at most `shown` of them, then how many in all) for a fix listing the allowed values."""
    names = list(choices)
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head}… ({len(names):,} in all)"


def closest(value: object, choices: Iterable[str]) -> str | None:
    """The choice nearest to a misspelt `value`, if one is near enough."""
    if not isinstance(value, str) or len(value) > 4 * limits.IDENT_BYTES:
        return None
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def choose(value: object, choices: Iterable[str]) -> str:
    """The fix for a value outside `choices`: the nearest one first, then (some of) the choices."""
    names = list(choices)
    near = closest(value, names)
    return f"did you mean '{near}'? The choices: {one_of(names)}" if near else f"use one of {one_of(names)}"


def problem_lines(problems: list[Problem]) -> str:
    """Problems joined on one line, at most ISSUES of them and MESSAGE_CHARS in all, then `and N more`."""
    lines = [clip(f"{path}: {msg}" + (f" Fix: {fix}" if fix else ""), _LINE_CHARS) for path, msg, fix in problems]
    out: list[str] = []
    size = 0
    for line in lines[: limits.ISSUES]:
        # Keep room for the tail, so the bound holds however long the lines are.
        if size + len(line) + 2 > limits.MESSAGE_CHARS - 40:
            break
        out.append(line)
        size += len(line) + 2
    rest = len(lines) - len(out)
    return "; ".join(out + ([f"and {rest:,} more"] if rest else []))


class ValueProblem(ValueError):
    """Raised by a model validator: pydantic keeps it, and the message and fix are read back from it."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


class BlueprintError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None) -> None:
        self.message = message  # without the field and the fix, to rephrase the error higher up
        self.field = field
        self.fix = fix
        text = f"{field}: {message}" if field else message
        if fix:
            text = f"{text.rstrip('.')}. Fix: {fix}"
        super().__init__(clip(text, limits.MESSAGE_CHARS))


class InvalidBlueprint(BlueprintError):
    """The blueprint breaks a rule of the domain (bad name, unknown reference, impossible cycle).

    `source` (a file) is named once, before the problems, rather than in every path.
    """

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        self.field = problems[0][0] if problems else None
        self.fix = problems[0][2] if problems else None
        text = problem_lines(problems) or "invalid blueprint"
        Exception.__init__(self, clip(f"{source}: {text}", limits.MESSAGE_CHARS) if source else text)


class InvalidArguments(InvalidBlueprint):
    """A tool call or command whose arguments are unknown, of the wrong type or too large."""


class TemplateNotFound(BlueprintError):
    """A template name that is not in the library."""


class OutputExists(BlueprintError):
    """A file the user did not ask us to overwrite."""
