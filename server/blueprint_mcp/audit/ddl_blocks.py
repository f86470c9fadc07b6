"""Statement handlers, part 4: DO blocks, whose statements change the schema as if written outside.

`do $$ begin alter table public.t disable row level security; end $$` turns RLS off as surely as the bare
statement. Every statement of the PL/pgSQL body (and every EXECUTE of a constant string) is applied in
the order written, whichever IF branch, loop or exception handler holds it: the auditor cannot know which
branch runs, and a statement that might run is the one to check. EXECUTE of a string built from literals, and
of one built from a loop's variable over names written in the block, runs its statements (`do_loops`); EXECUTE of
any other computed string stays unknown.
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
    texts = statements(st.text, embedded_sql)
    cursor = 0
    for text in texts:
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
            if "TransactionStmt" not in node:  # COMMIT in a block is PL/pgSQL's, never a statement here
                apply(r, node, inner)


HANDLERS["DoStmt"] = do_block
