"""Evasion rounds 12 and 13: readings that need more than one case file's fail_sql (BP050 e10: a second opened
directory; round 13 fp03: a boolean membership helper keys a branch to the caller)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from blueprint_mcp.audit import audit_sql

_PASS = yaml.safe_load((Path(__file__).parent / "cases" / "BP050.yaml").read_text())["pass_sql"]
_OWN = "using (user_id = (select auth.uid()));"


def _bp050(members_select: str) -> list:
    assert _OWN in _PASS
    sql = _PASS.replace(_OWN, members_select + ";") + """
  alter table public.organization_members add column listed boolean not null default true;
  create function public.my_org_ids() returns setof uuid language sql stable security definer set search_path = ''
    as $$ select m.organization_id from public.organization_members m where m.user_id = (select auth.uid()) $$;
  create function public.is_member_of(p_org uuid) returns boolean language sql stable security definer
    set search_path = '' as $$ select exists (select 1 from public.organization_members m
      where m.organization_id = p_org and m.user_id = (select auth.uid())) $$;
  create function public.is_listed_org(p_org uuid) returns boolean language sql stable security definer
    set search_path = '' as $$ select exists (select 1 from public.organization_members m
      where m.organization_id = p_org and m.listed) $$;
"""
    return [f for f in audit_sql([("case.sql", sql)]) if f.rule_id == "BP050"]


@pytest.mark.parametrize("using", [
    "using (user_id = (select auth.uid()) or listed)",  # an opt-out directory (e10)
    "using (user_id = (select auth.uid()) or organization_id is not null)",
    "using ((select auth.uid()) = user_id or not listed)",
    "using (user_id = (select auth.uid()) or public.is_listed_org(organization_id))",  # (asks nothing of the caller)
])
def test_membership_policy_showing_other_users_rows_by_a_row_column_opens_it(using):
    found = _bp050(using)
    assert len(found) == 1 and "without naming the caller" in found[0].message


@pytest.mark.parametrize("using", [
    "using (user_id = (select auth.uid()))",
    "using (user_id = (select auth.uid()) or organization_id = any (array(select public.my_org_ids())))",
    "using (organization_id in (select public.my_org_ids()) and listed)",
    "using (user_id = (select auth.uid()) or public.is_member_of(organization_id))",  # round 13 fp03
])
def test_membership_policy_keyed_to_the_caller_keeps_it_closed(using):
    assert _bp050(using) == []
