"""Red team 32 (session 31): combinations of access forms that verify passed and the audit called clean.

F1: a reference that cascades put its rows in the hands of whoever could point it at a row they remove: a member
moved every task of a soft-deleted, admin-deleted entity under a project of their own and deleted it (or named
themselves and left, or deleted their account); the tasks were gone for good. The model refuses it now.

F2: the author of a row whose update grant has a `where` (a claim they edit as a draft) could give it personal data
after it left that state (an approved claim took a bank account): the side table's insert policy let its author
write it "once", whenever. Now an author an update grant admits by role gives it only as that updater."""

from __future__ import annotations

import copy

import pytest
import yaml

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.model import InvalidBlueprint, parse_blueprint
from blueprint_mcp.templates import load_blueprint_file
from blueprint_mcp.tools import blueprint_sql
from blueprint_mcp.verify.run import blueprint_migrations, verify

pytestmark = pytest.mark.postgres

LAB = "tests/fixtures/blueprints/access-lab.yaml"
ROLES = [{"name": "owner",
          "capabilities": ["read", "write", "manage_members", "manage_billing", "delete_organization"]},
         {"name": "admin", "capabilities": ["read", "write", "manage_members"]},
         {"name": "member", "capabilities": ["read", "write"]}]


def lab(*entities: dict) -> dict:
    return {"version": 1, "app": {"name": "Cascade Lab", "slug": "cascade-lab"},
            "tenancy": {"personal_workspaces": False, "roles": ROLES}, "entities": copy.deepcopy(list(entities)),
            "analytics": {"enabled": False}}


PROJECTS = {"name": "projects", "fields": [{"name": "name", "type": "text"}],
            "access": {"delete": [{"min_role": "admin"}, {"min_role": "member", "own": True}]}}


def tasks(parent: dict, **more) -> dict:
    return {"name": "tasks", "soft_delete": True, "fields": [parent, {"name": "title", "type": "text"}],
            "access": {"delete": "admin"}, **more}


def refused(data: dict) -> list[str]:
    with pytest.raises(InvalidBlueprint) as raised:
        parse_blueprint(data)
    return [f"{path}: {why}" for path, why, _ in raised.value.problems]


PROJECT = {"name": "project_id", "type": "reference", "references": "projects", "nullable": False,
           "on_delete": "cascade"}
MEMBER = {"name": "assignee_id", "type": "reference", "references": "organization_members", "nullable": False,
          "on_delete": "cascade"}
REVIEWER = {"name": "reviewer_id", "type": "reference", "references": "auth.users", "on_delete": "cascade"}
# The author's branch of claims_private's insert policy before the fix: no word of the claim's status.
ONCE = ("with check (((created_by = (select auth.uid()) and organization_id = any (array(select "
        "private.organization_ids_with_role('member')))) or organization_id = any (array(select "
        "private.organization_ids_with_role('admin')))) and exists (select 1 from public.claims p where p.id = "
        "claims_private.claim_id));")
AS_UPDATER = ("with check ((organization_id = any (array(select private.organization_ids_with_role('admin'))) and "
              "exists (select 1 from public.claims p where p.id = claims_private.claim_id)) or (exists (select 1 "
              "from public.claims where claims.id = claims_private.claim_id and (created_by = (select auth.uid()) "
              "and status = 'draft' and organization_id = any (array(select "
              "private.organization_ids_with_role('member')))))));")


@pytest.fixture(scope="module")
def db_url(pg_cluster):
    pg_cluster.create_database("redteam32")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/redteam32"
    pg_cluster.drop_database("redteam32")


