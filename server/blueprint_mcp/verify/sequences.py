"""Hold a database's sequences inside verify's transaction, so that its rollback puts them back too.

nextval() is never rolled back: every row verify (or a migration's seed insert, or a column added with a default
naming a sequence) writes into a table of the user's database moved its sequence for good, and a smallserial or
a sequence with a low maxvalue could be run to its end, failing every later insert of the application. ALTER
SEQUENCE with a changed parameter gives the sequence a new storage file in the current transaction ("making the
state changes transactional", PostgreSQL's sequence.c); setting the increment it already has changes nothing but
that. Until the rollback, other sessions' nextval() on those sequences waits, as their DDL on a table a migration
altered does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..audit.platform import MANAGED_SCHEMAS
from ..sql.ident import literal

# Every sequence the session may alter (its owner's rights), but temporary ones (they die with the session) and
# the platform's (auth.refresh_tokens_id_seq: held, every sign-in would wait for verify). A sequence in use by an
# open transaction elsewhere, or one that cannot be altered, is left as it is, and named if verify moves it.
_PLATFORM = "array[" + ", ".join(literal(n) for n in sorted(MANAGED_SCHEMAS)) + "]"
_HOLD = """
do $$
declare
  s record;
  loose text[] := '{}';
begin
  for s in select format('%I.%I', n.nspname, c.relname) as name, q.seqincrement as step,
                  pg_has_role(c.relowner, 'USAGE') and n.nspname <> all(PLATFORM_SCHEMAS) as owned
             from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             join pg_sequence q on q.seqrelid = c.oid
            where c.relkind = 'S' and c.relpersistence <> 't'
            order by 1
  loop
    if not s.owned then
      loose := loose || s.name;
      continue;
    end if;
    begin
      execute format('alter sequence %s increment by %s', s.name, s.step);
    exception when lock_not_available then
      loose := loose || s.name;
      -- one wait in all: another verify holding them all, or an app's open transactions, would cost it per sequence
      perform set_config('lock_timeout', 'NO_WAIT', true);
    when others then  -- not owned after all, a read-only transaction...: left loose
      loose := loose || s.name;  -- (others never catches a cancel: verify's timeout still ends the call)
    end;
  end loop;
  perform set_config('blueprint.loose_sequences', to_json(loose)::text, true);
end $$""".replace("PLATFORM_SCHEMAS", _PLATFORM).replace("NO_WAIT", "10ms")

# How long to wait for the first sequence another transaction is using before leaving it loose (and the others
# verify cannot have at once).
LOCK_WAIT = "2s"


def hold_sequences(conn: Any) -> dict[str, Any]:
    """Alter every sequence the session owns inside the current transaction; the ones it could not hold (not
    owned, or locked by another session), with where each stood, to name those verify moved after all."""
    with _lock_timeout(conn, LOCK_WAIT):
        conn.execute(_HOLD)
    loose = json.loads(conn.execute("select current_setting('blueprint.loose_sequences')").fetchone()[0])
    return _positions(conn, loose)


def moved(conn: Any, before: dict[str, Any]) -> list[str]:
    """The loose sequences that moved since `before` (nextval() on them is not undone by the rollback); one whose
    position could not be read either time (another session held it) is not named."""
    after = _positions(conn, list(before))
    return [name for name in before
            if before[name] is not _UNREAD and after.get(name) is not _UNREAD and after.get(name) != before[name]]


_UNREAD = object()


def _positions(conn: Any, names: list[str]) -> dict[str, Any]:
    """Each sequence's last value. Reading one locks it: one another verify holds is not waited for."""
    import psycopg

    out: dict[str, Any] = {}
    with _lock_timeout(conn, "10ms"):
        for name in names:
            try:
                with conn.transaction():
                    row = conn.execute("select last_value from pg_catalog.pg_sequences "
                                       "where format('%%I.%%I', schemaname, sequencename) = %s", (name,)).fetchone()
                out[name] = row[0] if row else None
            except psycopg.errors.LockNotAvailable:
                out[name] = _UNREAD
    return out


@contextmanager
def _lock_timeout(conn: Any, wait: str) -> Iterator[None]:
    previous = conn.execute("select current_setting('lock_timeout')").fetchone()[0]
    conn.execute("select set_config('lock_timeout', %s, true)", (wait,))
    try:
        yield
    finally:
        conn.execute("select set_config('lock_timeout', %s, true)", (previous,))
