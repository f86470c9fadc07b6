"""A row holding server_set fields stays under the parent its values were stamped for (docs/lifecycle.md L13).

Red team 29 R1: clients could not write habit-tracker's `checked_at` or a sign-off's `signed_by`, but could move
the row to another parent: a month-old check-in onto a habit made today (a backdated streak), an admin's move of
Bob's sign-off onto another document. Such references are now set on insert only for clients (a client may clear
one; the service role moves rows), unless the field says `movable: true`.
"""

from __future__ import annotations

import copy

import psycopg
import pytest
import yaml

from blueprint_mcp.model import InvalidBlueprint, parse_blueprint
from blueprint_mcp.model.meaning import stamped_references
from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.sql.render import rls_sql, schema_sql, triggers_sql
from blueprint_mcp.templates import load_template
from blueprint_mcp.tools import verify_rls
from blueprint_mcp.verify.run import verify

from pgutil import build_world, migrate, run_as

MOVE_SIGN_OFF = "move a sign_offs row holding server-set values to another documents row"
MOVE_CHECK_IN = "move a habit_check_ins row holding server-set values to another habits row"

# Red team 29's bp/approvals.yaml: the signer and the time are the server's, the update grant is the admin's.
APPROVALS = {
    "version": 1,
    "app": {"name": "Approvals", "slug": "approvals", "description": "Documents and the sign-offs members give them."},
    "tenancy": {"personal_workspaces": False},
    "entities": [
        {"name": "documents", "description": "A document members sign off.",
         "fields": [{"name": "title", "type": "text", "nullable": False,
                     "check": {"min_length": 1, "max_length": 200}}]},
        {"name": "sign_offs", "description": "One member's sign-off of a document.",
         "fields": [
             {"name": "document_id", "type": "reference", "references": "documents", "nullable": False,
              "on_delete": "cascade"},
             {"name": "signed_by", "type": "reference", "references": "auth.users", "default_expression": "auth_uid",
              "server_set": True},
             {"name": "signed_at", "type": "timestamptz", "nullable": False, "default_expression": "now",
              "server_set": True},
             {"name": "comment", "type": "text", "check": {"max_length": 500}}],
         "access": {"select": [{"min_role": "viewer"}], "insert": [{"min_role": "member"}],
                    "update": [{"min_role": "admin"}], "delete": [{"min_role": "admin"}]}},
    ],
}


def tickets(movable: bool | None = None) -> dict:
    """Tickets stamped `opened_at` by the server, filed under a project they may leave (nullable)."""
    project = {"name": "project_id", "type": "reference", "references": "projects"}
    if movable is not None:
        project["movable"] = movable
    return {
        "app": {"name": "Tickets", "slug": "tickets"},
        "tenancy": {"personal_workspaces": False},
        "entities": [
            {"name": "projects", "fields": [{"name": "name", "type": "text", "nullable": False}]},
            {"name": "tickets", "fields": [
                project,
                {"name": "opened_at", "type": "timestamptz", "nullable": False, "default_expression": "now",
                 "server_set": True},
                {"name": "title", "type": "text"}]},
        ],
    }


def rejected(data: dict) -> list[tuple[str, str, str]]:
    with pytest.raises(InvalidBlueprint) as info:
        parse_blueprint(data)
    return list(info.value.problems)


