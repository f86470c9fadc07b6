"""Evasion round 19, items e08, e08b, e08c and e09 (BP003/BP017): a DO block's EXECUTE text built with format()'s
positional specifiers, replace(), concat_ws() or an array variable's element is read, and an EXECUTE whose text
cannot be read but whose constants spell a disabling command counts as that command on any table; each fix (RLS
re-enabled on every table) is clean, and an unreadable EXECUTE of no disabling constant stays harmless."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.audit.do_loops import _format
from blueprint_mcp.audit.findings import Level

from audit_world import ORGS, PROJECTS

PRELUDE = ORGS + PROJECTS
RLS = {"BP003", "BP017"}
_REENABLE = """
do $$ declare t text; begin for t in select tablename from pg_tables where schemaname = 'public' loop
  execute format('alter table public.%I enable row level security', t); end loop; end $$;
"""


def _fired(sql: str) -> set[str]:
    """The rules reporting an ERROR on the prelude followed by `sql`."""
    return {f.rule_id for f in audit_sql([("case.sql", PRELUDE + sql)]) if f.level is Level.ERROR}


def _loop(execute: str, query: str = "select schemaname, tablename from pg_tables where schemaname = 'public'",
          declare: str = "r record;") -> str:
    return f"do $$ declare {declare} begin for r in {query} loop {execute}; end loop; end $$;\n"


# --- e09: format()'s positional specifiers ------------------------------------------------------------------------

_E09 = _loop("execute format('alter table %1$I.%2$I disable row level security', r.schemaname, r.tablename)")


def test_e09_format_positional_disables_every_table() -> None:
    assert _fired(_E09) == RLS
    assert not _fired(_E09 + _REENABLE) & RLS


def test_format_specifier_grammar() -> None:
    assert _format("%2$s %1$s %s", ["a", "b"]) == "b a b"
    assert _format("[%-5s][%5s][%%]", ["ab", "cd"]) == "[ab   ][   cd][%]"
    # (a width from an argument is taken before the value; `*n$` names it, the value is the argument after it)
    assert _format("[%*s][%-*s][%*3$s]", ["3", "x", "2", "y"]) == "[  x][y ][ y]"
    assert _format("[%*s]", ["-3", "z"]) == "[z  ]" and _format("%*2$s", ["3", "x"]) is None
    assert _format("%1$I.%1$L", ["My T"]) == "\"My T\".'My T'"
    assert _format("%3$s", ["a"]) is None and _format("%d", ["1"]) is None


# --- e08, e08b, e08c: replace(), concat_ws(), an array variable's element --------------------------------------------

_E08 = _loop("execute replace('alter table public.X disable row level security', 'X', quote_ident(r.tablename))")
_E08B = _loop("execute r.cmd", "select concat_ws(' ', 'alter table', quote_ident(schemaname) || '.' || "
              "quote_ident(tablename), 'disable row level security') as cmd from pg_tables where schemaname = 'public'")
_E08C = ("do $$ declare t text; cmds text[] := array['disable']; begin for t in select tablename from pg_tables "
         "where schemaname = 'public' loop execute format('alter table public.%I %s row level security', t, cmds[1]);"
         " end loop; end $$;\n")
_E08C_SPLIT = ("do $$ declare t text; i int := 2; cmds text[] := string_to_array('enable,disable', ','); begin "
               "for t in select tablename from pg_tables where schemaname = 'public' loop "
               "execute format('alter table public.%I %s row level security', t, upper(cmds[i])); end loop; end $$;\n")


@pytest.mark.parametrize("sql", [_E08, _E08B, _E08C, _E08C_SPLIT], ids=["replace", "concat_ws", "array", "split"])
def test_e08_built_text_disables_every_table(sql: str) -> None:
    assert _fired(sql) == RLS
    assert not _fired(sql + _REENABLE) & RLS


def test_array_element_enabling_only_is_clean() -> None:
    sql = _E08C.replace("array['disable']", "array['enable', 'force']")
    assert not _fired(sql) & RLS


# --- the general rule: an EXECUTE it cannot read is not taken as harmless -------------------------------------------

def test_unreadable_execute_of_disabling_constant_may_disable_any_table() -> None:
    sql = _loop("execute 'alter table ' || private.qualified(r.tablename) || ' disable row level security'")
    assert _fired(sql) == RLS
    assert not _fired(sql + _REENABLE) & RLS
    word = _loop("execute format('alter table %s %s row level security', private.q(r.tablename), 'disable')")
    assert _fired(word) == RLS


def test_unreadable_execute_of_no_disabling_constant_stays_harmless() -> None:
    sql = _loop("execute 'alter table ' || private.qualified(r.tablename) || ' enable row level security'")
    assert not _fired(sql) & RLS
    assert not _fired(_loop("execute private.next_command(r.tablename)")) & RLS
