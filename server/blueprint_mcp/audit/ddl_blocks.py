"""Statement handlers, part 4: DO blocks, whose statements change the schema as if written outside.

`do $$ begin alter table public.t disable row level security; end $$` turns RLS off as surely as the bare
statement. Every statement of the PL/pgSQL body (and every EXECUTE of a constant string) is applied in
the order written, whichever IF branch, loop or exception handler holds it: the auditor cannot know which
branch runs, and a statement that might run is the one to check. EXECUTE of a string built from literals, and
of one built from a loop's variable over names written in the block, runs its statements (`do_loops`); EXECUTE of
any other computed string stays unknown. A statement that may not have run (an exception handler may have rolled
it back, or an EXIT, CONTINUE or RETURN whose condition is unknown came first) is applied but for what it would
protect: it turns no RLS on and revokes nothing (evasion round 12, e04 and e05).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pgparse

from .body import embedded_sql
from .ddl import HANDLERS, apply
from .do_loops import statements
from .parser import parse
from .tree import strings

if TYPE_CHECKING:
    from .parse import Reader, Stmt


def do_block(r: Reader, n: dict, st: Stmt) -> None:
    options = {d.get("DefElem", {}).get("defname"): d.get("DefElem", {}).get("arg") for d in n.get("args") or []}
    language = strings([options["language"]]) if options.get("language") else ["plpgsql"]
    if language != ["plpgsql"]:
        return  # another procedural language (plv8...): its body is not SQL the auditor reads
    try:
        _run(r, st)
    except pgparse.PGQueryError as exc:
        r.problem(f"DO block: {exc.args[0] if exc.args else exc} (PL/pgSQL rejects the body: the block fails "
                  "and none of its statements ran)", st.loc())
    except (RecursionError, ValueError):
        # IFs or DO blocks nested thousands deep (of blocks, the innermost with stack left reports it).
        r.problem("DO block cannot be parsed (nested too deeply or not valid text)", st.loc())


def _run(r: Reader, st: Stmt) -> None:
    cursor = 0
    for text, uncertain in statements(st.text, embedded_sql, lambda name: _exists(r, name)):
        # A statement of a dollar-quoted body is in the file as written: find it, so what it makes has
        # its own position. One that is not (a body in '...' with doubled quotes) takes the block's.
        at = st.text.find(text, cursor)
        if at >= 0:
            cursor = at + len(text)
        try:
            parsed = parse(text)
        except (pgparse.PGQueryError, RecursionError, ValueError):
            continue  # PL/pgSQL accepted it but the grammar does not (a variable where SQL wants a name)
        inner = st.inner(text, at)
        for raw in parsed:
            node = raw.get("stmt") or {}
            if uncertain:
                node = _unsure(node)
            if node and "TransactionStmt" not in node:  # COMMIT in a block is PL/pgSQL's, never a statement here
                apply(r, node, inner)


# (re-enabling a trigger too: a sanitising or guarding trigger is trusted only while it fires, and rules that
# report a bad trigger read every trigger whether it fires or not; evasion round 14, e03)
_PROTECTING = ("AT_EnableRowSecurity", "AT_ForceRowSecurity", "AT_EnableTrig", "AT_EnableAlwaysTrig",
               "AT_EnableReplicaTrig", "AT_EnableTrigAll", "AT_EnableTrigUser")


def _unsure(node: dict) -> dict | None:
    """A statement that may not have run (an exception handler may have rolled it back, an EXIT may have ended
    its loop first) may still have run, so it is applied, all but what it would protect: it does not turn RLS
    on or force it, re-enables no trigger, and revokes nothing."""
    if "GrantStmt" in node and not node["GrantStmt"].get("is_grant"):
        return None
    if "AlterDefaultPrivilegesStmt" in node and not ((node["AlterDefaultPrivilegesStmt"].get("action") or {})
                                                      .get("GrantStmt") or {}).get("is_grant"):
        return None
    alter = node.get("AlterTableStmt")
    if alter is None:
        return node
    cmds = [c for c in alter.get("cmds") or [] if (c.get("AlterTableCmd") or {}).get("subtype") not in _PROTECTING]
    return {"AlterTableStmt": {**alter, "cmds": cmds}} if cmds else None


def _exists(r: Reader, name: str) -> bool | None:
    """Whether `to_regclass(name)` finds a table or view: True when the model has it under the schema the name
    gives; None otherwise (a name without a schema, or a relation the model does not hold)."""
    try:
        parsed = pgparse.parse(f"table {name}")
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return None
    select = parsed[0]["stmt"].get("SelectStmt") or {} if len(parsed) == 1 else {}
    source = select.get("fromClause") or []
    relation = source[0].get("RangeVar") if len(source) == 1 else None
    if not relation or not relation.get("schemaname") or relation.get("catalogname") or relation.get("alias"):
        return None
    schema, table = relation["schemaname"], relation.get("relname")
    if r.schema.table(table, schema) or any(v.name == table and v.schema_name == schema for v in r.schema.views):
        return True
    return None


HANDLERS["DoStmt"] = do_block