def refusal(conn, role: str, user: str | None, sql: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        run_as(conn, role, user, sql)
    return info.value


# --- the model ----------------------------------------------------------------------------------------------

def test_the_references_of_an_entity_with_server_set_fields_are_stamped():
    assert stamped_references(load_template("habit-tracker")) == {"habit_check_ins": {"habit_id"}}
    assert stamped_references(parse_blueprint(APPROVALS)) == {"sign_offs": {"document_id"}}  # not signed_by
    assert stamped_references(parse_blueprint(tickets(movable=True))) == {}
    for name in ("b2b-saas", "cms", "e-commerce", "marketplace"):
        assert stamped_references(load_template(name)) == {}, name


def test_movable_on_a_field_that_is_no_reference_is_refused():
    data = tickets()
    data["entities"][1]["fields"][2]["movable"] = True  # title
    [(_, why, fix)] = rejected(data)
    assert "field 'title': movable only applies to a reference to another entity" in why
    assert fix.startswith("remove movable")


def test_movable_on_a_user_reference_is_refused():
    data = copy.deepcopy(APPROVALS)
    data["entities"][1]["fields"][1]["movable"] = True  # signed_by, a reference to auth.users
    [(_, why, _)] = rejected(data)
    assert "field 'signed_by': movable only applies to a reference to another entity" in why


def test_movable_on_a_server_set_reference_is_refused():
    data = tickets(movable=True)
    data["entities"][1]["fields"][0]["server_set"] = True
    [(_, why, fix)] = rejected(data)
    assert "field 'project_id': movable and server_set: no client writes a server_set field" in why
    assert fix == "remove movable, or server_set if clients choose it"


def test_movable_on_an_entity_without_server_set_fields_is_refused():
    data = tickets(movable=True)
    del data["entities"][1]["fields"][1]["server_set"]
    [(path, why, fix)] = rejected(data)
    assert path == "entities[1].fields[0].movable"
    assert why == ("'tickets.project_id' is movable, but tickets has no server_set field: clients already point its "
                   "references at other rows, so there is nothing to opt out of.")
    assert fix == "remove movable from project_id"


def test_movable_on_a_column_a_linked_grant_reads_is_refused():
    data = tickets(movable=True)
    data["entities"][0]["fields"].append({"name": "client_id", "type": "reference", "references": "auth.users"})
    data["entities"][1]["access"] = {"select": [{"min_role": "viewer"}, {"linked": ["project_id", "client_id"]}]}
    [(path, why, fix)] = rejected(data)
    assert path == "entities[1].fields[0].movable"
    assert "'tickets.project_id' is movable, but a linked grant reads it" in why
    assert fix.startswith("remove movable from project_id")


def test_the_schema_resource_describes_movable():
    from blueprint_mcp.model.entities import Field
    assert "on insert only" in Field.model_fields["server_set"].description
    assert "point it at another row" in Field.model_fields["movable"].description


# --- the generated backends ----------------------------------------------------------------------------------

def test_a_check_in_moves_to_another_habit_only_by_the_service_role(make_db):
    conn = make_db()
    migrate(conn, "habit-tracker")
    w = build_world(conn, ["owner", "admin", "member", "viewer"])
    old, new = (w.as_("member", "insert into public.habits (organization_id, name) values (%s, %s) returning id",
                      (w.org1, name))[0][0] for name in ("Run", "Quit smoking"))
    check_in = w.as_("member", "insert into public.habit_check_ins (organization_id, habit_id) values (%s, %s) "
                               "returning id", (w.org1, old))[0][0]
    w.su("update public.habit_check_ins set checked_at = now() - interval '30 days' where id = %s", (check_in,))
    move = f"update public.habit_check_ins set habit_id = '{new}' where id = '{check_in}'"
    for who in ("member", "owner"):  # the author backdating a streak; a coach moving a client's check-in
        error = refusal(conn, "authenticated", w.users[who], move)
        assert error.sqlstate == "42501"
        assert error.diag.message_primary == ("habit_check_ins.habit_id is set on insert only; a client may clear it, "
                                              "not point it elsewhere")
        assert "server-set fields were stamped for the row it names" in error.diag.message_hint
    assert w.su("select habit_id from public.habit_check_ins where id = %s", (check_in,)) == [(old,)]
    # An edit that leaves the habit alone still goes.
    assert w.count("member", f"update public.habit_check_ins set habit_id = habit_id where id = '{check_in}'") == 1
    assert run_as(conn, "service_role", None, move) == [("rowcount", 1)]
    assert w.su("select habit_id from public.habit_check_ins where id = %s", (check_in,)) == [(new,)]


def _approvals(conn):
    migrate(conn, parse_blueprint(APPROVALS))
    w = build_world(conn, ["owner", "admin", "member", "viewer"])
    lunch, layoffs = (w.as_("admin", "insert into public.documents (organization_id, title) values (%s, %s) "
                                     "returning id", (w.org1, title))[0][0] for title in ("Lunch menu", "Layoff plan"))
    sign_off = w.as_("member", "insert into public.sign_offs (organization_id, document_id) values (%s, %s) "
                               "returning id", (w.org1, lunch))[0][0]
    return w, lunch, layoffs, sign_off


def test_an_admin_cannot_move_a_sign_off_onto_another_document(make_db):
    conn = make_db()
    w, lunch, layoffs, sign_off = _approvals(conn)
    move = f"update public.sign_offs set document_id = '{layoffs}' where id = '{sign_off}'"
    for who in ("admin", "owner"):
        assert refusal(conn, "authenticated", w.users[who], move).sqlstate == "42501"
    assert w.count("admin", f"update public.sign_offs set comment = 'ok' where id = '{sign_off}'") == 1
    assert w.su("select document_id, signed_by::text from public.sign_offs where id = %s", (sign_off,)) == \
        [(lunch, w.users["member"])]
    assert run_as(conn, "service_role", None, move) == [("rowcount", 1)]
    assert w.su("select document_id from public.sign_offs where id = %s", (sign_off,)) == [(layoffs,)]


def test_a_client_clears_a_nullable_stamped_reference_but_does_not_repoint_it(make_db):
    conn = make_db()
    migrate(conn, parse_blueprint(tickets()))
    w = build_world(conn, ["owner", "admin", "member", "viewer"])
    a, b = (w.as_("member", "insert into public.projects (organization_id, name) values (%s, %s) returning id",
                  (w.org1, name))[0][0] for name in ("A", "B"))
    ticket = w.as_("member", "insert into public.tickets (organization_id, project_id) values (%s, %s) returning id",
                   (w.org1, a))[0][0]
    assert w.denied("member", f"update public.tickets set project_id = '{b}' where id = '{ticket}'") == "42501"
    assert w.count("member", f"update public.tickets set project_id = null where id = '{ticket}'") == 1
    # Set again after clearing is a move too (the row's opened_at was stamped under A).
    assert w.denied("member", f"update public.tickets set project_id = '{b}' where id = '{ticket}'") == "42501"
    assert w.su("select project_id from public.tickets where id = %s", (ticket,)) == [(None,)]


def test_a_movable_reference_moves(make_db):
    conn = make_db()
    bp = parse_blueprint(tickets(movable=True))
    assert "keep_stamped" not in triggers_sql(build_schema(bp), "t")
    migrate(conn, bp)
    w = build_world(conn, ["owner", "admin", "member", "viewer"])
    a, b = (w.as_("member", "insert into public.projects (organization_id, name) values (%s, %s) returning id",
                  (w.org1, name))[0][0] for name in ("A", "B"))
    ticket = w.as_("member", "insert into public.tickets (organization_id, project_id) values (%s, %s) returning id",
                   (w.org1, a))[0][0]
    assert w.count("member", f"update public.tickets set project_id = '{b}' where id = '{ticket}'") == 1


# --- verify ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def url(pg_cluster):
    pg_cluster.create_database("stamped_moves")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/stamped_moves"
    pg_cluster.drop_database("stamped_moves")


def _migrations(bp) -> list[str]:
    schema = build_schema(bp)
    return [schema_sql(schema, bp.app.slug), rls_sql(schema, bp.app.slug), triggers_sql(schema, bp.app.slug)]


def test_verify_passes_the_approvals_blueprint_and_tries_the_move(url):
    report = verify_rls(blueprint=APPROVALS, database_url=url, include_cases=True)
    assert report.ok, [(f.verdict, f.actor, f.attack or f.command, f.table) for f in report.failures]
    assert report.fixture_failures == [] and report.lints == []
    tried = {c.attack: (c.expected, c.actual) for c in report.cases if c.attack}
    assert tried[MOVE_SIGN_OFF] == ("denied", "denied")
    assert tried["the service role moves a sign_offs row to another documents row"] == ("allowed", "allowed")


@pytest.mark.parametrize(("template", "table", "scenario"), [
    (None, "sign_offs", MOVE_SIGN_OFF),
    ("habit-tracker", "habit_check_ins", MOVE_CHECK_IN),
])
def test_verify_fails_a_backend_without_the_trigger(url, template, table, scenario):
    bp = load_template(template) if template else parse_blueprint(APPROVALS)
    migrations = _migrations(bp) + [f"drop trigger {table}_keep_stamped_trg on public.{table};"]
    report = verify(source="reopened", migrations=migrations, blueprint=bp, database_url=url, attacks=(scenario,))
    assert [a.attack for a in report.attacks] == [scenario]
    assert [(f.verdict, f.attack) for f in report.failures] == [("LEAK", scenario)]


UNDER_STAMPED = yaml.safe_load("""
app: {name: Under, slug: under}
tenancy: {personal_workspaces: false, team_organizations: true, multiple_memberships: true}
entities:
  - name: projects
    fields:
      - {name: title, type: text}
      - {name: lead_id, type: reference, references: organization_members, nullable: true}
    access:
      select: viewer
      insert: admin
      update: [{min_role: admin}, {min_role: member, assigned: lead_id}]
      delete: admin
  - name: entries
    fields:
      - {name: project_id, type: reference, references: projects, nullable: false, on_delete: cascade}
      - {name: logged_at, type: timestamptz, nullable: false, default_expression: now, server_set: true}
      - {name: note, type: text}
    access:
      select: viewer
      insert: member
      update: member
      delete: [{min_role: admin}, {min_role: member, under: project_id}]
""")


def test_a_delete_under_a_stamped_parent_is_accepted_and_verifies(url):
    """A member may not move a stamped entry under a project they lead (L13), so a delete grant `under: project_id`
    holds: the model refused it as if they could (red team 10's case), as it accepts a linked column's."""
    report = verify_rls(blueprint=UNDER_STAMPED, database_url=url)
    assert report.ok, [(f.verdict, f.actor, f.attack or f.command, f.table) for f in report.failures]
    moved = dict(UNDER_STAMPED, entities=[UNDER_STAMPED["entities"][0], dict(UNDER_STAMPED["entities"][1], fields=[
        f | ({"movable": True} if f["name"] == "project_id" else {}) for f in UNDER_STAMPED["entities"][1]["fields"]])])
    assert [p for p, _, _ in rejected(moved)] == ["entities[1].access.delete[1].under"]


def test_generate_schema_names_the_stamped_references_and_the_way_out():
    # Session 30's fit check: an author met the run-time refusal without having asked for it; the design answer
    # says which references are set on insert only, and how to let clients move rows.
    from blueprint_mcp.tools import generate_schema

    answer = generate_schema(template="habit-tracker")
    stamped = [n for n in answer.result.notes if n.startswith("clients set")]
    assert stamped == ["clients set habit_check_ins.habit_id on insert only: the rows hold server_set fields, stamped "
                       "for the parent they name (docs/lifecycle.md L13); `movable: true` on a reference lets clients "
                       "move rows"]
    assert stamped[0] in answer.text
    assert not [n for n in generate_schema(template="habit-tracker", sections=["core"]).result.notes
                if n.startswith("clients set")]
    movable = copy.deepcopy(APPROVALS)
    for e in movable["entities"]:
        for f in e["fields"]:
            if f.get("type") == "reference" and f.get("references") == "documents":
                f["movable"] = True
    assert not [n for n in generate_schema(blueprint=movable).result.notes if n.startswith("clients set")]
    assert [n for n in generate_schema(blueprint=APPROVALS).result.notes if n.startswith("clients set")]
