"""Red team 29's broken backends (its REPORT.md, "verify passes on backends I broke"): six one- or two-line edits of
a generated triggers file that verify used to pass. Each is made here by the same text edit as the red team's
make_broken.py, and verify's lifecycle scenarios must fail it with a line naming the rule it breaks; the generated
backends pass those scenarios."""

from __future__ import annotations

import pytest

from blueprint_mcp.model.blueprint import Blueprint, parse_blueprint
from blueprint_mcp.templates import load_template
from blueprint_mcp.verify.run import blueprint_migrations, verify

pytestmark = pytest.mark.postgres

# The red team's own blueprint (bp/timeline.yaml): personal workspaces and teams, pii read by its author.
TIMELINE = {
    "version": 1,
    "app": {"name": "Timeline", "slug": "timeline", "description": "Expense claims over time."},
    "tenancy": {"personal_workspaces": True, "team_organizations": True, "multiple_memberships": True},
    "entities": [
        {"name": "claims", "description": "An expense claim; approved by a manager.", "soft_delete": True,
         "restore": "admin",
         "fields": [
             {"name": "title", "type": "text", "nullable": False, "check": {"min_length": 1, "max_length": 200}},
             {"name": "amount_cents", "type": "integer", "nullable": False, "check": {"min": 0}},
             {"name": "status", "type": "enum", "values": ["draft", "submitted", "approved", "paid"],
              "nullable": False, "default": "draft"},
             {"name": "submitted_at", "type": "timestamptz", "nullable": False, "default_expression": "now",
              "server_set": True},
             {"name": "approver_id", "type": "reference", "references": "organization_members",
              "member_roles": ["owner", "admin"]},
             {"name": "iban", "type": "text", "pii": True, "check": {"max_length": 40}}],
         "transitions": [{"column": "status", "initial": ["draft"],
                          "moves": {"draft": ["submitted"], "submitted": ["draft", "approved"]}}],
         "pii_read": [{"min_role": "member", "own": True}, {"min_role": "owner"}],
         "access": {
             "select": [{"min_role": "member", "own": True}, {"min_role": "admin"}],
             "insert": [{"min_role": "member"}],
             "update": [{"min_role": "member", "own": True,
                         "where": {"column": "status", "in": ["draft", "submitted"]}}, {"min_role": "admin"}],
             "delete": [{"min_role": "member", "own": True, "where": {"column": "status", "equals": "draft"}},
                        {"min_role": "admin"}]}},
        {"name": "receipts", "description": "A receipt of a claim.",
         "fields": [
             {"name": "claim_id", "type": "reference", "references": "claims", "nullable": False,
              "on_delete": "cascade"},
             {"name": "note", "type": "text", "check": {"max_length": 500}},
             {"name": "uploaded_at", "type": "timestamptz", "nullable": False, "default_expression": "now",
              "server_set": True}],
         "access": {"select": [{"min_role": "member", "visible": "claim_id"}],
                    "insert": [{"min_role": "member", "under": "claim_id"}],
                    "update": [], "delete": [{"min_role": "admin"}]}},
    ],
    "privacy": {"audit_tables": ["claims", "organization_members"]},
}

RETENTION = [("for each row execute function private.protect_audit_log('365');",
              "for each row execute function private.protect_audit_log('0');"),
             ("delete from public.audit_logs where occurred_at < now() - interval '365 days';",
              "delete from public.audit_logs where occurred_at < now() - interval '0 days';")]
GUARD = ("for each row execute function private.personal_workspace_guard();",
         "for each row when (false) execute function private.personal_workspace_guard();")