def test_f2_the_author_gives_personal_data_only_while_they_may_edit_the_row(db_url):
    bp = load_blueprint_file(LAB)
    migrations = blueprint_migrations(bp)
    policies = [m for m in migrations if AS_UPDATER in m]
    assert len(policies) == 1
    # The old policy is a leak verify names: the member author writes the personal data of an approved claim.
    report = verify(source="F2", migrations=[m.replace(AS_UPDATER, ONCE) for m in migrations], blueprint=bp,
                    database_url=db_url)
    assert [(f.verdict, f.attack) for f in report.failures] == [
        ("LEAK", "insert claims_private under member's claims in org1")]


@pytest.mark.parametrize("data,path,how", [
    (lab(PROJECTS, tasks(PROJECT)), "entities[1].fields[0].on_delete",
     "point it at a projects row they may remove (one they may delete, or one under such a row)"),
    (lab(tasks(MEMBER)), "entities[0].fields[0].on_delete", "point it at a member who then leaves (themselves, a "
     "second account of theirs, a colleague) or whom they remove"),
    (lab(tasks(REVIEWER)), "entities[0].fields[0].on_delete", "point it at themselves, then delete their account"),
], ids=["parent", "member", "account"])
def test_f1_a_cascade_a_caller_may_point_at_a_row_they_remove_is_refused(data, path, how):
    column = data["entities"][-1]["fields"][0]["name"]
    assert refused(data) == [f"{path}: '{column}' cascades: member+ may update rows of tasks and {how}, which deletes "
                             "those rows for good, where a client's delete only archives them."]


def test_f1_the_fixes_it_names_are_accepted_and_what_stays_accepted():
    emptied = lab(PROJECTS, tasks({**PROJECT, "nullable": True, "on_delete": "set null"}))
    archived = lab({**PROJECTS, "soft_delete": True}, tasks(PROJECT))
    admins_only = lab({**PROJECTS, "access": {"delete": "admin"}}, tasks(PROJECT))  # they delete every project
    held = lab(PROJECTS, tasks(PROJECT, access={"delete": "admin", "update": "admin"}))
    held["entities"][0]["access"] = {"delete": "admin"}
    # Not soft-deleted, and whoever moves a task may delete it anyway: the cascade takes nothing more.
    deletable = lab(PROJECTS, {**tasks(PROJECT), "soft_delete": False, "access": {"delete": "member"}})
    updates = [{"min_role": "admin"}, {"min_role": "member", "assigned": "assignee_id"}]
    assigned = lab(tasks(MEMBER, access={"delete": "admin", "update": updates}))
    for data in (emptied, archived, admins_only, held, deletable):
        parse_blueprint(data)
    # An assignee moves nothing that is not theirs already; the admins who update every row still may (and leave):
    assert [p.split(":")[0] for p in refused(assigned)] == ["entities[0].fields[0].on_delete"]
    assert "admin+ may update rows of tasks" in refused(assigned)[0]


def test_f1_the_refusal_reads_the_rows_a_caller_reads_and_a_chain_of_cascades():
    # Members read only their own tasks: what they may move is theirs to delete already.
    own = lab(PROJECTS, {**tasks(PROJECT), "soft_delete": False,
                         "access": {"select": [{"min_role": "member", "own": True}, {"min_role": "admin"}],
                                    "delete": [{"min_role": "member", "own": True}, {"min_role": "admin"}]}})
    parse_blueprint(own)
    # Projects go with a folder a member deletes: a task moved under a project there goes with the folder.
    folders = {"name": "folders", "access": {"delete": [{"min_role": "admin"}, {"min_role": "member", "own": True}]}}
    chained = lab(folders, {"name": "projects", "soft_delete": True, "fields": [
        {"name": "folder_id", "type": "reference", "references": "folders", "nullable": False,
         "on_delete": "cascade"}], "access": {"delete": "admin"}}, tasks(PROJECT))
    assert [p.split(":")[0] for p in refused(chained)] == ["entities[1].fields[0].on_delete",
                                                          "entities[2].fields[0].on_delete"]


