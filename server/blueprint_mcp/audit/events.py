"""Event triggers that turn row level security on for every table created after them.

Supabase documents the pattern ("RLS on by default"): a `ddl_command_end` event trigger whose PL/pgSQL function loops
over `pg_event_trigger_ddl_commands()` and runs `alter table %s enable row level security` for each new table,
usually only in `public`. A table created while such a trigger is enabled has RLS on without an ALTER TABLE of its
own (audit-evasion round 10, fp01: BP003 and BP017 reported it off). Only what the function's PL/pgSQL tree says
counts (event_body.py): the tests on the paths to its EXECUTE, on which commands (`tg_tag`, command_tag), object
types and schemas it serves; a test on anything else (its OID, a variable) reaches nothing, so such tables are
reported as before. Round 12 sharpened the reading: a guard clause (`continue when`) means the other way round,
literals compare as written, object_identity must be pasted as `%s` (it is quoted already), and the trigger fires
as its enabled state and session_replication_role say. Round 16 moved it onto the parse tree: guards on `tg_tag`
(e05, fp02) and guards that log before they jump (e17, fp08) are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model.names import RESERVED
from . import event_body
from .tree import strings

if TYPE_CHECKING:
    from ..model.schema import Function, Table
    from .parse import Reader, Stmt

# The keywords quote_ident quotes besides RESERVED: PostgreSQL's column-name keywords (pg_get_keywords() catcode
# 'C' on 15, and the JSON and MERGE ones 16 and 17 added).
_KEYWORDS = RESERVED | frozenset("""
    between bigint bit boolean char character coalesce dec decimal exists extract float greatest grouping inout int
    integer interval json json_array json_arrayagg json_exists json_object json_objectagg json_query json_scalar
    json_serialize json_table json_value least merge_action national nchar none normalize nullif numeric out overlay
    position precision real row setof smallint substring time timestamp treat trim values varchar xmlattributes
    xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable
    """.split())
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
# A body that turns RLS off or unforces it anywhere is not read: which of its statements wins is not followed.
_UNDOES = re.compile(r"\b(disable|no\s+force)\s+row\s+level\s+security\b", re.I)


@dataclass
class EventTrigger:
    name: str
    function: tuple[str, str]  # (schema, name) of its function, followed through renames
    tags: frozenset[str] | None  # WHEN TAG IN (...), upper case; None: every command
    enabled: str = "O"  # as pg_event_trigger.evtenabled: O (origin, the default), A (always), R (replica), D


def _reading(body: str) -> event_body.Reading | None:
    return None if _UNDOES.search(_COMMENTS.sub(" ", body)) else event_body.reading(body)


def create_event_trigger(r: Reader, n: dict, st: Stmt) -> None:
    if n.get("eventname") != "ddl_command_end":
        return
    names = strings(n.get("funcname"))
    function = (names[-2], names[-1]) if len(names) > 1 else (r.creation_schema, names[-1])
    tags = None
    for d in n.get("whenclause") or []:
        elem = d.get("DefElem") or {}
        if elem.get("defname") == "tag":
            tags = frozenset(s.upper() for s in strings((elem.get("arg") or {}).get("List", {}).get("items")))
    r.event_triggers[n.get("trigname", "")] = EventTrigger(n.get("trigname", ""), function, tags)


def alter_event_trigger(r: Reader, n: dict, st: Stmt) -> None:
    trigger = r.event_triggers.get(n.get("trigname", ""))
    if trigger is not None:
        trigger.enabled = n.get("tgenabled") or "O"


def replication_role(r: Reader, value: str | None, local: bool = False) -> None:
    """`set [local] session_replication_role = <value>`, `reset` (None), `set_config(..., is_local)`: event triggers
    fire by it. A SET LOCAL (or set_config's local one) ends with its transaction, as SET LOCAL search_path does
    (Reader.end_transaction; evasion round 21 fp07: `begin; set local session_replication_role = replica; insert
    ...; commit;` left the RLS-on event trigger off for every later table); a plain SET outlives it."""
    if local:
        r.session_replica = r.replica if r.session_replica is None else r.session_replica
    else:
        r.session_replica = None
    r.replica = (value or "origin").lower() == "replica"


def follow_function(r: Reader, was: tuple[str, str], now: tuple[str, str]) -> None:
    for trigger in r.event_triggers.values():
        if trigger.function == was:
            trigger.function = now


def created(r: Reader, t: Table, tag: str) -> None:
    """`t` was just created by `tag` (CREATE TABLE, CREATE TABLE AS, SELECT INTO): RLS on (and forced) as the
    enabled event triggers whose function is read whole turn it on. PostgreSQL reports a partitioned table's
    object_type as `table` too (measured: tests/corpus/platform.yaml)."""
    for trigger in r.event_triggers.values():
        # ORIGIN fires unless the session replicates (`set session_replication_role = replica`: a data-only
        # dump's first line, a backfill; evasion round 12, e03), REPLICA only then, ALWAYS always.
        fires = {"O": not r.replica, "R": r.replica, "A": True}.get(trigger.enabled, False)
        if not fires or (trigger.tags is not None and tag not in trigger.tags):
            continue
        function = _function(r, trigger.function)
        reading = _reading(function.body) if function is not None else None
        # tg_tag is the whole command's tag: the reader's tables come one command each (CREATE SCHEMA's own
        # CREATE TABLEs are not read), so it is the row's command_tag.
        # (a migration's own CREATE TABLE runs in no extension's script: in_extension is false)
        facts = {"schema_name": t.schema_name, "command_tag": tag, "object_type": "table", "in_extension": "false",
                 "object_identity": f"{_ident(t.schema_name)}.{_ident(t.name)}", "tg_tag": tag,
                 "tg_event": "ddl_command_end"}
        if reading is not None and event_body.admitted(reading.enables, facts):
            t.rls_enabled = True
        if reading is not None and event_body.admitted(reading.forces, facts):
            t.rls_forced = True


def _ident(name: str) -> str:
    """As `object_identity` spells a name (quote_ident): quoted unless plain and no keyword but an unreserved one
    (`public."values"`, `public."user"`), so a test of the full name compares as PostgreSQL's does."""
    plain = re.fullmatch(r"[a-z_][a-z0-9_$]*", name) is not None and name not in _KEYWORDS
    return name if plain else '"' + name.replace('"', '""') + '"'


def _function(r: Reader, name: tuple[str, str]) -> Function | None:
    found = [f for f in r.functions(*name, None) if f.arg_types == "" and f.language.lower() == "plpgsql"
             and f.returns.lower().replace(" ", "_") == "event_trigger"]
    return found[0] if found else None
