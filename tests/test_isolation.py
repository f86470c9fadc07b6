"""Focused isolation tests on the habit-tracker backend: the holes of the naive pattern stay shut."""

from __future__ import annotations

import json

import pytest

from pgutil import build_world, denied, migrate, run_as

pytestmark = pytest.mark.postgres

ROLES = ["owner", "admin", "member", "viewer"]
PRIVILEGE = "42501"


@pytest.fixture(params=["explicit", "legacy"])
def world(request, make_db):
    conn = make_db(request.param)
    migrate(conn, "habit-tracker")
    w = build_world(conn, ROLES)
    w.habit1 = w.as_("member", "insert into public.habits (organization_id, name) values (%s, 'Run') returning id",
                     (w.org1,))[0][0]
    w.habit2 = w.as_("owner2", "insert into public.habits (organization_id, name) values (%s, 'Swim') returning id",
                     (w.org2,))[0][0]
    return w


def test_signup_creates_profile_and_personal_workspace_with_owner_membership(world):
    rows = world.as_("outsider", "select o.is_personal, m.role::text from public.organizations o "
                                 "join public.organization_members m on m.organization_id = o.id")
    assert rows == [(True, "owner")]
    assert world.as_("outsider", "select full_name from public.profiles") == [("Outsider",)]


def test_viewer_cannot_insert_update_or_delete_habits(world):
    assert world.denied("viewer", "insert into public.habits (organization_id, name) values (%s, 'x')",
                        (world.org1,)) == PRIVILEGE
    assert world.count("viewer", "update public.habits set name = 'x' where id = %s", (world.habit1,)) == 0
    assert world.count("viewer", "delete from public.habits where id = %s", (world.habit1,)) == 0
    assert world.su("select name from public.habits where id = %s", (world.habit1,)) == [("Run",)]


def test_viewer_reads_the_organisations_habits(world):
    assert world.as_("viewer", "select id from public.habits") == [(world.habit1,)]


def test_another_organisation_cannot_read_or_write_habits(world):
    assert world.as_("owner2", "select id from public.habits") == [(world.habit2,)]
    assert world.count("owner2", "update public.habits set name = 'x' where id = %s", (world.habit1,)) == 0
    assert world.count("outsider", "delete from public.habits where id = %s", (world.habit1,)) == 0


def test_member_edits_only_own_habits_while_admin_edits_any(world):
    own = world.as_("admin", "insert into public.habits (organization_id, name) values (%s, 'Admin habit') "
                             "returning id", (world.org1,))[0][0]
    assert world.count("member", "update public.habits set name = 'mine now' where id = %s", (own,)) == 0
    assert world.count("admin", "update public.habits set name = 'edited' where id = %s", (world.habit1,)) == 1


def test_member_cannot_promote_themself(world):
    assert world.denied("member", "update public.organization_members set role = 'owner' "
                                  "where user_id = auth.uid()") == PRIVILEGE


def test_nobody_joins_an_organisation_by_inserting_a_membership(world):
    assert world.denied("outsider", "insert into public.organization_members (organization_id, user_id, role) "
                                    "values (%s, auth.uid(), 'owner')", (world.org1,)) == PRIVILEGE


def test_admin_cannot_invite_an_owner_but_can_invite_a_member(world):
    invite = "select public.create_invitation(%s, %s, %s)"
    assert world.denied("admin", invite, (world.org1, "x@example.com", "owner")) == PRIVILEGE
    secret = world.as_("admin", invite, (world.org1, "Y@Example.com", "member"))[0][0]
    assert len(secret) == 64
    # Only the hash is kept, the address lower-cased, and no client inserts directly.
    assert world.su("select email from public.invitations where organization_id = %s", (world.org1,)) == \
        [("y@example.com",)]
    assert world.su("select count(*) from private.invitation_tokens where token_hash = sha256(convert_to(%s, 'UTF8'))",
                    (secret,)) == [(1,)]
    assert world.denied("member", invite, (world.org1, "z@example.com", "viewer")) == PRIVILEGE
    assert world.denied("admin", "insert into public.invitations (organization_id, email, role) "
                                 "values (%s, 'w@example.com', 'member')", (world.org1,)) == PRIVILEGE


def test_rows_cannot_move_to_another_organisation(world):
    personal = world.as_("member", "select id from public.organizations where is_personal")[0][0]
    denied_state = world.denied("member", "update public.habits set organization_id = %s where id = %s",
                                (personal, world.habit1))
    assert denied_state == PRIVILEGE


def test_check_in_cannot_reference_another_organisations_habit(world):
    # The member's own organisation, another organisation's habit: the composite FK refuses it.
    state = world.denied("member", "insert into public.habit_check_ins (organization_id, habit_id) values (%s, %s)",
                         (world.org1, world.habit2))
    assert state == "23503"


def test_the_owner_cannot_leave_or_be_removed(world):
    assert world.denied("owner", "delete from public.organization_members where user_id = auth.uid() "
                                 "and organization_id = %s", (world.org1,)) == PRIVILEGE
    assert world.count("admin", "delete from public.organization_members where organization_id = %s "
                                "and user_id = %s", (world.org1, world.users["owner"])) == 0


def test_members_may_leave_and_admins_remove_lower_roles_only(world):
    assert world.count("admin", "delete from public.organization_members where user_id = %s",
                       (world.users["viewer"],)) == 1
    assert world.count("member", "delete from public.organization_members where user_id = %s",
                       (world.users["admin"],)) == 0
    assert world.count("member", "delete from public.organization_members where user_id = auth.uid() "
                                 "and organization_id = %s", (world.org1,)) == 1