def test_f1_a_fixed_design_verifies(db_url):
    data = lab({**PROJECTS, "soft_delete": True}, tasks(PROJECT))
    report = verify(source="F1", migrations=blueprint_migrations(parse_blueprint(copy.deepcopy(data))),
                    blueprint=parse_blueprint(data), database_url=db_url)
    assert report.ok, [f.attack or f.command for f in report.failures]


def test_a_public_where_listing_every_value_is_refused_as_the_audit_reads_it():
    """Random fuzz (session 31): `{public: true, where: {column: values, in: [low, active]}}` over a NOT NULL enum of
    those two values is every row to everyone; the model refused the signed_in spelling only, and the audit reported
    the generated policy (BP079). Refused now, with the plain public grant as the fix, which the audit accepts."""
    data = lab({"name": "a_b", "fields": [{"name": "values", "type": "enum", "values": ["active", "low"],
                                            "nullable": False}],
                "access": {"insert": "admin", "select": [{"roles": ["member"], "own": True},
                                                         {"public": True, "where": {"column": "values",
                                                                                    "in": ["low", "active"]}}]}})
    assert refused(data) == ["entities[0].access.select[1].where: the public grants' where on 'values' lists every "
                             "value it can hold, so everyone, signed in or not, would read every organisation's rows."]
    data["entities"][0]["access"]["select"][1] = {"public": True}
    assert audit_sql(blueprint_sql(parse_blueprint(data), "lab")) == []
    data["entities"][0]["access"]["select"][1] = {"public": True, "where": {"column": "values", "equals": "low"}}
    assert audit_sql(blueprint_sql(parse_blueprint(data), "lab")) == []


# Red team 33 (the same session, on these fixes): F1 through linked grants, F2 through `under`, F3 on a personal-data
# side, F4 a fix naming the parent whose own parent still cascades, F5 a member column the takers cannot hold.
CLIENT = {"name": "client_id", "type": "reference", "references": "auth.users"}


def test_rt33_f1_a_linked_user_may_be_a_member_of_any_role():
    # (a) a member files a project naming themselves its client, moves every task under it and deletes it as that
    # client; (b) a task's linked client (a member too) moves it under a project of their own and deletes that.
    linkdel = lab({**PROJECTS, "fields": [{"name": "name", "type": "text"}, CLIENT],
                   "access": {"delete": [{"min_role": "admin"}, {"linked": ["client_id"]}]}}, tasks(PROJECT))
    assert [p.split(":")[0] for p in refused(linkdel)] == ["entities[1].fields[0].on_delete"]
    linkupd = lab(PROJECTS, tasks(PROJECT, fields=[PROJECT, CLIENT], access={
        "delete": "admin", "select": [{"min_role": "admin"}, {"linked": ["client_id"]}],
        "update": [{"min_role": "admin"}, {"linked": ["client_id"]}]}))
    assert "the user in client_id may update rows of tasks" in refused(linkupd)[0]


def test_rt33_f3_a_cascading_reference_in_personal_data_moves_like_the_rows():
    contacts = {"name": "contacts", "fields": [{"name": "name", "type": "text"}],
                "access": {"delete": [{"min_role": "admin"}, {"min_role": "member", "own": True}]}}
    claims = {"name": "claims", "soft_delete": True, "access": {"delete": "admin"}, "fields": [
        {"name": "title", "type": "text"},
        {"name": "about_contact_id", "type": "reference", "references": "contacts", "on_delete": "cascade",
         "pii": True}]}
    assert [p.split(":")[0] for p in refused(lab(contacts, claims))] == ["entities[1].fields[1].on_delete"]


