"""Statement handlers, part 3: what the platform's lints read beyond tables and policies.

Foreign tables, rows of storage.buckets, queues made by `select pgmq.create(...)`, and transaction
control (begin/commit/rollback/savepoints), replayed the way PostgreSQL would leave the catalogue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.schema import Column, StorageBucket, Table
from .ddl import HANDLERS, add_column, select_into
from .platform import QUEUE_SCHEMA, QUEUE_TABLE_PREFIX
from .fold import fold
from .tree import const, strings

if TYPE_CHECKING:
    from .parse import Reader, Stmt


def create_foreign_table(r: Reader, n: dict, st: Stmt) -> None:
    base = n.get("base") or {}
    rv = base.get("relation") or {}
    schema, name = r.name(rv)
    if r.table(schema, name) is not None and base.get("if_not_exists"):
        return
    t = Table(schema_name=schema, name=name, kind="foreign table", location=st.loc(rv.get("location")))
    for element in base.get("tableElts") or []:
        if "ColumnDef" in element:
            add_column(r, t, element["ColumnDef"], st)
    r.drop_table(schema, name)
    r.add_table(t)


def _value(node: dict) -> object:
    folded = fold(node)
    return folded if folded is not None else const(node)


def insert(r: Reader, n: dict, st: Stmt) -> None:
    """`insert into storage.buckets (id, name, public, ...) values (...)`: the buckets a project has."""
    if r.name(n.get("relation")) != ("storage", "buckets"):
        return
    columns = [c.get("ResTarget", {}).get("name", "") for c in n.get("cols") or []]
    rows = ((n.get("selectStmt") or {}).get("SelectStmt") or {}).get("valuesLists") or []
    for row in rows:
        values = dict(zip(columns, [_value(v) for v in row.get("List", {}).get("items") or []], strict=False))
        bucket_id = values.get("id") or values.get("name")
        if not isinstance(bucket_id, str):
            continue
        r.schema.buckets = [b for b in r.schema.buckets if b.name != bucket_id]
        r.schema.buckets.append(StorageBucket(name=bucket_id, public=values.get("public") is True,
                                              location=st.loc()))





_QUEUE_CREATORS = ("create", "create_unlogged", "create_partitioned")
_QUEUE_COLUMNS = (("msg_id", "bigint"), ("read_ct", "integer"), ("enqueued_at", "timestamptz"), ("vt", "timestamptz"),
                  ("message", "jsonb"))


def select(r: Reader, n: dict, st: Stmt) -> None:
    """`select ... into <table>` (a table, as CREATE TABLE AS makes one); `select pgmq.create('jobs')` (also
    in FROM): the queue table pgmq.q_jobs, RLS off, no API grants."""
    if "intoClause" in n or n.get("op", "SETOP_NONE") != "SETOP_NONE":
        select_into(r, n, st)
    calls = [t.get("ResTarget", {}).get("val", {}).get("FuncCall") for t in n.get("targetList") or []]
    calls += [i.get("FuncCall") for f in n.get("fromClause") or [] for fn in f.get("RangeFunction", {}).get(
        "functions") or [] for i in fn.get("List", {}).get("items") or []]
    for call in calls:
        if not call or strings(call.get("funcname"))[-2:] not in [[QUEUE_SCHEMA, c] for c in _QUEUE_CREATORS]:
            continue
        name = const((call.get("args") or [None])[0])
        table = f"{QUEUE_TABLE_PREFIX}{name}"
        if isinstance(name, str) and r.table(QUEUE_SCHEMA, table) is None:
            t = Table(schema_name=QUEUE_SCHEMA, name=table, location=st.loc(call.get("location")),
                      columns=[Column(name=c, type=ty) for c, ty in _QUEUE_COLUMNS])
            r.add_table(t)


def transaction(r: Reader, n: dict, st: Stmt) -> None:
    """begin / commit / rollback / savepoint / release / rollback to: a rolled-back change does not count."""
    kind = n.get("kind", "")
    if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
        r.begin()
    elif kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_PREPARE"):
        r.commit()  # a prepared transaction is kept as if committed: its changes are on their way
    elif kind == "TRANS_STMT_ROLLBACK":
        r.rollback()
    elif kind == "TRANS_STMT_SAVEPOINT":
        r.savepoint(n.get("savepoint_name", ""))
    elif kind == "TRANS_STMT_RELEASE":
        r.release(n.get("savepoint_name", ""))
    elif kind == "TRANS_STMT_ROLLBACK_TO":
        r.rollback_to(n.get("savepoint_name", ""))


HANDLERS.update({"CreateForeignTableStmt": create_foreign_table, "InsertStmt": insert, "SelectStmt": select,
                 "TransactionStmt": transaction})
