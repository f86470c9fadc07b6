"""The one identifier-quoting helper, the one literal helper, and the generated-name builder.

`object_name` lives in model.names because the model derives names too (events); it is re-exported
here for the SQL builders.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..model.names import MAX_IDENT_BYTES, RESERVED, object_name

__all__ = ["MAX_IDENT_BYTES", "column_list", "ident", "literal", "object_name", "qname"]

_BARE = re.compile(r"^[a-z_][a-z0-9_]*$")


@lru_cache(maxsize=8192)  # a pure function of the name; audits and generators ask for the same few names
def ident(name: str) -> str:
    """Quote `name` unless it is a plain lower-case, non-reserved identifier."""
    if _BARE.match(name) and name not in RESERVED and len(name.encode()) <= MAX_IDENT_BYTES:
        return name
    return '"' + name.replace('"', '""') + '"'


def qname(schema: str, name: str) -> str:
    """A schema-qualified name, each part through `ident`."""
    return f"{ident(schema)}.{ident(name)}"


def literal(value: object) -> str:
    """A SQL literal for a Python scalar (standard_conforming_strings is on everywhere we run)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"no SQL literal for {value!r}")
        return repr(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("strings with NUL bytes cannot be stored in PostgreSQL")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def column_list(columns: list[str] | tuple[str, ...]) -> str:
    return ", ".join(ident(c) for c in columns)


__all__ = ["MAX_IDENT_BYTES", "column_list", "ident", "literal", "object_name", "qname"]


def dollar_quoted(body: str) -> str:
    """`body` between dollar quotes whose tag it does not contain: `$$` as a rule, `$fn$`, `$fn1$`... where a value
    the user wrote (a `where` value of '$$' in a restore function's restated policy) holds `$$` (red team 15: the
    quote ended there, the migration broke, and with psql going on past errors the rest ran as statements)."""
    tag, n = "$$", 0
    while tag in body:
        tag, n = f"$fn{n or ''}$", n + 1
    return f"{tag}\n{body}\n{tag}"