def test_rt33_f4_soft_delete_is_offered_only_on_a_parent_whose_own_parents_do_not_cascade_to_the_taker():
    folders = {"name": "folders", "access": {"delete": [{"min_role": "admin"}, {"min_role": "member", "own": True}]}}
    projects = {"name": "projects", "soft_delete": False, "fields": [
        {"name": "folder_id", "type": "reference", "references": "folders", "nullable": False,
         "on_delete": "cascade"}], "access": {"delete": "admin", "update": "admin"}}
    with pytest.raises(InvalidBlueprint) as raised:
        parse_blueprint(lab(folders, projects, tasks(PROJECT)))
    fixes = {path: fix for path, _, fix in raised.value.problems}
    assert "soft_delete: true on projects" not in fixes["entities[2].fields[0].on_delete"]
    with pytest.raises(InvalidBlueprint) as raised:
        parse_blueprint(lab(PROJECTS, tasks(PROJECT)))
    assert "soft_delete: true on projects" in raised.value.problems[0][2]


def test_rt33_f5_and_rt34_f3_a_member_column_is_aimed_by_whoever_writes_it():
    # Red team 33 F5 read member_roles as limiting who aims the column (schedulers are no clinicians); red team 34
    # F3: whoever writes it names a clinician who then leaves (a second account, a colleague), or whom a manager
    # removes. Roles that may delete the organisation (capability mode) have every row to lose already.
    tenancy = {"personal_workspaces": False, "capabilities": [{"name": "schedule", "description": "Book visits."}],
               "organization_deleted_by": "capability",
               "roles": [{"name": "owner", "capabilities": [*ROLES[0]["capabilities"], "schedule"]},
                         {"name": "coordinator", "capabilities": ["read", "write", "schedule"]},
                         {"name": "clinician", "capabilities": ["read", "write"]}]}
    clinician = {**MEMBER, "name": "clinician_id", "member_roles": ["clinician"]}
    visits = {"name": "visits", "fields": [clinician], "access": {
        "select": [{"capability": "schedule"}, {"roles": ["clinician"], "assigned": "clinician_id"}],
        "update": [{"roles": ["coordinator"]}, {"roles": ["clinician"], "assigned": "clinician_id"}],
        "delete": [{"roles": ["owner"]}]}}
    assert "coordinator may update rows of visits and point it at a member who then leaves" in \
        refused({**lab(visits), "tenancy": tenancy})[0]
    visits["access"]["update"] = [{"roles": ["owner"]}, {"roles": ["clinician"], "assigned": "clinician_id"}]
    visits["soft_delete"] = True  # (the owners' delete only archives: a cascade would take more)
    parse_blueprint({**lab(visits), "tenancy": tenancy})  # the owner may delete the organisation
    tenancy["organization_deleted_by"] = "primary_owner"  # co-owners may not (red team 34 F1)
    assert "owner may update rows of visits" in refused({**lab(visits), "tenancy": tenancy})[0]


def test_rt33_f2_an_author_under_a_closed_parent_gives_no_personal_data(db_url):
    bp = load_blueprint_file("tests/fixtures/blueprints/under-frozen-claims.yaml")
    migrations = blueprint_migrations(bp)
    now = ("with check ((organization_id = any (array(select private.organization_ids_with_role('admin'))) and "
           "exists (select 1 from public.claims p where p.id = claims_private.claim_id)) or (exists (select 1 from "
           "public.claims where claims.id = claims_private.claim_id")
    once = ("with check ((((created_by = (select auth.uid()) and organization_id = any (array(select "
            "private.organization_ids_with_role('member')))) or organization_id = "
            "any (array(select private.organization_ids_with_role('admin')))) and exists (select 1 from public.claims "
            "p where p.id = claims_private.claim_id)) or (exists (select 1 from public.claims where claims.id = "
            "claims_private.claim_id")
    assert sum(m.count(now) for m in migrations) == 1
    assert verify(source="F2", migrations=migrations, blueprint=bp, database_url=db_url).ok
    report = verify(source="F2 once", migrations=[m.replace(now, once) for m in migrations], blueprint=bp,
                    database_url=db_url)
    assert {f.verdict for f in report.failures} == {"LEAK"}
    assert {(f.table, f.command) for f in report.failures} == {("claims_private", "insert")}


