"""Evasion round 16, BP087 (the role an invitation may carry): a test bounds the written role only when it tests
that very value (or a variable holding it), by the enum's order (e01, e02, fp01, fp01b); argument-built rows and
every VALUES row are written roles too (e09, e09b); and "at most your own role" read through a variable counts
(fp04)."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

from audit_world import ORGS, invitations

# Round 15's invitation schema, cut to what BP087 reads: accept_invitation copies invitations.role into a membership,
# and clients write invitations only through private.invite_member (no insert policy).
_SCHEMA = ORGS + invitations("private", "token")

_MEMBERS_ONLY = """
  if not p_org = any (array(select private.organization_ids_with_role('member'))) then
    raise exception 'members only' using errcode = '42501';
  end if;"""
_OWNERS_ONLY = """
    if not p_org = any (array(select private.organization_ids_with_role('owner'))) then
      raise exception 'only owners add admins' using errcode = '42501';
    end if;"""


def _invite(params: str, body: str, declare: str = "") -> str:
    """private.invite_member(<params>), a definer granted to authenticated and called by a public wrapper, running
    `body`."""
    types = ", ".join(p.split()[1] for p in params.split(", "))
    names = ", ".join(p.split()[0] for p in params.split(", "))
    return f"""
create function private.invite_member({params}) returns void
language plpgsql security definer set search_path = '' as $$
{declare}
begin
{body}
end $$;
revoke all on function private.invite_member({types}) from public, anon;
grant execute on function private.invite_member({types}) to authenticated;
create function public.invite_member({params}) returns void
language sql security invoker set search_path = '' as $$ select private.invite_member({names}) $$;
"""


def _rules(sql: str) -> list[str]:
    return sorted(f.rule_id for f in audit_sql([("case.sql", _SCHEMA + sql)]) if f.level.name in ("ERROR", "WARN"))


_ENUM_PARAMS = "p_org uuid, p_email text, p_role public.member_role"
_INSERT = """
  insert into public.invitations (organization_id, email, role) values (p_org, p_email, p_role);"""


@pytest.mark.parametrize("test, rules", [
    ("p_role::text > 'member'", ["BP087"]),  # e01: by collation 'admin' < 'member', so admin skips the owner check
    ("'member' < p_role::text", ["BP087"]),
    ("p_role > 'member'", []),  # the fix: the enum's order
    ("p_role::text in ('admin', 'owner')", []),  # (equality reads the same as text)
])
def test_role_compared_as_text_is_no_bound_by_the_enum_order(test, rules):
    body = _MEMBERS_ONLY + f"\n  if {test} then{_OWNERS_ONLY}\n  end if;" + _INSERT
    assert _rules(_invite(_ENUM_PARAMS, body)) == rules


_TEXT_PARAMS = "p_org uuid, p_email text, p_role text"


@pytest.mark.parametrize("test, written, rules", [
    # e02: 'OWNER' and ' Owner' pass a test of the raw text and are written as owner
    ("p_role in ('admin', 'owner')", "lower(trim(p_role))::public.member_role", ["BP087"]),
    ("lower(p_role) in ('admin', 'owner')", "lower(trim(p_role))::public.member_role", ["BP087"]),
    # fp01: the test and the write read the same expression
    ("lower(trim(p_role)) in ('admin', 'owner')", "lower(trim(p_role))::public.member_role", []),
    ("p_role in ('admin', 'owner')", "p_role::public.member_role", []),  # (the cast refuses 'OWNER')
])
def test_a_role_test_bounds_only_the_expression_it_tests(test, written, rules):
    body = _MEMBERS_ONLY + f"\n  if {test} then{_OWNERS_ONLY}\n  end if;" + \
        f"\n  insert into public.invitations (organization_id, email, role) values (p_org, p_email, {written});"
    assert _rules(_invite(_TEXT_PARAMS, body)) == rules


@pytest.mark.parametrize("test, rules", [
    ("v_role >= 'admin'", []),  # e02's fix: normalise once into a variable, test and write that
    ("p_role in ('admin', 'owner')", ["BP087"]),  # (' Owner' passes the raw test and the variable holds owner)
    ("v_role::text > 'member'", ["BP087"]),
    (None, ["BP087"]),  # a variable made of the argument is the client's value too
])
def test_a_variable_made_of_the_argument_is_bounded_by_a_test_of_it(test, rules):
    check = f"\n  if {test} then{_OWNERS_ONLY}\n  end if;" if test else ""
    body = _MEMBERS_ONLY + check + \
        "\n  insert into public.invitations (organization_id, email, role) values (p_org, p_email, v_role);"
    declare = "declare v_role public.member_role := lower(trim(p_role))::public.member_role;"
    assert _rules(_invite(_TEXT_PARAMS, body, declare)) == rules


@pytest.mark.parametrize("test, rules", [
    ("coalesce(p_role, 'member') > 'member'", []),  # fp01b: a NULL role means member, tested as written
    ("coalesce(p_role, 'member')::text > 'member'", ["BP087"]),
    ("p_role > 'member'", []),  # (a NULL p_role is written as member: a bound of p_role bounds the COALESCE)
])
def test_coalesce_of_the_role_tested_as_written_is_bounded(test, rules):
    body = _MEMBERS_ONLY + f"\n  if {test} then{_OWNERS_ONLY}\n  end if;" + """
  insert into public.invitations (organization_id, email, role) values (p_org, p_email, coalesce(p_role, 'member'));"""
    assert _rules(_invite(_ENUM_PARAMS, body)) == rules


_BULK = """
create function private.invite_members(p_org uuid, p_invites jsonb) returns void
language plpgsql security definer set search_path = '' as $$
begin
{checks}
  insert into public.invitations (organization_id, email, role)
  select p_org, lower(trim(x.email)), coalesce(x.role, 'member')
    from jsonb_to_recordset(p_invites) as x(email text, role public.member_role);
