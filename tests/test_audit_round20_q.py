"""Evasion round 20 (BP003/BP017), `do_loops`: a DO loop's EXECUTE text is read through the text functions of
constants a command word may be cut from (e01: `substr('xdisable', 2)`, e01b: a jsonb mode map `->> 'off'`), an
unreadable word counts when a constant of it holds `disable` at all, and a constant that reaches the command only
as quoted data (fp01: `comment on table %I is %L` of "never disable row level security") is no command word."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

_WORLD = """
create table public.notes (id uuid primary key, owner uuid not null);
alter table public.notes enable row level security;
create policy notes_own on public.notes for select to authenticated using (owner = (select auth.uid()));
"""

_OPEN = {"BP003", "BP017"}


def _rules(sql: str) -> set[str]:
    return {f.rule_id for f in audit_sql([("m.sql", _WORLD + sql)]) if f.level.value in ("ERROR", "WARN")}


def _loop(command: str) -> str:
    return f"""
do $$
declare t record;
begin
  for t in select tablename from pg_tables where schemaname = 'public' loop
    execute {command};
  end loop;
end $$;
"""


_PREFIX = "'alter table public.' || quote_ident(t.tablename) || ' ' || "


@pytest.mark.parametrize("word", [
    "substr('xdisable', 2)", "substring('xdisable' from 2 for 7)", "left('disabled', 7)", "right('xdisable', 7)",
    "split_part('enable,disable', ',', 2)", "split_part('enable,disable', ',', -1)", "reverse('elbasid')",
    "translate('xisable', 'x', 'd')", "substr(repeat('disable', 2), 8)",
])
def test_e01_command_word_cut_from_a_constant(word):
    assert _rules(_loop(_PREFIX + word + " || ' row level security'")) >= _OPEN
    fixed = word.replace("xdisable", "xenable").replace("disabled", "enabled_").replace("elbasid", "elbane")
    fixed = fixed.replace(",disable", ",enable").replace("'xisable', 'x', 'd'", "'xnable', 'x', 'e'")
    fixed = fixed.replace("repeat('disable', 2), 8", "repeat('enable', 2), 7")
    fixed = fixed.replace("'xdisable', 7", "'xenable', 6")
    assert _rules(_loop(_PREFIX + fixed + " || ' row level security'")) & _OPEN == set(), fixed


def test_e01b_command_word_from_a_jsonb_mode_map():
    word = """('{"on": "enable", "off": "disable"}'::jsonb ->> 'off')"""
    assert _rules(_loop(_PREFIX + word + " || ' row level security'")) >= _OPEN
    nested = """('{"modes": ["enable", "disable"]}'::jsonb -> 'modes' ->> 1)"""
    assert _rules(_loop(_PREFIX + nested + " || ' row level security'")) >= _OPEN
    safe = """('{"on": "enable", "off": "disable"}'::jsonb ->> 'on')"""
    assert _rules(_loop(_PREFIX + safe + " || ' row level security'")) & _OPEN == set()


def test_e01_unreadable_word_holding_disable_is_a_possible_disable():
    """A call the model does not evaluate (regexp_replace) over a constant that holds `disable`: conservative."""
    word = "regexp_replace('xdisable', '^x', '')"
    assert _rules(_loop(_PREFIX + word + " || ' row level security'")) >= _OPEN
    safe = "regexp_replace('xenable', '^x', '')"
    assert _rules(_loop(_PREFIX + safe + " || ' row level security'")) & _OPEN == set()


@pytest.mark.parametrize("command", [
    "format('comment on table public.%I is %L', t.tablename, split_part(t.tablename, '_', 1) "
    "|| ': tenant data; never disable row level security')",
    "'comment on table public.' || quote_ident(t.tablename) || ' is ' || quote_literal(md5(t.tablename) "
    "|| ' never disable row level security')",
    "format('comment on table public.%I is ''never disable row level security (%s)''', t.tablename, "
    "md5(t.tablename))",
    "format('grant select on public.%I to authenticated; comment on table public.%I is %L', t.tablename, "
    "t.tablename, md5(t.tablename) || ' never disable row level security')",
])
def test_fp01_quoted_data_mentioning_disable_is_no_command(command):
    assert _rules(_loop(command)) & _OPEN == set()


def test_fp01_twin_a_real_disable_beside_a_comment_still_counts():
    command = ("format('comment on table public.%I is %L; alter table public.%I %s row level security', "
               "t.tablename, md5(t.tablename), t.tablename, regexp_replace('xdisable', '^x', ''))")
    assert _rules(_loop(command)) >= _OPEN


def test_e01_unreadable_part_may_end_a_comment_and_start_a_disable():
    """A part the model cannot read may hold `;` and begin a new statement after a readable COMMENT."""
    command = ("'comment on table public.' || quote_ident(t.tablename) || ' is ' "
               "|| regexp_replace('''x''; alter table public.' || quote_ident(t.tablename), 'y', '') "
               "|| ' disable row level security'")
    assert _rules(_loop(command)) >= _OPEN