def test_users_read_only_their_own_profile(world):
    assert world.as_("member", "select count(*) from public.profiles") == [(1,)]


def test_signed_in_user_cannot_write_analytics_events(world):
    assert world.denied("owner", "insert into public.events (organization_id, event_name, event_category) "
                                 "values (%s, 'habit_created', 'core_feature')", (world.org1,)) == PRIVILEGE


@pytest.mark.parametrize("properties", [
    {"email": "a@b.c"},
    # Found by an independent attack: the check read top-level, lower-case keys only.
    {"Email": "a@b.c"}, {"user": {"email": "a@b.c"}}, {"phoneNumber": "+1 555"}, {"list": [{"FULL-NAME": "A B"}]},
    # Red team 31 F10: `_` and `-` anywhere, and the keys the built-ins lacked.
    {"e_mail": "a@b.c"}, {"E-Mail": "a@b.c"}, {"emailAddress": "a@b.c"}, {"_email_": "a@b.c"},
    {"who": {"birth_date": "1990-01-01"}}, {"Postal-Code": "10115"}, {"surname": "B"}, {"mobile": "+1 555"},
    {"social_security_number": "078-05-1120"}])
def test_events_reject_personal_data_in_properties(world, properties):
    state = denied(world.conn, "service_role", None,
                   "insert into public.events (organization_id, event_name, event_category, properties) "
                   "values (%s, 'habit_created', 'core_feature', %s)", (world.org1, json.dumps(properties)))
    assert state == "23514"


def test_events_keep_properties_that_only_resemble_personal_data(world):
    world.su("insert into public.events (organization_id, event_name, event_category, properties) values "
             "(%s, 'habit_created', 'core_feature', %s)",
             (world.org1, json.dumps({"emails_sent": 3, "plan": {"name": "pro"}, "tags": ["email"],
                                      "mobile_app": "ios", "email_opened": True, "street_view": False})))


def test_anon_reads_and_writes_nothing(world):
    for table in ("habits", "profiles", "organizations", "events", "badges"):
        assert denied(world.conn, "anon", None, f"select * from public.{table}") == PRIVILEGE
    assert denied(world.conn, "anon", None, "select private.organization_ids_with_role('viewer')") == PRIVILEGE


def test_other_organisations_metrics_are_invisible(world):
    world.su("insert into public.events (organization_id, user_id, event_name, event_category) values "
             "(%s, %s, 'habit_created', 'core_feature'), (%s, %s, 'habit_created', 'core_feature')",
             (world.org1, world.users["member"], world.org2, world.users["owner2"]))
    world.su("select private.refresh_daily_org_metrics()")
    assert world.as_("admin", "select organization_id from public.daily_org_metrics") == [(world.org1,)]
    assert world.as_("owner2", "select organization_id from public.daily_org_metrics") == [(world.org2,)]
    # The totals are those who read every event's: a viewer reads only their own events, and no totals.
    assert world.as_("viewer", "select organization_id from public.daily_org_metrics") == []


def test_ownership_moves_only_through_transfer_ownership(world):
    # The column is not client-writable; the function lets only the primary owner hand over, to a member.
    assert world.denied("owner", "update public.organizations set owner_user_id = %s where id = %s",
                        (world.users["admin"], world.org1)) == PRIVILEGE
    transfer = "select public.transfer_ownership(%s, %s)"
    assert world.denied("admin", transfer, (world.org1, world.users["admin"])) == PRIVILEGE
    assert world.denied("owner", transfer, (world.org1, world.users["outsider"])) == "23503"
    world.as_("owner", transfer, (world.org1, world.users["admin"]))
    assert world.su("select owner_user_id::text from public.organizations where id = %s", (world.org1,)) == \
        [(world.users["admin"],)]
    assert world.su("select role::text from public.organization_members where organization_id = %s and user_id = %s",
                    (world.org1, world.users["admin"])) == [("owner",)]


def test_deleting_an_account_removes_its_personal_workspace(world):
    world.su("delete from auth.users where id = %s", (world.users["outsider"],))
    assert world.su("select count(*) from public.organizations where owner_user_id = %s",
                    (world.users["outsider"],)) == [(0,)]


def test_service_role_bypasses_rls_for_privileged_writes(world):
    rows = run_as(world.conn, "service_role", None,
                  "insert into public.streaks (organization_id, habit_id, user_id) values (%s, %s, %s) returning id",
                  (world.org1, world.habit1, world.users["member"]))
    assert len(rows) == 1
    assert world.as_("viewer", "select count(*) from public.streaks") == [(1,)]


def test_single_membership_tenancy_allows_one_organisation_per_user(make_db):
    from blueprint_mcp.model import parse_blueprint
    from blueprint_mcp.sql.design import build_schema
    from blueprint_mcp.sql.render import rls_sql, schema_sql, triggers_sql
    from blueprint_mcp.verify.pg import apply_sql, create_user

    bp = parse_blueprint({"app": {"name": "Solo", "slug": "solo"},
                          "tenancy": {"personal_workspaces": False, "multiple_memberships": False}})
    conn = make_db()
    schema = build_schema(bp)
    for render in (schema_sql, rls_sql, triggers_sql):
        apply_sql(conn, render(schema, "solo"))
    with conn.cursor() as cur:
        user = create_user(cur, "solo@example.com")
    run_as(conn, "authenticated", user, "insert into public.organizations (name, slug) values ('A', 'org-a')")
    assert denied(conn, "authenticated", user,
                  "insert into public.organizations (name, slug) values ('B', 'org-b')") == "23505"