def test_rt33_f6_the_pgtap_file_of_a_blueprint_verify_cannot_judge_says_so_and_skips(db_url):
    # Three shifts a day per station: verify refuses to judge it (its own rows would clash in the exclusion); the
    # pgTAP file render wrote ran those clashes as failures.
    from blueprint_mcp.model import BlueprintError
    from blueprint_mcp.verify.pgtap import pgtap_file

    bp = load_blueprint_file("tests/fixtures/blueprints/crowded-shifts.yaml")
    with pytest.raises(BlueprintError) as raised:
        verify(source="shifts", migrations=blueprint_migrations(bp), blueprint=bp, database_url=db_url)
    text = pgtap_file(bp)
    assert "select plan(1);" in text and "select skip(" in text and "outcome(" not in text
    assert str(raised.value).replace("'", "''") in text


# Red team 34 (the same session, on red team 33's fixes).
@pytest.mark.parametrize("name", ["coowner", "inbox", "cycle", "cycle-order"])
def test_rt34_co_owners_nullable_parents_and_cycles_are_read(name):
    # F1 a co-owner (not the primary owner) may not delete the organisation; F2 a task with no project is under
    # none of the parents a role deletes; F5 the verdict of a cycle of cascades no longer hangs on entity order.
    data = yaml.safe_load(open(f"tests/fixtures/blueprints/rt34-{name}.yaml"))
    assert [p.split(":")[0] for p in refused(data) if "cascades:" in p]


def test_rt34_fr1_moves_among_parents_a_role_updates_and_deletes_alike_are_accepted():
    parse_blueprint(yaml.safe_load(open("tests/fixtures/blueprints/rt34-fr-under.yaml")))


def test_rt34_f4_a_linked_author_under_a_frozen_state_gives_no_personal_data(db_url):
    bp = load_blueprint_file("tests/fixtures/blueprints/rt34-linkpii.yaml")
    migrations = blueprint_migrations(bp)
    assert verify(source="F4", migrations=migrations, blueprint=bp, database_url=db_url).ok
    linked = ("with check ((organization_id = any (array(select private.organization_ids_with_role('admin'))) and "
              "exists (select 1 from public.claims p where p.id = claims_private.claim_id)) or (claim_id in")
    once = ("with check ((((created_by = (select auth.uid()) and organization_id = any (array(select "
            "private.organization_ids_with_role('member')))) or organization_id = any (array(select "
            "private.organization_ids_with_role('admin')))) and exists (select 1 from public.claims p where p.id = "
            "claims_private.claim_id)) or (claim_id in")
    assert sum(m.count(linked) for m in migrations) == 1
    report = verify(source="F4 once", migrations=[m.replace(linked, once) for m in migrations], blueprint=bp,
                    database_url=db_url)
    assert {(f.table, f.command, f.verdict) for f in report.failures} == {("claims_private", "insert", "LEAK")}


@pytest.mark.parametrize("scope", ["organization", "user"])
def test_a_restore_grant_to_a_read_only_role_is_said_where_the_audit_reads_it(scope):
    """Random fuzz (session 31): `restore: viewer` is the blueprint's choice, but round 25's definer reading of BP059
    reported the generated restore function (a viewer updating past RLS). The function now says so as the policies
    do: a suppression naming the rule and the grant, which the audit honours."""
    data = lab({"name": "invoices", "scope": scope, "soft_delete": True, "restore": "viewer"})
    data["tenancy"] = {"personal_workspaces": True, "team_organizations": True, "multiple_memberships": True}
    sql = blueprint_sql(parse_blueprint(data), "lab")
    assert audit_sql(sql) == []
    text = "".join(part for _, part in sql)
    assert "-- blueprint: ignore BP059 the blueprint lets viewer restore invoices rows (its restore grants)\n" \
           "create or replace function private.restore_invoice(" in text
