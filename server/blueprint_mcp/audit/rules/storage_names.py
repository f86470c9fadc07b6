"""Which `name` a storage policy reads: the file's path, or a column of a sub-query's own relation.

PostgreSQL gives an unqualified column to the innermost query whose FROM has one of that name: in `exists (select 1
from public.organizations o where ... and (storage.foldername(name))[1] = o.id::text)`, `name` is the organisation's
name, not the object's path, and the test asks nothing of the file (evasion round 21 e08; Supabase's own examples
write `objects.name` for this reason). A bare `name` a path test reads (storage.foldername(), starts_with(), LIKE,
split_part()...) that a sub-query's relation owns is such a capture; one no relation there is known to have is the
object's, and one a relation of unknown columns may own is left alone (benefit of the doubt).
"""

from __future__ import annotations

from typing import Any

from ...model.schema import Policy, Schema
from ..pins import unwrap
from ..tree import function_name, qualified, strings
from .binding import _children, _from_items, _typed

# Functions that read a path (their first argument, or any argument given the bare `name`).
_PATH_CALLS = frozenset((
    "foldername", "filename", "extension", "starts_with", "split_part", "left", "right", "substr", "substring",
    "strpos", "position", "string_to_array", "regexp_split_to_array", "regexp_like", "regexp_match",
    "regexp_matches", "regexp_substr", "regexp_count", "regexp_instr", "regexp_replace", "like_escape"))
_PATH_KINDS = ("AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_SIMILAR")
_PATH_OPS = ("~", "~*", "!~", "!~*", "^@", "~~", "~~*", "!~~", "!~~*")
_UNKNOWN = "?"


def object_policies(s: Schema) -> list[Policy]:
    """The policies on storage.objects: those the SQL creates, and the model's own."""
    objects = next((t for t in s.tables if t.qualified == "storage.objects"), None)
    return [*(objects.policies if objects else []), *s.storage_policies]


def captured_paths(s: Schema, tree: Any) -> list[str]:
    """schema.table of each sub-query relation whose `name` column a path test in the policy reads as a bare
    `name` (in document order, once each)."""
    out: list[str] = []
    stack: list[tuple[Any, tuple[dict[str, str], ...]]] = [(tree, ())]
    while stack:
        value, scopes = stack.pop()
        typed = _typed(value)
        if typed is not None:
            kind, body = typed
            if kind == "SelectStmt":
                scopes = scopes + (_owners(s, body),)
            for operand in _path_operands(kind, body) if scopes else ():
                ref = unwrap(operand)
                if isinstance(ref, dict) and strings((ref.get("ColumnRef") or {}).get("fields")) == ["name"]:
                    owner = next((scope["name"] for scope in reversed(scopes) if "name" in scope), None)
                    if owner not in (None, _UNKNOWN) and owner not in out:
                        out.append(owner)
        stack.extend((child, scopes) for child in reversed(_children(value)))
    return out


def _owners(s: Schema, select: dict) -> dict[str, str]:
    """{'name': schema.table} when a relation of the SELECT's own FROM has a `name` column ('?' when one whose
    columns are not known may), {} when none has."""
    found: dict[str, str] = {}
    for kind, body in _from_items(select):
        t = s.table(body.get("relname", ""), body.get("schemaname") or "public") if kind == "RangeVar" else None
        if t is not None:
            if t.column("name") is not None:
                return {"name": qualified(body, "public")}
            continue
        columns = strings((body.get("alias") or {}).get("colnames"))
        if kind != "RangeVar" and columns:
            if "name" in columns:
                return {"name": _UNKNOWN}
            continue
        found = {"name": _UNKNOWN}
    return found


def _path_operands(kind: str, body: dict) -> list[Any]:
    """The operands of a node that read a text as a path."""
    if kind == "FuncCall" and function_name(body).split(".")[-1] in _PATH_CALLS:
        return list(body.get("args") or [])
    if kind == "A_Expr" and (body.get("kind") in _PATH_KINDS or "".join(strings(body.get("name"))) in _PATH_OPS):
        return [body.get("lexpr")]
    return []