end $$;
revoke all on function private.invite_members(uuid, jsonb) from public, anon;
grant execute on function private.invite_members(uuid, jsonb) to authenticated;
create function public.invite_members(p_org uuid, p_invites jsonb) returns void
language sql security invoker set search_path = '' as $$ select private.invite_members(p_org, p_invites) $$;
"""
_ANY_ADMIN = "exists (select 1 from jsonb_to_recordset(p_invites) as y(email text, role public.member_role) where {})"


@pytest.mark.parametrize("where, rules", [
    (None, ["BP087"]),  # e09: each row's role is the client's
    ("y.role >= 'admin'", []),  # the fix: any management role needs an owner
    ("y.role > 'admin'", ["BP087"]),  # (admin passes)
    ("y.role >= 'admin' and y.email like '%@%'", ["BP087"]),  # (an admin row without @ passes)
])
def test_roles_from_an_argument_built_row_are_bounded_only_by_a_test_of_each_row(where, rules):
    checks = _MEMBERS_ONLY if where is None else _MEMBERS_ONLY + f"\n  if {_ANY_ADMIN.format(where)} and not " + \
        "p_org = any (array(select private.organization_ids_with_role('owner'))) then\n    raise exception " + \
        "'only owners add admins' using errcode = '42501';\n  end if;"
    assert _rules(_BULK.format(checks=checks)) == rules


@pytest.mark.parametrize("check, rules", [
    ("", ["BP087"]),  # e09b: neither row's role is checked
    ("\n  if p_role >= 'admin' and not p_org = any (array(select private.organization_ids_with_role('owner'))) "
     "then\n    raise exception 'only owners add admins' using errcode = '42501';\n  end if;", []),
])
def test_every_row_of_a_values_list_is_a_written_role(check, rules):
    body = _MEMBERS_ONLY + check + """
  insert into public.invitations (organization_id, email, role)
  values (p_org, p_email, p_role), (p_org, p_cc_email, p_role);"""
    assert _rules(_invite("p_org uuid, p_email text, p_cc_email text, p_role public.member_role", body)) == rules


_MY_ROLE = """
  select m.role into v_my_role from public.organization_members m
   where {where};
  if {floor} then
    raise exception 'members only' using errcode = '42501';
  end if;
  if {bound} then
    raise exception 'you cannot invite above your own role' using errcode = '42501';
  end if;""" + _INSERT
_PINNED = "m.organization_id = p_org and m.user_id = (select auth.uid())"


@pytest.mark.parametrize("where, floor, bound, rules", [
    (_PINNED, "v_my_role is null or v_my_role < 'member'", "p_role > v_my_role", []),  # fp04
    (_PINNED, "v_my_role is null or v_my_role < 'member'", "v_my_role < p_role", []),
    (_PINNED, "v_my_role < 'member'", "p_role > v_my_role", ["BP080", "BP087"]),  # a non-member's NULL passes both
    (_PINNED, "v_my_role is null or v_my_role < 'member'", "p_role < v_my_role", ["BP087"]),
    (_PINNED, "v_my_role is null or v_my_role < 'member'", "p_role::text > v_my_role::text", ["BP087"]),
    ("m.user_id = (select auth.uid())", "v_my_role is null or v_my_role < 'member'", "p_role > v_my_role",
     ["BP087"]),  # (the caller's role in some organisation, not the invitation's)
])
def test_at_most_your_own_role_through_a_variable_bounds_the_role(where, floor, bound, rules):
    body = _MY_ROLE.format(where=where, floor=floor, bound=bound)
    assert _rules(_invite(_ENUM_PARAMS, body, "declare v_my_role public.member_role;")) == rules
