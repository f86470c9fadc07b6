"""Shared pydantic settings and the identifier type."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema

from .errors import ValueProblem, preview
from .limits import IDENT_BYTES
from .names import IDENT_RE, SLUG_RE, ascii_fold, ident_problem, suggest_ident


def _check_ident(value: str) -> str:
    problem = ident_problem(value)
    if problem:
        raise ValueProblem(problem, f"try '{suggest_ident(str(value))}'")
    return value


def suggest_slug(value: str) -> str:
    """A valid slug close to `value` (also the slug of a new app named `value`)."""
    folded = ascii_fold(value[:4 * IDENT_BYTES]).lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:IDENT_BYTES].strip("-") or "app"


def _check_slug(value: str) -> str:
    if not SLUG_RE.match(value):
        raise ValueProblem(f"{preview(value)} is not a slug (lower case letters, digits and -, at most 63 characters)",
                           f"try '{suggest_slug(value)}'")
    return value


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store `value` as text (a NUL byte, a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL byte, which PostgreSQL text cannot hold"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def _check_text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(f"{value[:40]!r} {problem}; remove that character")
    return value


Ident = Annotated[str, AfterValidator(_check_ident), WithJsonSchema(
    {"type": "string", "pattern": IDENT_RE.pattern, "maxLength": IDENT_BYTES})]


def _check_enum_value(value: str) -> str:
    """An enum value is written as a quoted literal ('like'), never as a name, so a reserved word is a fine value:
    a reaction 'like', an audience 'all', a role 'user'. The identifier shape still holds (the API and the
    generated types spell values as they are)."""
    problem = ident_problem(value)
    if problem and not (isinstance(value, str) and IDENT_RE.match(value)):
        raise ValueProblem(problem, f"try '{suggest_ident(str(value))}'")
    return value


# A value of an enum field (and of transitions over one): an identifier's shape, reserved words allowed.
EnumValue = Annotated[str, AfterValidator(_check_enum_value), WithJsonSchema(
    {"type": "string", "pattern": IDENT_RE.pattern, "maxLength": IDENT_BYTES})]
Slug = Annotated[str, AfterValidator(_check_slug), WithJsonSchema(
    {"type": "string", "pattern": SLUG_RE.pattern, "maxLength": IDENT_BYTES})]
# Free text (names, descriptions) ends up in SQL comments and literals.
Text = Annotated[str, AfterValidator(_check_text)]


class Model(BaseModel):
    """Strict by default: unknown keys are typos, and typos in a security design are bugs."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=False)
