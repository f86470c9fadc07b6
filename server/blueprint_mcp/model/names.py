"""Identifier rules shared by every model: lower snake case, 63 bytes, no reserved words."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection

from .errors import preview
from .limits import IDENT_BYTES

MAX_IDENT_BYTES = IDENT_BYTES
IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

# PostgreSQL's reserved key words (Appendix C, "reserved" and "reserved (can be function or
# type)"): as a bare column or table name they fail to parse or surprise readers.
RESERVED = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast check
    collate collation column concurrently constraint create cross current_catalog current_date
    current_role current_schema current_time current_timestamp current_user default deferrable
    desc distinct do else end except false fetch for foreign freeze from full grant group having
    ilike in initially inner intersect into is isnull join lateral leading left like limit
    localtime localtimestamp natural not notnull null offset on only or order outer overlaps
    placing primary references returning right select session_user similar some symmetric
    system_user table tablesample then to trailing true union unique user using variadic verbose
    when where window with
    """.split()
)


def ident_problem(value: object) -> str | None:
    """Why `value` is not a usable identifier, or None when it is."""
    if not isinstance(value, str):
        return "must be a string"
    size = len(value.encode())
    if size > IDENT_BYTES:
        return f"{preview(value)} is {size:,} bytes long; PostgreSQL identifiers are at most {IDENT_BYTES} bytes"
    if not IDENT_RE.match(value):
        return (
            f"{preview(value)} is not a valid identifier (lower case letters, digits and _, starting with a "
            "letter or _, at most 63 characters)"
        )
    if value in RESERVED:
        return f"'{value}' is a reserved word in PostgreSQL"
    return None


# Latin letters NFKD does not decompose into ASCII ones.
_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l",
                          "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH"})


def ascii_fold(value: str) -> str:
    """`value` without accents (café -> cafe), for suggestions: what cannot be spelt in ASCII is dropped."""
    return unicodedata.normalize("NFKD", value.translate(_LETTERS)).encode("ascii", "ignore").decode("ascii")


def suggest_ident(value: str) -> str:
    """A valid identifier close to `value`, for error messages."""
    s = re.sub(r"[^a-z0-9_]+", "_", ascii_fold(value[: 4 * IDENT_BYTES]).strip().lower()).strip("_") or "name"
    if not re.match(r"[a-z_]", s[0]):
        s = "_" + s
    s = s[:IDENT_BYTES].rstrip("_") or "name"
    return s + "_" if s in RESERVED else s


def object_name(*parts: str, suffix: str, taken: Collection[str] = ()) -> str:
    """A generated name (index, constraint, type, event) that fits 63 bytes and stays unique when cut.

    Parts are joined with "_", so ("a", "b_c") and ("a_b", "c") read alike: a name already in
    `taken` (the namespace it must be unique in) gets a digest of the parts themselves instead.
    """
    full = "_".join(p for p in parts if p) + "_" + suffix
    clash = full in taken
    if len(full.encode()) <= MAX_IDENT_BYTES and not clash:
        return full
    key = "\x1f".join((*parts, suffix)) if clash else full
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    keep = MAX_IDENT_BYTES - len(suffix) - len(digest) - 2
    head = "_".join(p for p in parts if p).encode()[:keep].decode("utf-8", "ignore").rstrip("_")
    return f"{head}_{digest}_{suffix}"


def verb_name(verb: str, noun: str) -> str:
    """`<verb>_<noun>` (an RPC such as restore_project), cut to 63 bytes with a digest when too long, so a
    long entity name still gives a valid, stable and distinct function name."""
    full = f"{verb}_{noun}"
    if len(full.encode()) <= MAX_IDENT_BYTES:
        return full
    digest = hashlib.sha1(full.encode()).hexdigest()[:8]
    head = full.encode()[:MAX_IDENT_BYTES - len(digest) - 1].decode("utf-8", "ignore").rstrip("_")
    return f"{head}_{digest}"
