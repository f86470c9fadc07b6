"""Statement handlers, part 3: what the platform's lints read beyond tables and policies.

Foreign tables, rows of storage.buckets, `pgrst.db_schemas` set for the session, and transaction
control (begin/commit/rollback/savepoints), replayed the way PostgreSQL would leave the catalogue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.schema import StorageBucket, Table
from .ddl import HANDLERS, add_column
from .tree import const, fold

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


HANDLERS.update({"CreateForeignTableStmt": create_foreign_table, "InsertStmt": insert, "TransactionStmt": transaction})