# id, design, [(old, new, how many times old occurs)], the failing scenario (its name up to the rule), verdict
BROKEN = [
    ("V1 a team's audit log erased with its last member", "b2b-saas",
     [("select string_agg(gone.id::text, ',') filter (where gone.is_personal) into erased from gone;",
       "select string_agg(gone.id::text, ',') into erased from gone;", 1)],
     "deleting the account of outsider, a team's only member, erases the team's audit entries (L19)", "LEAK"),
    ("V2 the email-change trigger disabled", "b2b-saas",
     [("  when (lower(old.email) is distinct from lower(new.email))", "  when (false)", 1)],
     "an invitation to the address the member left is accepted by its next holder (L11)", "LEAK"),
    ("V3 personal-workspace guards disabled", "habit-tracker", [(*GUARD, 2)],
     "outsider invites someone into their personal workspace (L20)", "LEAK"),
    ("V4 a side row's take_author trigger disabled", "timeline",
     [("for each row execute function private.claims_private_take_author(",
       "for each row when (false) execute function private.claims_private_take_author(", 1)],
     "admin writes the personal data of owner's claims row first and becomes its author (A23)", "LEAK"),
    ("V5 teams nobody else belongs to kept at account deletion", "b2b-saas",
     [("with gone as (delete from public.organizations o where o.owner_user_id = old.id returning",
       "with gone as (delete from public.organizations o where o.owner_user_id = old.id and o.is_personal returning",
       1)],
     "outsider, a team's only member, deletes their account and the team goes with it (L03)", "blocked"),
    ("V6 retention read as 0 days", "b2b-saas", [(old, new, 1) for old, new in RETENTION],
     "the retention function removes an entry still inside the retention period (L15)", "LEAK"),
    # Not a harm the red team could show (e-commerce's pii readers are roles), but A23's rule all the same.
    ("b41 e-commerce's take_author trigger disabled", "e-commerce",
     [("for each row execute function private.customers_private_take_author(",
       "for each row when (false) execute function private.customers_private_take_author(", 1)],
     "manager writes the personal data of owner's customers row first and becomes its author (A23)", "LEAK"),
]
# The personal-workspace guard on memberships has a scenario of its own (the invitations' guard answers first above).
GUARDED_MEMBERS = "the service role adds a second member (member) to outsider's personal workspace (L20)"


def design(name: str) -> Blueprint:
    return parse_blueprint(TIMELINE) if name == "timeline" else load_template(name)


def broken(migrations: list[str], edits: list[tuple[str, str, int]]) -> list[str]:
    """The migrations with each edit applied as make_broken.py applies it, every occurrence it expects."""
    out = list(migrations)
    for old, new, times in edits:
        hits = [i for i, m in enumerate(out) if old in m]
        assert len(hits) == 1 and out[hits[0]].count(old) == times, f"the generated SQL no longer holds {old!r}"
        out[hits[0]] = out[hits[0]].replace(old, new)
        assert old not in out[hits[0]]
    return out


@pytest.fixture(scope="module")
def db_url(pg_cluster):
    pg_cluster.create_database("lifecycle_s30")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/lifecycle_s30"
    pg_cluster.drop_database("lifecycle_s30")


@pytest.mark.parametrize("name", ["b2b-saas", "habit-tracker", "timeline"])
def test_the_generated_backend_passes_the_new_scenarios(db_url, name):
    bp = design(name)
    report = verify(source=name, migrations=blueprint_migrations(bp), blueprint=bp, database_url=db_url)
    assert report.ok, [f"{f.verdict} {f.attack or f.command}" for f in report.failures]
    names = {a.attack for a in report.attacks if a.verdict == "ok"}
    for _, used, _, scenario, _ in BROKEN:
        if used == name:
            assert scenario in names, scenario
    if name == "habit-tracker":
        assert GUARDED_MEMBERS in names


@pytest.mark.parametrize("hole,name,edits,scenario,verdict", BROKEN, ids=[b[0].split()[0] for b in BROKEN])
def test_each_broken_backend_fails_the_scenario_naming_its_rule(db_url, hole, name, edits, scenario, verdict):
    bp = design(name)
    # Only the scenario's cases are judged (each case runs alone and is rolled back: its verdict is the full run's).
    report = verify(source=hole, migrations=broken(blueprint_migrations(bp), edits), blueprint=bp, database_url=db_url,
                    attacks=(scenario,))
    assert not report.ok
    failing = {(f.attack, f.verdict) for f in report.failures}
    assert failing == {(scenario, verdict)}, (hole, failing)


def test_the_personal_workspace_guard_on_memberships_is_tried_alone(db_url):
    """The service role adding a second member meets only the memberships' guard: with it off, a LEAK (L20)."""
    bp = load_template("habit-tracker")
    migrations = blueprint_migrations(bp)
    guard = "create trigger organization_members_personal_guard_trg\n  after insert on public.organization_members\n  "
    holed = broken(migrations, [(guard + GUARD[0], guard + GUARD[1], 1)])
    report = verify(source="members' guard", migrations=holed, blueprint=bp, database_url=db_url,
                    attacks=(GUARDED_MEMBERS,))
    assert {(f.attack, f.verdict) for f in report.failures} == {(GUARDED_MEMBERS, "LEAK")}
