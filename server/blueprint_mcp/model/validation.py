"""Pydantic's validation errors in our words: the field path, what was expected, what was given, the fix.

Used for blueprints (parse_blueprint) and, at the MCP boundary, for tool arguments, so no caller
ever shows pydantic's own text or its documentation links. The rejected value is only previewed.
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import Problem, closest, one_of, preview

# Error type -> what was expected; the same words whatever pydantic's version says.
EXPECTED = {
    "string_type": "a string", "string_sub_type": "a string", "string_unicode": "a string",
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "int_parsing_size": "an integer of reasonable size",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "bool_type": "a boolean", "bool_parsing": "a boolean",
    "list_type": "a list", "tuple_type": "a list", "set_type": "a list",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
    "none_required": "null",
}
# Bounds: error type -> (message, fix), formatted with the error's ctx plus `actual`.
BOUNDS = {
    "string_too_long": ("too long: {actual:,} characters (at most {max_length:,}).", "shorten it"),
    "string_too_short": ("too short: {actual:,} characters (at least {min_length:,}).", "give a longer value"),
    "too_long": ("too many items: {actual_length:,} (at most {max_length:,}).", "remove some"),
    "too_short": ("too few items: {actual_length:,} (at least {min_length:,}).", "add some"),
    "greater_than_equal": ("must be at least {ge}; got {got}.", ""),
    "greater_than": ("must be greater than {gt}; got {got}.", ""),
    "less_than_equal": ("must be at most {le}; got {got}.", ""),
    "less_than": ("must be less than {lt}; got {got}.", ""),
}
# Labels pydantic adds to `loc` for a union member or a validator wrapper: not field names.
_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def problems_from(exc: ValidationError, root: str = "", model: Any = None) -> list[Problem]:
    """One problem per field (union members merged), paths under `root`; `model` lists accepted keys."""
    grouped: dict[str, list[dict]] = {}
    errors = exc.errors(include_url=False)
    paths = [field_path(err["loc"], root, keep_last=err["type"] == "extra_forbidden") for err in errors]
    for path, err in zip(paths, errors):
        # A union (a role name or a list of grants): when the input took one branch and failed deeper
        # inside it, the other branch's "expected a string" says nothing useful.
        if err["type"] in EXPECTED and any(p != path and p.startswith((path + "[", path + ".")) for p in paths):
            continue
        grouped.setdefault(path, []).append(err)
    return [_merged(path, errs) if len(errs) > 1 else _one(path, errs[0], model, root)
            for path, errs in grouped.items()]


def _one(path: str, err: dict, model: Any, root: str) -> Problem:
    kind, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
    where = path or root or "input"
    if kind in EXPECTED and isinstance(given, bool) and EXPECTED[kind] == "a string":
        # YAML reads yes, no, on, off, true and false bare as booleans: a poll's answers [yes, no] arrive as
        # [true, false], and the value the author wrote appears nowhere in the message.
        return where, f"expected a string; got {preview(given)}.", \
            "quote the value ('yes', 'no', 'on', 'off', 'true', 'false'): YAML reads them unquoted as booleans"
    if kind in EXPECTED:
        return where, f"expected {EXPECTED[kind]}; got {preview(given)}.", ""
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return where, "must not be empty.", ""
    if kind in BOUNDS:
        size = len(given) if isinstance(given, (str, list, dict, tuple)) else 0
        msg, fix = BOUNDS[kind]
        return where, msg.format(**{**ctx, "actual": size, "got": preview(given)}), fix
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", ""))
        # Quoted for strings ('a', 'b' or 'c'); bare for other literals (the blueprint version: 1).
        quoted = _QUOTED.findall(expected)
        choices = quoted or [c for c in re.split(r",\s*|\s+or\s+", expected) if c]
        if isinstance(given, str) and given in choices and not quoted:
            return where, f"expected one of {', '.join(choices)}; got {preview(given)}.", \
                f"write {given} as a number, without quotes"
        near = closest(given, choices)
        return where, f"expected one of {', '.join(choices)}; got {preview(given)}.", \
            f"did you mean '{near}'?" if near else "use one of those values"
    if kind == "missing":
        return where, "required but missing.", "add it"
    if kind == "extra_forbidden":
        accepted = _keys_at(model, err["loc"][:-1])
        near = closest(err["loc"][-1], accepted)
        fix = f"did you mean '{near}'? " if near else "remove it. "
        return where, "unknown key.", fix + (f"Accepted keys: {one_of(accepted, 30)}" if accepted else "")
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return where, str(ctx["error"]).rstrip(".") + ".", getattr(ctx["error"], "fix", "")
    if kind == "json_invalid":
        return where, "not valid JSON.", ""
    return where, err["msg"].rstrip(".") + ".", ""


def _merged(path: str, errs: list[dict]) -> Problem:
    """A value that matched no member of a union: list what each member expected."""
    wanted = list(dict.fromkeys(EXPECTED.get(e["type"], "") for e in errs))
    if "" in wanted:  # one member got further than a type check: its error says more
        best = next(e for e in errs if e["type"] not in EXPECTED)
        return _one(path, best, None, path)
    listed = ", ".join(wanted[:-1]) + f" or {wanted[-1]}" if len(wanted) > 1 else wanted[0]
    return path or "input", f"expected {listed}; got {preview(errs[0].get('input'))}.", ""


def join(root: str, path: str) -> str:
    if not root:
        return path
    return root + (path if not path or path.startswith("[") else "." + path)


def field_path(loc: tuple, root: str = "", keep_last: bool = False) -> str:
    """`entities[0].fields[1].type` from pydantic's loc, union and validator labels dropped."""
    out = root
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (keep_last and last) and (part in _TAGS or "[" in part or "(" in part):
            continue
        elif _KEY.match(part):
            out += ("." if out else "") + part
        else:
            out += f"[{preview(part)}]"
    return out


def _unwrap(tp: Any) -> Any:
    """The model or list type inside Annotated[...] and X | None."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else members[0]
        else:
            return tp


def _keys_at(model: Any, loc: tuple) -> list[str]:
    """The keys the model accepts at `loc`, for an unknown-key message."""
    tp = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):
            args = get_args(tp)
            tp = args[0] if get_origin(tp) in (list, tuple) and args else None
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif part not in _TAGS:
            return []
    tp = _unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []
