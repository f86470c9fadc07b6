"""Each row of docs/access.md, checked on PostgreSQL against the access-lab blueprint.

Expectations here are written by hand from the table, not derived from the generator or the
oracle: this is the third reading that keeps the other two honest.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
import yaml

from blueprint_mcp.model import InvalidBlueprint, parse_blueprint
from blueprint_mcp.verify.pg import apply_sql, create_user
from blueprint_mcp.verify.run import blueprint_migrations
from pgutil import World, build_world, run_as

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "tests" / "fixtures" / "blueprints" / "access-lab.yaml"
DOC = ROOT / "docs" / "access.md"
ROLES = ["owner", "admin", "editor", "member", "viewer"]
MEMBERS = ROLES  # everyone in org1, in ranking order


def lab():
    return parse_blueprint(yaml.safe_load(LAB.read_text()), source=str(LAB))


@pytest.fixture(scope="module")
def lab_sql() -> list[str]:
    return blueprint_migrations(lab())


def _lab_world(lab_sql: list[str]):
    def build(conn) -> tuple[dict, str, str]:
        for sql in lab_sql:
            apply_sql(conn, sql)
        world = build_world(conn, ROLES)
        with conn.cursor() as cur:
            world.users["portal"] = create_user(cur, "portal@example.com", full_name="Portal")
            world.users["other_portal"] = create_user(cur, "other.portal@example.com")
        return dict(world.users), world.org1, world.org2
    return build


@pytest.fixture(params=["explicit", "legacy"])
def w(request, built_template, copied_db, lab_sql):
    """The lab applied and its world built once per mode (built_template); each test reads and writes a copy."""
    template, (users, org1, org2) = built_template("access-lab", request.param, _lab_world(lab_sql))
    return World(copied_db(template), dict(users), org1, org2)


def ins(w, who: str, table: str, org: str, **values) -> str:
    """Insert as `who` (through RLS) and return the id."""
    cols = ["organization_id", *values]
    sql = (f"insert into public.{table} ({', '.join(cols)}) values ({', '.join(['%s'] * len(cols))}) returning id")
    return w.as_(who, sql, (org, *values.values()))[0][0]


OWNED = {"notes", "docs", "reviews", "drafts", "tasks", "articles", "clients", "invoices", "listings", "ledgers",
         "journals", "posts", "bookings", "contacts", "contacts_private", "dossiers", "dossiers_private", "folders",
         "article_notes", "draft_comments", "parcels"}


def su_ins(w, table: str, org: str | None, **values) -> str:
    """Insert past RLS (as the service would); rows of owned tables are authored by the admin unless said."""
    if table in OWNED:
        values.setdefault("created_by", w.users["admin"])
    cols = (["organization_id"] if org else []) + list(values)
    params = ([org] if org else []) + list(values.values())
    sql = f"insert into public.{table} ({', '.join(cols)}) values ({', '.join(['%s'] * len(cols))}) returning id"
    return w.su(sql, params)[0][0]


def sees(w, who: str, table: str, row_id: str) -> bool:
    role, user = ("anon", None) if who == "anon" else ("authenticated", w.users[who])
    try:
        return run_as(w.conn, role, user, f"select count(*) from public.{table} where id = %s", (row_id,))[0][0] == 1
    except psycopg.errors.InsufficientPrivilege:
        return False  # no grant at all: anon on a table it may not read


def can_insert(w, who: str, table: str, org: str, **values) -> bool:
    try:
        ins(w, who, table, org, **values)
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


def changes(w, who: str, sql: str, row_id: str) -> bool:
    try:
        return w.count(who, sql, (row_id,)) == 1
    except psycopg.errors.InsufficientPrivilege:
        return False  # no grant for the command, or WITH CHECK refused the row after


def readers(w, table: str, row_id: str, among=(*MEMBERS, "owner2", "outsider", "portal", "anon")) -> list[str]:
    return [who for who in among if sees(w, who, table, row_id)]


def updaters(w, table: str, row_id: str, column: str = "body") -> list[str]:
    return [who for who in (*MEMBERS, "owner2", "outsider", "portal")
            if changes(w, who, f"update public.{table} set {column} = {column} where id = %s", row_id)]


def deleters(w, table: str, make) -> list[str]:
    out = []
    for who in (*MEMBERS, "owner2", "outsider", "portal"):
        row_id = make()
        if changes(w, who, f"delete from public.{table} where id = %s", row_id):
            out.append(who)
    return out


def inserters(w, table: str, **values) -> list[str]:
    return [who for who in (*MEMBERS, "owner2", "outsider", "portal") if can_insert(w, who, table, w.org1, **values)]


def test_every_row_of_the_table_has_a_test():
    ids = re.findall(r"^\| (A\d\d) \|", DOC.read_text(), re.M)
    tested = {m.group(1).upper() for name in globals() if (m := re.match(r"test_(a\d\d)_", name))}
    assert ids and sorted(ids) == sorted(set(ids)) == sorted(tested)


def test_the_lab_covers_a_row_per_entity_comment():
    assert re.findall(r"# (A\d\d)", LAB.read_text())


def test_a01_defaults_follow_read_and_write(w):
    row = ins(w, "member", "notes", w.org1, body="x")
    assert readers(w, "notes", row) == MEMBERS
    assert updaters(w, "notes", row) == ["owner", "admin", "editor", "member"]
    assert inserters(w, "notes", body="y") == ["owner", "admin", "editor", "member"]
    assert deleters(w, "notes", lambda: su_ins(w, "notes", w.org1, body="d")) == ["owner", "admin", "editor", "member"]


def test_a02_a_role_name_admits_that_role_and_above(w):
    row = su_ins(w, "docs", w.org1, body="x")
    assert updaters(w, "docs", row) == ["owner", "admin"]


def test_a03_min_role_grant_admits_that_role_and_above(w):
    assert deleters(w, "docs", lambda: su_ins(w, "docs", w.org1, body="d")) == ["owner", "admin"]


def test_a04_exact_roles_leave_out_the_roles_ranked_above(w):
    row = su_ins(w, "reviews", w.org1, body="x")
    assert readers(w, "reviews", row) == ["editor", "viewer"]
    assert inserters(w, "reviews", body="y") == ["editor"]
    assert deleters(w, "reviews", lambda: su_ins(w, "reviews", w.org1, body="d")) == ["editor"]


def test_a05_custom_capability_admits_exactly_its_holders(w):
    row = su_ins(w, "reviews", w.org1, body="x")
    # review is held by editor and viewer only: the owner and admin ranked above them do not get it.
    assert updaters(w, "reviews", row) == ["editor", "viewer"]


def test_a06_own_rows_only_for_select_and_update(w):
    mine = ins(w, "member", "drafts", w.org1, body="mine")
    assert readers(w, "drafts", mine) == ["member"]
    assert updaters(w, "drafts", mine) == ["member"]
    # delete is granted to every writer, but nobody deletes a row they cannot select, not even
    # with a statement that names no column (PostgreSQL checks the select policy only with a WHERE).
    assert [who for who in MEMBERS if w.count(who, "delete from public.drafts") > 0] == ["member"]


def test_a07_assigned_rows_reach_the_assignee(w):
    row = su_ins(w, "tasks", w.org1, title="t", assignee_id=w.users["member"])
    assert readers(w, "tasks", row) == ["owner", "admin", "member"]
    assert updaters(w, "tasks", row, "title") == ["owner", "admin", "member"]
    # The assignee cannot hand the task to someone else: the row after the update must still name them.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        w.as_("member", "update public.tasks set assignee_id = %s where id = %s", (w.users["editor"], row))


def test_a08_where_rows_match_before_and_after(w):
    draft = su_ins(w, "articles", w.org1, title="d", status="draft")
    final = su_ins(w, "articles", w.org1, title="f", status="final")
    assert updaters(w, "articles", draft, "title") == ["owner", "admin", "editor"]
    assert updaters(w, "articles", final, "title") == []
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        w.as_("editor", "update public.articles set status = 'final' where id = %s", (draft,))


def test_a09_linked_user_reads_their_own_record_without_membership(w):
    row = su_ins(w, "clients", w.org1, name="c", user_id=w.users["portal"])
    other = su_ins(w, "clients", w.org1, name="o", user_id=w.users["other_portal"])
    assert readers(w, "clients", row) == ["owner", "admin", "editor", "member", "portal"]
    assert "portal" not in readers(w, "clients", other)
    assert updaters(w, "clients", row, "name") == ["owner", "admin", "editor", "member"]


def test_a10_linked_chain_reaches_the_user_at_its_end(w):
    client = su_ins(w, "clients", w.org1, name="c", user_id=w.users["portal"])
    other = su_ins(w, "clients", w.org1, name="o", user_id=w.users["other_portal"])
    invoice = su_ins(w, "invoices", w.org1, client_id=client, amount_cents=100)
    foreign = su_ins(w, "invoices", w.org1, client_id=other, amount_cents=100)
    assert readers(w, "invoices", invoice) == ["owner", "admin", "portal"]
    assert readers(w, "invoices", foreign) == ["owner", "admin"]


def test_a11_public_rows_are_read_by_anyone_including_anon(w):
    published = su_ins(w, "articles", w.org1, title="p", published=True)
    hidden = su_ins(w, "articles", w.org1, title="h", published=False)
    assert readers(w, "articles", published) == [*MEMBERS, "owner2", "outsider", "portal", "anon"]
    assert readers(w, "articles", hidden) == ["owner", "admin", "editor", "member"]
    assert w.denied("outsider", "insert into public.articles (organization_id, title) values (%s, 'x')",
                    (w.org1,)) == "42501"


def test_a12_signed_in_rows_are_read_by_every_signed_in_user_only(w):
    active = su_ins(w, "listings", w.org1, title="a", active=True)
    inactive = su_ins(w, "listings", w.org1, title="i", active=False)
    assert readers(w, "listings", active) == [*MEMBERS, "owner2", "outsider", "portal"]
    assert readers(w, "listings", inactive) == ["owner", "admin", "editor", "member"]


def test_a13_several_grants_combine_by_or(w):
    row = su_ins(w, "ledgers", w.org1, body="x")
    assert readers(w, "ledgers", row) == ["owner", "viewer"]


def test_a14_an_empty_list_leaves_the_command_to_the_service_role(w):
    row = su_ins(w, "ledgers", w.org1, body="x")
    assert inserters(w, "ledgers", body="y") == []
    assert updaters(w, "ledgers", row) == []
    assert deleters(w, "ledgers", lambda: su_ins(w, "ledgers", w.org1, body="d")) == []


def test_a15_user_scope_limits_every_command_to_the_author(w):
    row = ins(w, "editor", "journals", w.org1, body="x")
    assert readers(w, "journals", row) == ["editor"]
    assert updaters(w, "journals", row) == ["editor"]


def test_a16_service_scope_is_read_by_members_and_written_by_nobody(w):
    row = su_ins(w, "metrics", w.org1, value=1)
    assert readers(w, "metrics", row) == MEMBERS
    assert inserters(w, "metrics", value=2) == []
    assert updaters(w, "metrics", row, "value") == []


def test_a17_global_scope_is_read_by_signed_in_users_and_public_adds_anon(w):
    country = su_ins(w, "countries", None, name="x")
    price = su_ins(w, "prices", None, label="x")
    everyone = [*MEMBERS, "owner2", "outsider", "portal"]
    assert readers(w, "countries", country) == everyone
    assert readers(w, "prices", price) == [*everyone, "anon"]
    assert updaters(w, "countries", country, "name") == []


def test_a18_own_rows_only_lets_members_edit_their_rows_and_managers_any(w):
    mine = ins(w, "member", "posts", w.org1, body="m")
    theirs = ins(w, "editor", "posts", w.org1, body="e")
    assert updaters(w, "posts", mine) == ["owner", "admin", "member"]
    assert updaters(w, "posts", theirs) == ["owner", "admin", "editor"]


def test_a19_member_references_name_members_of_the_row_organisation_with_the_roles(w):
    # Not a member of org1 (the role trigger speaks first; the composite FK would refuse it too).
    assert w.denied("admin", "insert into public.tasks (organization_id, title, assignee_id) values (%s, 't', %s)",
                    (w.org1, w.users["owner2"])) == "23503"
    w.su("alter table public.tasks disable trigger user")
    assert w.denied("admin", "insert into public.tasks (organization_id, title, assignee_id) values (%s, 't', %s)",
                    (w.org1, w.users["owner2"])) == "23503"
    w.su("alter table public.tasks enable trigger user")
    assert w.denied("admin", "insert into public.tasks (organization_id, title, assignee_id) values (%s, 't', %s)",
                    (w.org1, w.users["viewer"])) == "23503"  # a member, but not editor or member
    row = ins(w, "admin", "tasks", w.org1, title="t", assignee_id=w.users["editor"])
    w.su("delete from public.organization_members where organization_id = %s and user_id = %s",
         (w.org1, w.users["editor"]))
    assert w.su("select assignee_id from public.tasks where id = %s", (row,)) == [(None,)]


def test_a20_checks_compare_two_columns(w):
    assert w.denied("member", "insert into public.bookings (organization_id, room, starts_at, ends_at) "
                              "values (%s, 'r', '2026-01-01 10:00Z', '2026-01-01 09:00Z')", (w.org1,)) == "23514"


def test_a21_exclusions_refuse_overlapping_ranges_per_key(w):
    book = "insert into public.bookings (organization_id, room, starts_at, ends_at) values (%s, %s, %s, %s)"
    w.as_("member", book + " returning id", (w.org1, "r1", "2026-01-01 09:00Z", "2026-01-01 10:00Z"))
    assert w.denied("member", book, (w.org1, "r1", "2026-01-01 09:30Z", "2026-01-01 10:30Z")) == "23P01"
    w.as_("member", book + " returning id", (w.org1, "r1", "2026-01-01 10:00Z", "2026-01-01 11:00Z"))  # [start, end)
    w.as_("member", book + " returning id", (w.org1, "r2", "2026-01-01 09:30Z", "2026-01-01 10:30Z"))
    w.as_("owner2", book + " returning id", (w.org2, "r1", "2026-01-01 09:30Z", "2026-01-01 10:30Z"))


def test_a21_an_archived_booking_frees_its_range_and_is_restored_only_into_a_free_one(w):
    """Red team 16 F2: the exclusion counted archived rows, so a cancelled (archived) booking kept its slot and no
    client could free it. It holds live rows only; restoring into a slot taken since is refused (23P01)."""
    book = "insert into public.bookings (organization_id, room, starts_at, ends_at) values (%s, %s, %s, %s)"
    first = w.as_("member", book + " returning id", (w.org1, "r1", "2026-03-01 09:00Z", "2026-03-01 10:00Z"))[0][0]
    assert w.count("member", "delete from public.bookings where id = %s", (first,)) == 0  # archived, not deleted
    assert w.su("select archived_at is not null from public.bookings where id = %s", (first,)) == [(True,)]
    w.as_("member", book + " returning id", (w.org1, "r1", "2026-03-01 09:30Z", "2026-03-01 10:30Z"))
    assert w.denied("admin", "select public.restore_booking(%s)", (first,)) == "23P01"
    # Red team 17: the definer's refusal showed the other row's keys and range; a client's own insert shows none.
    with pytest.raises(psycopg.Error) as info:
        run_as(w.conn, "authenticated", w.users["admin"], "select public.restore_booking(%s)", (first,))
    assert (info.value.diag.message_primary, info.value.diag.message_detail) == (
        "this bookings row overlaps a live row's range (an exclusion): it stays archived", None)
    assert w.su("select archived_at is not null from public.bookings where id = %s", (first,)) == [(True,)]


def test_a26_requires_fills_or_empties_fields_by_kind_of_row(w):
    book = ("insert into public.bookings (organization_id, room, starts_at, ends_at, kind, agenda, dial_in) "
            "values (%s, %s, %s, %s, %s, %s, %s) returning id")
    slots = iter(f"2026-02-{d:02d}" for d in range(1, 28))

    def try_(kind, agenda, dial_in):
        day = next(slots)
        params = (w.org1, "r9", f"{day} 09:00Z", f"{day} 10:00Z", kind, agenda, dial_in)
        try:
            w.as_("member", book, params)
            return "ok"
        except psycopg.Error as e:
            return e.sqlstate

    assert try_("hold", None, None) == "ok"
    assert try_("hold", "plan", None) == "23514"        # a hold carries no agenda
    assert try_("hold", None, "+1 555") == "23514"      # nor a dial-in
    assert try_("meeting", "plan", None) == "ok"
    assert try_("meeting", None, None) == "23514"       # a meeting needs its agenda
    assert try_("meeting", "plan", "+1 555") == "ok"    # a dial-in is neither asked nor refused
    assert try_("call", "plan", "+1 555") == "ok"
    assert try_("call", "plan", None) == "23514"        # a call needs both
    assert try_("call", None, "+1 555") == "23514"
    # Updates are held to the rule for the row after: a hold turned meeting must gain its agenda.
    hold = w.as_("member", book, (w.org1, "r9", "2026-03-01 09:00Z", "2026-03-01 10:00Z", "hold", None, None))[0][0]
    assert w.denied("member", "update public.bookings set kind = 'meeting' where id = %s", (hold,)) == "23514"
    assert w.count("member", "update public.bookings set kind = 'meeting', agenda = 'plan' where id = %s",
                   (hold,)) == 1


def test_a22_bucket_objects_follow_the_organisation_folder_and_the_grants(w):
    def put(who: str, bucket: str, org: str, name: str) -> bool:
        try:
            w.as_(who, "insert into storage.objects (bucket_id, name, owner_id) values (%s, %s, %s) returning id",
                  (bucket, f"{org}/{name}", w.users[who]))
            return True
        except psycopg.errors.InsufficientPrivilege:
            return False

    assert [who for who in MEMBERS if put(who, "files", w.org1, f"{who}.png")] == ["editor", "member"]
    assert not put("member", "files", w.org2, "other-org.png")
    obj = w.su("select id from storage.objects where name = %s", (f"{w.org1}/member.png",))[0][0]
    seen = [who for who in (*MEMBERS, "owner2", "outsider")
            if w.as_(who, "select count(*) from storage.objects where id = %s", (obj,))[0][0] == 1]
    assert seen == MEMBERS
    deleted = []
    for who in (*MEMBERS, "owner2"):
        oid = w.su("insert into storage.objects (bucket_id, name, owner_id) values ('files', %s, %s) returning id",
                   (f"{w.org1}/{who}-d.png", w.users["member"]))[0][0]
        if w.count(who, "delete from storage.objects where id = %s", (oid,)) == 1:
            deleted.append(who)
    assert deleted == ["owner", "admin", "member"]  # managers any, the member their own upload
    logo = w.su("insert into storage.objects (bucket_id, name) values ('logos', %s) returning id",
                (f"{w.org1}/logo.png",))[0][0]
    assert run_as(w.conn, "anon", None, "select count(*) from storage.objects where id = %s", (logo,))[0][0] == 1
    assert run_as(w.conn, "anon", None, "select count(*) from storage.objects where id = %s", (obj,))[0][0] == 0


def test_a23_pii_fields_live_apart_and_only_their_readers_read_them(w):
    # The author (member) and the linked portal user read a contact's phone; other members read the contact.
    contact = ins(w, "member", "contacts", w.org1, label="c", user_id=w.users["portal"])
    phone = ins(w, "member", "contacts_private", w.org1, contact_id=contact, phone="+1 555")
    assert w.su("select column_name from information_schema.columns where table_name = 'contacts' "
                "and column_name = 'phone'") == []
    assert readers(w, "contacts", contact) == [*MEMBERS, "portal"]
    assert readers(w, "contacts_private", phone) == ["member", "portal"]
    assert updaters(w, "contacts_private", phone, "phone") == ["member"]  # portal users read, members write
    # pii_read by capability: exactly the roles holding review (editor, viewer), whoever wrote it.
    dossier = ins(w, "member", "dossiers", w.org1, title="d")
    # The member may write it (a blind write: without RETURNING, which would need to read it back).
    assert w.count("member", "insert into public.dossiers_private (organization_id, dossier_id, body) "
                             "values (%s, %s, 'secret')", (w.org1, dossier)) == 1
    body = w.su("select id from public.dossiers_private where dossier_id = %s", (dossier,))[0][0]
    assert readers(w, "dossiers", dossier) == MEMBERS
    assert readers(w, "dossiers_private", body) == ["editor", "viewer"]
    # One private row per row, deleted with it.
    assert w.denied("member", "insert into public.contacts_private (organization_id, contact_id, phone) "
                              "values (%s, %s, 'again')", (w.org1, contact)) == "23505"
    w.su("delete from public.contacts where id = %s", (contact,))
    assert w.su("select count(*) from public.contacts_private where id = %s", (phone,)) == [(0,)]


def test_a_where_admitting_every_row_narrows_nothing_beside_visible_either():
    """Red team 22 F3: the every-value where (red team 21) was read only on grants without visible, and the visible
    refusals only on grants (and parents' grants) without a where: `shared in [true, false]` beside visible over a
    global parent, or a parent whose public grant lists every value, gave every signed-in user every
    organisation's rows."""
    def refusal(parent: dict, grant: dict) -> str:
        data = {"app": {"name": "V", "slug": "v"}, "tenancy": {"personal_workspaces": False}, "entities": [
            parent, {"name": "documents", "fields": [
                {"name": "parent_id", "type": "reference", "references": "parents"},
                {"name": "shared", "type": "boolean", "nullable": False, "default": False}],
                "access": {"select": [{"min_role": "viewer"}, grant]}}]}
        with pytest.raises(InvalidBlueprint) as caught:
            parse_blueprint(data)
        return str(caught.value)

    every = {"column": "shared", "in": [True, False]}
    glob = {"name": "parents", "scope": "global", "fields": [{"name": "label", "type": "text"}]}
    assert "every signed-in user reads every parents row, so visible narrows nothing" in refusal(
        glob, {"signed_in": True, "where": every, "visible": "parent_id"})
    team = {"name": "parents", "fields": [{"name": "listed", "type": "boolean", "nullable": False}],
            "access": {"select": [{"min_role": "viewer"}, {"public": True,
                                                           "where": {"column": "listed", "in": [True, False]}}]}}
    assert "every signed-in user reads every parents row, so visible narrows nothing" in refusal(
        team, {"signed_in": True, "visible": "parent_id"})
    # Red team 23: the values split across grants (a parent's two public grants), and a nullable column (its
    # default fills every row a client writes)
    split = {**team, "access": {"select": [{"min_role": "viewer"},
                                           {"public": True, "where": {"column": "listed", "equals": True}},
                                           {"public": True, "where": {"column": "listed", "equals": False}}]}}
    assert "visible narrows nothing" in refusal(split, {"signed_in": True, "visible": "parent_id"})
    with pytest.raises(InvalidBlueprint, match="lists every value it can hold"):
        parse_blueprint({"app": {"name": "V", "slug": "v"}, "tenancy": {"personal_workspaces": False}, "entities": [
            {"name": "notes", "fields": [{"name": "shared", "type": "boolean", "default": False}],
             "access": {"select": [{"min_role": "viewer"},
                                   {"signed_in": True, "where": {"column": "shared", "in": [True, False]}}]}}]})



@pytest.mark.parametrize(("check", "grants", "refused"), [
    ({"min": 0, "max": 1}, [{"signed_in": True, "where": {"column": "shared", "in": [0, 1]}}], True),
    ({"min": 0, "max": 1}, [{"signed_in": True, "where": {"column": "shared", "equals": 0}},
                            {"public": True, "where": {"column": "shared", "equals": 1}}], True),
    ({"min": 0.5, "max": 1.5}, [{"signed_in": True, "where": {"column": "shared", "equals": 1}}], True),
    ({"min": 0, "max": 2}, [{"signed_in": True, "where": {"column": "shared", "in": [0, 1]}}], False),
    ({"min": 0}, [{"signed_in": True, "where": {"column": "shared", "in": [0, 1]}}], False),
])
def test_a_where_listing_every_integer_its_check_admits_narrows_nothing(check, grants, refused):
    """Red team 25 K1: the every-value where of red teams 21 to 23 came back through integers. `shared in [0, 1]`
    with `check: {min: 0, max: 1}` (or the two values split across grants, or the one integer of a narrow range)
    let every signed-in user read every organisation's rows; the refusal knew only booleans and enums. A range
    with an integer left out, or an open one, narrows."""
    data = {"app": {"name": "V", "slug": "v"}, "tenancy": {"personal_workspaces": False}, "entities": [
        {"name": "notes", "fields": [{"name": "shared", "type": "integer", "nullable": False, "default": 1,
                                      "check": check}],
         "access": {"select": [{"min_role": "viewer"}, *grants]}}]}
    if not refused:
        parse_blueprint(data)
        return
    with pytest.raises(InvalidBlueprint, match="lists every value it can hold"):
        parse_blueprint(data)



@pytest.mark.parametrize(("fields", "rules", "where", "refused"), [
    # red team 27 W1: `shared <= one` with `one` held to 1 leaves shared 0 and 1 (a NULL passes a comparison, so
    # only NOT NULL columns narrow)
    ([{"name": "one", "type": "integer", "nullable": False, "default": 1, "check": {"min": 1, "max": 1}}],
     {"checks": [{"column": "shared", "op": "le", "other": "one"}]}, [0, 1], True),
    ([{"name": "one", "type": "integer", "nullable": True, "check": {"min": 1, "max": 1}}],
     {"checks": [{"column": "shared", "op": "le", "other": "one"}]}, [0, 1], False),
    ([{"name": "two", "type": "integer", "nullable": False, "default": 2, "check": {"min": 2, "max": 2}}],
     {"checks": [{"column": "shared", "op": "lt", "other": "two"}]}, [0, 1], True),
    ([{"name": "two", "type": "integer", "nullable": False, "default": 2, "check": {"min": 2, "max": 2}}],
     {"checks": [{"column": "shared", "op": "ne", "other": "two"}]}, [0, 1], True),
    ([{"name": "top", "type": "integer", "nullable": False, "default": 2, "check": {"min": 1, "max": 2}}],
     {"checks": [{"column": "shared", "op": "le", "other": "top"}]}, [0, 1], False),
    # red team 28 M1: the same `ne`, written the other way round
    ([{"name": "two", "type": "integer", "nullable": False, "default": 2, "check": {"min": 2, "max": 2}}],
     {"checks": [{"column": "two", "op": "ne", "other": "shared"}]}, [0, 1], True),
])
def test_comparisons_narrow_the_integers_a_where_must_list(fields, rules, where, refused):
    """Red team 27 W1: the every-value refusal read only the field's own check; a comparison with another column
    held to one value narrowed `shared` to what the where listed, and every signed-in user read every organisation's
    rows (PostgreSQL enforces the comparison on every row)."""
    data = {"app": {"name": "V", "slug": "v"}, "tenancy": {"personal_workspaces": False}, "entities": [
        {"name": "notes", "fields": [{"name": "shared", "type": "integer", "nullable": False, "default": 0,
                                      "check": {"min": 0, "max": 2}}, *fields], **rules,
         "access": {"select": [{"min_role": "viewer"}, {"signed_in": True, "where": {"column": "shared",
                                                                                       "in": where}}]}}]}
    if not refused:
        parse_blueprint(data)
        return
    with pytest.raises(InvalidBlueprint, match="lists every value it can hold"):
        parse_blueprint(data)


@pytest.mark.parametrize(("op", "wheres", "refused"), [
    ("ne", [("a", 0), ("b", 0)], True),   # a <> b over 0..1: a row has a = 0 or b = 0
    ("lt", [("a", 0), ("b", 2)], True),   # a < b over 0..2: (0, 1), (0, 2), (1, 2)
    ("lt", [("a", 0), ("b", 1)], False),  # (1, 2) is left out
    ("le", [("a", 0), ("b", 2)], False),  # (1, 1) is left out
])
def test_wheres_on_two_compared_columns_may_cover_every_row_together(op, wheres, refused):
    """Red team 28 M2: the every-value refusal grouped where values one column at a time; two signed_in grants on
    two columns a comparison links together admitted every row a client can write."""
    top = 1 if op == "ne" else 2
    data = {"app": {"name": "V", "slug": "v"}, "tenancy": {"personal_workspaces": False}, "entities": [
        {"name": "notes", "fields": [
            {"name": c, "type": "integer", "nullable": False, "default": k, "check": {"min": 0, "max": top}}
            for k, c in enumerate("ab")],
         "checks": [{"column": "a", "op": op, "other": "b"}],
         "access": {"select": [{"min_role": "viewer"}, *({"signed_in": True, "where": {"column": c, "equals": v}}
                                                         for c, v in wheres)]}}]}
    if not refused:
        parse_blueprint(data)
        return
    with pytest.raises(InvalidBlueprint, match="together admit every row a client can write"):
        parse_blueprint(data)


@pytest.mark.parametrize(("transition", "refused"), [
    ({"column": "status", "initial": ["published"], "moves": {}}, True),
    ({"column": "status", "initial": ["draft"], "moves": {"draft": ["published"]}}, False),
    ({"column": "status", "moves": {"draft": ["published"]}}, False),  # no initial: a row may start as a draft
])
def test_a_state_every_client_row_starts_and_stays_in_narrows_nothing(transition, refused):
    """Red team 27 W2: `initial: [published]` with no move makes every row a client writes published for good, so
    `where: {status: published}` on a signed_in grant let every signed-in user read every organisation's rows."""
    data = {"app": {"name": "V", "slug": "v"}, "tenancy": {"personal_workspaces": False}, "entities": [
        {"name": "notes", "fields": [{"name": "status", "type": "enum", "values": ["draft", "published"],
                                      "nullable": False, "default": transition.get("initial", ["draft"])[0]}],
         "transitions": [transition],
         "access": {"select": [{"min_role": "viewer"}, {"signed_in": True, "where": {"column": "status",
                                                                                       "equals": "published"}}]}}]}
    if not refused:
        parse_blueprint(data)
        return
    with pytest.raises(InvalidBlueprint, match="lists every value it can hold"):
        parse_blueprint(data)


def _lab_with(entity: dict) -> dict:
    data = yaml.safe_load(LAB.read_text())
    data["entities"] = [{"name": "things", "fields": [
        {"name": "title", "type": "text"}, {"name": "done", "type": "boolean", "nullable": False, "default": False},
        {"name": "data", "type": "jsonb"},
        {"name": "starts_at", "type": "timestamptz"}, {"name": "ends_at", "type": "timestamptz"},
        {"name": "user_id", "type": "reference", "references": "auth.users"}]} | entity]
    data.pop("storage")
    return data


REFUSED = [
    # Random fuzz: `to authenticated using (true)` on a team table, what BP027 warns about.
    ({"access": {"select": [{"min_role": "member"}, {"signed_in": True}]}},
     "entities[0].access.select[1]: a signed_in grant with nothing to narrow it would let every signed-in user read "
     "every organisation's rows"),
    # Red team 21 F4: the same, spelled as a where listing every value of a NOT NULL boolean (or enum), in one
    # grant or across a signed_in and a public grant.
    ({"access": {"select": [{"min_role": "member"},
                            {"signed_in": True, "where": {"column": "done", "in": [True, False]}}]}},
     "entities[0].access.select[1].where: the signed_in and public grants' where on 'done' lists every value it can "
     "hold, so every signed-in user would read every organisation's rows"),
    ({"access": {"select": [{"min_role": "member"}, {"public": True, "where": {"column": "done", "equals": True}},
                            {"signed_in": True, "where": {"column": "done", "equals": False}}]}},
     "entities[0].access.select[2].where: the signed_in and public grants' where on 'done' lists every value"),
    # Evasion round 8 e16 (audit BP091): the writer keeps the rows they wrote after leaving the organisation.
    ({"access": {"select": [{"min_role": "member"}, {"linked": ["created_by"]}]}},
     "entities[0].access.select[1].linked[0]: 'created_by' holds the id of whoever wrote the row, and members "
     "write rows of things: the grant would let a member who leaves the organisation read every row they wrote"),
    ({"access": {"insert": [{"min_role": "member"}, {"public": True}]}},
     "entities[0].access.insert[1]: public grants are read-only"),
    ({"access": {"select": [{"min_role": "member"}, {"signed_in": True, "own": True}]}},
     "entities[0].access.select[1]: public and signed_in grants cannot be narrowed by own, assigned or under"),
    ({"access": {"select": [{"min_role": "member", "under": "title"}]}},
     "entities[0].access.select[0].under: 'title' is not a reference from things to another entity"),
    ({"access": {"select": [{"linked": ["user_id"]}]}},
     "entities[0].access.select: no grant names members"),
    ({"access": {"select": [{"min_role": "member", "where": {"column": "title", "equals": 3}}]}},
     "entities[0].access.select[0].where: 3 does not fit title (text)"),
    ({"access": {"select": [{"min_role": "member", "where": {"column": "data", "equals": "x"}}]}},
     "entities[0].access.select[0].where.column: 'data' is not a boolean, enum, text or integer field"),
    ({"access": {"select": [{"min_role": "member", "assigned": "title"}]}},
     "entities[0].access.select[0].assigned: 'title' is not a user column of things"),
    ({"access": {"select": [{"min_role": "member"}, {"linked": ["title"]}]}},
     "entities[0].access.select[1].linked[0]: 'title' is not a user column of things"),
    ({"access": {"select": [{"capability": "fly"}]}},
     "entities[0].access.select[0].capability: 'fly' is not a capability of this tenancy"),
    ({"access": {"select": [{"roles": ["ownr"]}]}},
     "entities[0].access.select[0].roles: 'ownr' is not a role of this tenancy"),
    ({"scope": "user", "access": {"select": [{"min_role": "member"}]}},
     "entities[0].access.select: scope 'user' already limits every command to the row's author"),
    ({"scope": "global", "access": {"select": [{"min_role": "member"}]}},
     "entities[0].access.select[0]: global entities belong to no organisation"),
    ({"checks": [{"column": "title", "op": "gt", "other": "done"}]},
     "entities[0].checks[0]: 'title' (text) and 'done' (boolean) cannot be ordered against each other"),
    ({"exclusions": [{"keys": ["data"], "range": ["starts_at", "ends_at"]}]},
     "entities[0].exclusions[0].keys: 'data' (jsonb) cannot be compared inside an exclusion"),
    ({"exclusions": [{"keys": [], "range": ["starts_at", "title"]}]},
     "entities[0].exclusions[0].range: ['starts_at', 'title'] must be two fields of one type"),
    ({"requires": [{"when": {"column": "done", "equals": True}, "filled": ["title"], "empty": ["title"]}]},
     "entities[0].requires[0].empty: 'title' is named twice"),
    ({"fields": [{"name": "kind", "type": "text"}, {"name": "note", "type": "text"},
                 {"name": "urgent", "type": "boolean"}],
      "requires": [{"when": {"column": "kind", "equals": "a"}, "filled": ["note"]},
                   {"when": {"column": "urgent", "equals": True}, "empty": ["note"]}]},
     "entities[0].requires[1]: asks the opposite of requires[0] for ['note']: a row where kind and urgent both match"),
    ({"fields": [{"name": "kind", "type": "text"}, {"name": "note", "type": "text"}],
      "requires": [{"when": {"column": "kind", "in": ["a", "b"]}, "filled": ["note"]},
                   {"when": {"column": "kind", "equals": "b"}, "empty": ["note"]}]},
     "entities[0].requires[1]: asks the opposite of requires[0] for ['note']: a row where kind is one of ['b']"),
    ({"requires": [{"when": {"column": "done", "equals": True}}]},
     "entities[0].requires[0]: names no field to fill or leave empty"),
    ({"requires": [{"when": {"column": "done", "equals": True}, "empty": ["done"]}]},
     "entities[0].requires[0].empty: 'done' is the condition's own column"),
    ({"requires": [{"when": {"column": "title", "equals": "x"}, "filled": ["done"]}]},
     "entities[0].requires[0].filled: 'done' is never empty (nullable: false): the rule would always hold"),
    ({"requires": [{"when": {"column": "done", "equals": "yes"}, "filled": ["title"]}]},
     "entities[0].requires[0].when: 'yes' does not fit done (boolean)"),
    ({"requires": [{"when": {"column": "data", "equals": "x"}, "filled": ["title"]}]},
     "entities[0].requires[0].when.column: 'data' is not a boolean, enum, text or integer field"),
    ({"requires": [{"when": {"column": "done", "equals": True}, "filled": ["titel"]}]},
     "entities[0].requires[0].filled: 'titel' is not a field of things"),
    ({"fields": [{"name": "kind", "type": "text"}, {"name": "phone", "type": "text", "pii": True}],
      "requires": [{"when": {"column": "kind", "equals": "call"}, "filled": ["phone"]}]},
     "entities[0].requires[0]: uses pii fields ['phone'] (kept in things_private)"),
    ({"fields": [{"name": "kind", "type": "text"}, {"name": "phone", "type": "text", "pii": True},
                 {"name": "rating", "type": "integer"}],
      "requires": [{"when": {"column": "kind", "equals": "call"}, "filled": ["phone"]},
                   {"when": {"column": "kind", "equals": "call"}, "filled": ["ratin"]}]},
     "entities[0].requires[1].filled: 'ratin' is not a field of things"),
    ({"fields": [{"name": "kind", "type": "text"}, {"name": "reviewer", "type": "reference", "references": "auth.users"}],
      "requires": [{"when": {"column": "kind", "equals": "a"}, "filled": ["reviewer"]}]},
     "entities[0].requires[0].filled: 'reviewer' is emptied when the row it references is deleted"),
    ({"fields": [{"name": "secret", "type": "text", "pii": True},
                 {"name": "handler_id", "type": "reference", "references": "organization_members"}],
      "pii_read": [{"min_role": "member", "assigned": "handler_id"}]},
     "entities[0].pii_read[0]: personal data is read by people, not by row conditions"),
    ({"fields": [{"name": "user_id", "type": "reference", "references": "auth.users"},
                 {"name": "phone", "type": "text", "pii": True}], "pii_read": [{"linked": ["user_id"]}]},
     "entities[0].pii_read: no grant names members"),
    ({"owner_column": None, "fields": [{"name": "user_id", "type": "reference", "references": "auth.users"},
                                       {"name": "phone", "type": "text", "pii": True}],
      "access": {"select": [{"min_role": "admin"}, {"linked": ["user_id"]}]}},
     "entities[0]: things's personal data would be read by linked users only"),
    # A28 transitions: a non-null enum of the entity, values it holds, a default a client may start with.
    ({"transitions": [{"column": "title", "moves": {}}]},
     "entities[0].transitions[0].column: 'title' is not an enum field of things"),
    ({"fields": [{"name": "stage", "type": "enum", "values": ["a", "b"]}],
      "transitions": [{"column": "stage", "moves": {"a": ["b"]}}]},
     "entities[0].transitions[0].column: 'stage' may be empty: a row without a state has no moves"),
    ({"fields": [{"name": "stage", "type": "enum", "values": ["a", "b"], "nullable": False, "default": "a"}],
      "transitions": [{"column": "stage", "moves": {"a": ["c"]}}]},
     "entities[0].transitions[0].moves.a: 'c' is not a value of things.stage"),
    ({"fields": [{"name": "stage", "type": "enum", "values": ["a", "b"], "nullable": False, "default": "a"}],
      "transitions": [{"column": "stage", "moves": {"a": ["a", "b"]}}]},
     "entities[0].transitions[0].moves.a: 'a' moves to itself"),
    ({"fields": [{"name": "stage", "type": "enum", "values": ["a", "b"], "nullable": False, "default": "a"}],
      "transitions": [{"column": "stage", "initial": ["b"], "moves": {"a": ["b"]}}]},
     "entities[0].transitions[0].initial: the default 'a' is not among the values a client may insert with"),
    ({"fields": [{"name": "stage", "type": "enum", "values": ["a", "b"], "nullable": False, "default": "a"}],
      "transitions": [{"column": "stage", "moves": {"a": ["b"]}}, {"column": "stage", "moves": {"b": ["a"]}}]},
     "entities[0].transitions[1].column: 'stage' has its moves listed twice"),
    ({"scope": "service", "fields": [{"name": "stage", "type": "enum", "values": ["a", "b"], "nullable": False}],
      "transitions": [{"column": "stage", "moves": {"a": ["b"]}}]},
     "entities[0].transitions[0]: scope 'service' is written by the service role only"),
    ({"fields": [{"name": "stage", "type": "enum", "values": ["a", "b"], "nullable": False, "pii": True}],
      "transitions": [{"column": "stage", "moves": {"a": ["b"]}}]},
     "entities[0].transitions[0].column: 'stage' is personal data (pii: true), kept in things_private"),
    # A stranger named in a user column that restricts deletion could never delete their account (L04).
    ({"fields": [{"name": "user_id", "type": "reference", "references": "auth.users", "nullable": False}]},
     "entities[0].fields[0]: 'user_id' of things would keep the account it names from being deleted"),
    ({"fields": [{"name": "user_id", "type": "reference", "references": "auth.users", "on_delete": "restrict"}]},
     "entities[0].fields[0]: 'user_id' of things would keep the account it names from being deleted"),
]


@pytest.mark.parametrize("entity,message", REFUSED, ids=[m.split(": ", 1)[1][:40] for _, m in REFUSED])
def test_combinations_without_a_safe_meaning_are_refused_naming_the_field(entity, message):
    from blueprint_mcp.model import InvalidBlueprint

    with pytest.raises(InvalidBlueprint) as info:
        parse_blueprint(_lab_with(entity))
    assert message in str(info.value)


def test_the_writer_linked_is_refused_where_people_outside_the_organisation_write_rows_too():
    """Red team 18 F1: customers filing requests through a linked insert grant beside members do not make the
    writer column safe to link: a member who filed one is its writer still after leaving. The customer reads their
    requests by the column their insert grant names."""
    from blueprint_mcp.model import InvalidBlueprint

    inserts = [{"min_role": "member"}, {"linked": ["user_id"]}]
    with pytest.raises(InvalidBlueprint) as info:
        parse_blueprint(_lab_with({"access": {"select": [{"min_role": "member"}, {"linked": ["created_by"]}],
                                              "insert": inserts}}))
    assert "entities[0].access.select[1].linked[0]: 'created_by' holds the id of whoever wrote the row, and members " \
           "write rows of things (linked users too): the grant would let a member who leaves the organisation read " \
           "every row they wrote" in str(info.value)
    parse_blueprint(_lab_with({"access": {"select": [{"min_role": "member"}, {"linked": ["user_id"]}],
                                          "insert": inserts}}))


WHOLE = "every signed-in user reads every categories row, so visible narrows nothing"
WHOSE = "categories belongs to no organisation: its grants narrow which of its rows count, never whose"


@pytest.mark.parametrize("parent_scope, parent_select, own_where, refused", [
    ("global", None, False, WHOLE),  # reference data: every signed-in user reads a global entity by default
    ("global", [{"signed_in": True}], False, WHOLE),
    ("global", [{"public": True}], False, WHOLE),
    # Red team 19: a global parent's where narrows which categories count, never which organisations.
    ("global", [{"signed_in": True, "where": {"column": "listed", "equals": True}}], False, WHOSE),
    ("global", [{"signed_in": True, "where": {"column": "listed", "equals": True}}], True, None),
    ("global", None, True, None),
    # A team parent narrowed by where narrows the child too (a child of a listed row of its own organisation).
    ("organization", [{"min_role": "member"}, {"signed_in": True, "where": {"column": "listed", "equals": True}}],
     False, None),
])
def test_a_signed_in_grant_visible_over_a_parent_everyone_reads_is_refused(parent_scope, parent_select, own_where,
                                                                          refused):
    """Red team 18 F2: `{signed_in: true, visible: category_id}` over reference data every signed-in user reads
    narrowed nothing but rows without a category: every organisation's documents to every signed-in user, the
    bare signed_in grant refused above. Red team 19: over a global parent narrowed by where, every organisation's
    documents in a listed category. The grant's own where narrows it; a team parent's where does too."""
    from blueprint_mcp.model import InvalidBlueprint

    grant = {"signed_in": True, "visible": "category_id"}
    if own_where:
        grant["where"] = {"column": "shared", "equals": True}
    data = _lab_with({"fields": [{"name": "category_id", "type": "reference", "references": "categories"},
                                 {"name": "title", "type": "text"}, {"name": "shared", "type": "boolean"}],
                      "access": {"select": [{"min_role": "member"}, grant]}})
    categories = {"name": "categories", "scope": parent_scope,
                  "fields": [{"name": "label", "type": "text"}, {"name": "listed", "type": "boolean"}]}
    if parent_select is not None:
        categories["access"] = {"select": parent_select}
    data["entities"].insert(0, categories)
    if not refused:
        parse_blueprint(data)
        return
    with pytest.raises(InvalidBlueprint) as info:
        parse_blueprint(data)
    assert f"entities[1].access.select[1].visible: {refused}: every signed-in user would read every organisation's " \
           "rows of things that name one" in str(info.value)


def test_a_public_bucket_grant_narrowed_by_owner_is_refused_with_a_fix_buckets_take():
    """Red team 16: the refusal said "use where", which buckets refuse in turn; it names what to drop."""
    from blueprint_mcp.model import InvalidBlueprint

    data = _lab_with({})
    data["storage"] = [{"name": "files", "access": {"select": [{"min_role": "member"}, {"public": True, "own": True}]}}]
    with pytest.raises(InvalidBlueprint) as info:
        parse_blueprint(data)
    assert "storage[0].access.select[1]: public and signed_in grants cannot be narrowed by own, assigned or under " \
           "(a reader who is not a member has no rows of their own, nor edits any); drop own: on an entity, where " \
           "narrows such a grant to matching rows; on a bucket, {public: true} serves every file and takes nothing " \
           "else" in str(info.value)


@pytest.mark.parametrize("owner", ["user column cascades", "member column cascades", "scope user"])
def test_a_required_reference_to_a_row_that_goes_with_an_account_is_refused(owner):
    """A receptionist could otherwise file an appointment under a patient row naming any stranger, and that row
    (gone with the stranger's account) would stop the account's deletion (docs/lifecycle.md L04)."""
    from blueprint_mcp.model import InvalidBlueprint

    target = {"user column cascades": "auth.users", "member column cascades": "organization_members"}.get(owner)
    data = _lab_with({"fields": [{"name": "user_id", "type": "reference", "references": target, "nullable": False,
                                  "on_delete": "cascade"}]} if target else {"scope": "user"})
    scope = "user" if owner == "scope user" else "organization"
    notes = {"name": "notes", "scope": scope,
             "fields": [{"name": "thing_id", "type": "reference", "references": "things", "nullable": False}]}
    with pytest.raises(InvalidBlueprint) as info:
        parse_blueprint({**data, "entities": data["entities"] + [notes]})
    assert "entities[1].fields[0]: 'thing_id' of notes requires a row of things, whose rows go with their user's " \
           "account" in str(info.value)
    for fix in ({"on_delete": "cascade"}, {"nullable": True}):
        parse_blueprint({**data, "entities": data["entities"] + [
            {**notes, "fields": [{**notes["fields"][0], **fix}]}]})


def test_a23_a_returned_blueprint_shows_pii_on_its_entity_and_round_trips_to_the_same_sql():
    from blueprint_mcp.tools import blueprint_sql

    bp = lab()
    assert [e.name for e in bp.entities if e.private_of] == ["contacts_private", "dossiers_private", "folders_private",
                                                            "claims_private"]
    written = bp.model_dump(mode="json", exclude_defaults=True)
    contacts = next(e for e in written["entities"] if e["name"] == "contacts")
    assert [f["name"] for f in contacts["fields"]] == ["label", "user_id", "phone"]
    assert not any(e.get("private_of") for e in written["entities"])
    again = parse_blueprint(written)
    assert blueprint_sql(again, "lab") == blueprint_sql(bp, "lab")


def test_a23_an_audited_entitys_personal_data_is_audited_with_it():
    from blueprint_mcp.tools import blueprint_sql

    data = yaml.safe_load(LAB.read_text())
    data.setdefault("privacy", {})["audit_tables"] = ["contacts"]
    bp = parse_blueprint(data)
    assert bp.privacy.audit_tables == ["contacts", "contacts_private"]
    sql = blueprint_sql(bp, "lab")
    assert "create trigger contacts_private_audit_trg\n  after insert or update or delete on public.contacts_private\n" \
           "  for each row execute function private.audit_row_change('organization_id', 'phone');" in \
        "".join(text for _, text in sql)
    # The returned blueprint lists what the user wrote, and comes back to the same SQL.
    written = bp.model_dump(mode="json", exclude_defaults=True)
    assert written["privacy"]["audit_tables"] == ["contacts"]
    assert blueprint_sql(parse_blueprint(written), "lab") == sql


def test_a25_under_admits_rows_of_parents_the_caller_may_update(w):
    # articles are read by every member and updated by editors and above while a draft or in review
    draft = su_ins(w, "articles", w.org1, title="d", status="draft")
    final = su_ins(w, "articles", w.org1, title="f", status="final")
    assert inserters(w, "article_notes", article_id=draft, body="x") == ["owner", "admin", "editor"]
    assert inserters(w, "article_notes", article_id=final, body="x") == []
    note = su_ins(w, "article_notes", w.org1, article_id=draft, body="n")
    assert readers(w, "article_notes", note) == ["owner", "admin", "editor"]
    assert readers(w, "article_notes", su_ins(w, "article_notes", w.org1, article_id=final, body="n")) == []
    make = lambda: su_ins(w, "article_notes", w.org1, article_id=draft, body="d")  # noqa: E731
    assert deleters(w, "article_notes", make) == ["owner", "admin", "editor"]


def test_a29_visible_admits_rows_whose_parent_the_reader_may_read(w):
    # articles: members read all, everyone the published ones (A11); quotes: members all, everyone the approved
    # quotes of articles they may read
    published = su_ins(w, "articles", w.org1, title="p", published=True)
    hidden = su_ins(w, "articles", w.org1, title="h", published=False)
    everyone, members = [*MEMBERS, "owner2", "outsider", "portal", "anon"], MEMBERS[:4]  # member and above
    assert readers(w, "article_quotes", su_ins(w, "article_quotes", w.org1, article_id=published, body="q",
                                               approved=True)) == everyone
    assert readers(w, "article_quotes", su_ins(w, "article_quotes", w.org1, article_id=hidden, body="q",
                                               approved=True)) == members
    assert readers(w, "article_quotes", su_ins(w, "article_quotes", w.org1, article_id=published, body="q",
                                               approved=False)) == members
    # the article retracted: its quotes go with it, for everyone but the members
    quote = su_ins(w, "article_quotes", w.org1, article_id=published, body="r", approved=True)
    w.su("update public.articles set published = false where id = %s", (published,))
    assert readers(w, "article_quotes", quote) == members


def test_a27_a_reference_a_client_writes_names_a_row_it_may_read(w):
    # drafts are read by their author alone (A06); comments follow the defaults (members write)
    mine = ins(w, "member", "drafts", w.org1, body="m")
    theirs = ins(w, "editor", "drafts", w.org1, body="e")
    def commenters(draft: str) -> list[str]:  # refused by RLS (42501) or by the reference check (23503)
        out = []
        for who in (*MEMBERS, "owner2", "outsider", "portal"):
            try:
                ins(w, who, "draft_comments", w.org1, draft_id=draft, body="x")
                out.append(who)
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ForeignKeyViolation):
                pass
        return out
    assert commenters(mine) == ["member"]
    assert commenters(theirs) == ["editor"]
    comment = ins(w, "member", "draft_comments", w.org1, draft_id=mine, body="c")
    move = "update public.draft_comments set draft_id = %s where id = %s"
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        w.as_("member", move, (theirs, comment))
    assert w.count("member", "update public.draft_comments set body = 'd' where id = %s", (comment,)) == 1
    # a made-up id fails as a hidden one does; the service role is not checked
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        ins(w, "member", "draft_comments", w.org1, draft_id="00000000-0000-4000-8000-000000000000", body="x")
    assert su_ins(w, "draft_comments", w.org1, draft_id=theirs, body="s")


def test_a28_a_state_starts_where_listed_and_moves_only_forward(w):
    # A client inserts a parcel only while packing; the service role may file one already sent.
    parcel = ins(w, "member", "parcels", w.org1, label="p")
    assert w.su("select stage from public.parcels where id = %s", (parcel,)) == [("packing",)]
    assert w.denied("member", "insert into public.parcels (organization_id, stage) values (%s, 'sent')",
                    (w.org1,)) == "42501"
    assert su_ins(w, "parcels", w.org1, stage="sent")
    stage = "update public.parcels set stage = %s where id = %s"
    assert w.count("member", stage, ("sent", parcel)) == 1
    # Found by an attack on the marketplace: set a shipped parcel back to packing, then delete it.
    assert w.denied("member", stage, ("packing", parcel)) == "42501"
    assert w.denied("owner", stage, ("packing", parcel)) == "42501"  # roles do not matter: the rule is the row's
    assert w.count("member", "delete from public.parcels where id = %s", (parcel,)) == 0
    assert w.count("member", stage, ("lost", parcel)) == 1
    assert w.denied("member", stage, ("delivered", parcel)) == "42501"  # lost is final (no moves listed)
    # Other columns of a row in a final state stay editable, an unchanged state passes.
    assert w.count("member", "update public.parcels set label = 'l', stage = stage where id = %s", (parcel,)) == 1
    # The service role and the database's own (definer) functions are not bound.
    run_as(w.conn, "service_role", None, stage, ("packing", parcel))
    assert w.count("member", stage, ("sent", parcel)) == 1
    w.su("""create function public.reset_parcel(parcel uuid) returns void language sql security definer
            set search_path = '' as $$ update public.parcels set stage = 'packing' where id = parcel $$""")
    w.as_("member", "select public.reset_parcel(%s)", (parcel,))
    assert w.su("select stage from public.parcels where id = %s", (parcel,)) == [("packing",)]
    # An outsider meets RLS first, whatever the state: the rule says nothing to them.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        w.as_("outsider", "insert into public.parcels (organization_id, stage) values (%s, 'sent')", (w.org1,))


def test_a24_soft_delete_archives_hides_and_restores_for_the_named_capability(w):
    folder = ins(w, "member", "folders", w.org1, title="f")
    notes = ins(w, "member", "folders_private", w.org1, folder_id=folder, notes="private")
    assert readers(w, "folders_private", notes) == ["member"]  # the author reads the notes of a live folder
    assert w.count("member", "delete from public.folders where id = %s", (folder,)) == 0  # archived, not deleted
    assert w.su("select archived_at is not null from public.folders where id = %s", (folder,)) == [(True,)]
    # Archived rows: only readers who may restore (review: editor, viewer) see them; nobody writes archived_at.
    assert readers(w, "folders", folder) == ["editor", "viewer"]
    # Found by an independent attack: the personal data of an archived row stayed with its readers, who could
    # also rewrite or delete it. It follows the row now: the author, no restorer, no longer reaches it.
    assert readers(w, "folders_private", notes) == []
    assert updaters(w, "folders_private", notes, "notes") == []
    assert w.denied("editor", "update public.folders set archived_at = null where id = %s", (folder,)) == "42501"
    assert w.denied("member", "select public.restore_folder(%s)", (folder,)) == "42501"
    w.as_("editor", "select public.restore_folder(%s)", (folder,))
    assert readers(w, "folders", folder) == MEMBERS
    # The service role deletes for good.
    run_as(w.conn, "service_role", None, "delete from public.folders where id = %s", (folder,))
    assert w.su("select count(*) from public.folders where id = %s", (folder,)) == [(0,)]


def test_a24_deleting_an_archived_row_again_keeps_when_it_was_archived(w):
    """Red team 29 R2: a restorer's second delete stamped archived_at anew, so it no longer said when the row was
    archived (what a retention rule reads); nor did the row get an audit entry for a change it did not have."""
    folder = ins(w, "member", "folders", w.org1, title="f")
    assert w.count("member", "delete from public.folders where id = %s", (folder,)) == 0
    w.su("update public.folders set archived_at = archived_at - interval '200 days' where id = %s", (folder,))
    archived = w.su("select archived_at, updated_at from public.folders where id = %s", (folder,))
    assert w.count("editor", "delete from public.folders where id = %s", (folder,)) == 0
    assert w.su("select archived_at, updated_at from public.folders where id = %s", (folder,)) == archived


@pytest.mark.parametrize("keys, message, fix", [
    (["created_by"], "'created_by' is the author column of things, which the blueprint does not declare: exclusions "
     "key on declared fields.", "declare a user field (e.g. {name: member_id, type: reference, references: "
     "organization_members}) and give it on insert with assigned: member_id"),
    # only keys the later checks accept are suggested: not the range's columns, nor a server_set field
    (["tittle"], "'tittle' is not a field of things.", "did you mean 'title'? The choices: title"),
])
def test_an_exclusion_key_refused_names_a_fix_the_model_accepts(keys, message, fix):
    """Red team 20 F3: the refusal suggested a range column and a server_set field, each refused in turn, and said
    nothing of why the author column could not key an exclusion."""
    from blueprint_mcp.model import InvalidBlueprint

    data = _lab_with({"fields": [{"name": "title", "type": "text"}, {"name": "starts_at", "type": "timestamptz"},
                                 {"name": "ends_at", "type": "timestamptz"},
                                 {"name": "stamped_at", "type": "timestamptz", "server_set": True,
                                  "default_expression": "now"}],
                      "exclusions": [{"keys": keys, "range": ["starts_at", "ends_at"]}]})
    with pytest.raises(InvalidBlueprint) as info:
        parse_blueprint(data)
    assert [(m, f) for p, m, f in info.value.problems if p == "entities[0].exclusions[0].keys"] == [(message, fix)]
