"""The lifecycle holes, each reopened in the generated SQL: verify's lifecycle scenarios must catch every one.

Every hole was found on the backend generated before docs/lifecycle.md's defaults existed, and each
scenario named here failed on that backend (a LEAK or an error) before the defaults landed. Reopening
the hole in today's SQL proves the scenario still has teeth; the clean templates and examples pass
them all in tests/test_examples.py and tests/test_verify.py.
"""

from __future__ import annotations

import pytest

from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.sql.render import rls_sql, schema_sql, triggers_sql
from blueprint_mcp.templates import load_template
from blueprint_mcp.verify.matrix import actions_first
from blueprint_mcp.verify.run import verify

pytestmark = pytest.mark.postgres

REVOKE_PENDING = ("and (tg_op = 'DELETE' or i.role > new.role or new.role < 'admin')", "and false")
INVITER_STILL_RANKED = ("if not exists (select 1 from public.organization_members m\n"
                        "                  where m.organization_id = invite.organization_id", "if false and not exists (select 1 from public.organization_members m\n"
                        "                  where m.organization_id = invite.organization_id")

OWNER_CASCADES = ("owner_user_id) references auth.users (id) on delete no action",
                  "owner_user_id) references auth.users (id) on delete cascade")
NO_DELETION_TRIGGER = "drop trigger blueprint_before_auth_user_deleted on auth.users;"
# accept_invitation's own check of when the caller left or was demoted (L11): a second defence behind the
# revocations, switched off with them so each scenario shows the revocation it is about.
NO_LEFT_CHECK = ("                and c.changed_at >= invite.created_at and (c.role is null or invite.role > c.role))"
                 " then", "                and false) then")

# (hole, [(generated text, replacement)], SQL appended after the migrations, scenario that must fail)
HOLES = [
    ("authors' rows cascade with their account",
     [("references auth.users (id) on delete set null", "references auth.users (id) on delete cascade")], "",
     "deleting member's account loses no row another user wrote"),
    ("a member's deletion takes others' rows inside their rows",
     [("references auth.users (id) on delete set null", "references auth.users (id) on delete cascade")], "",
     "deleting member's account keeps owner's tasks row in their projects"),
    # The account-deletion guard removed: the trigger then deletes the team with its members' rows.
    ("the primary owner's account takes the organisation with it",
     [("if blocking is not null then", "if false then")], "",
     "deleting owner's account loses no row another user wrote"),
    # The cascade fails the scenario in either order of its triggers (test_a_deletion_whose_outcome_followed_...).
    ("the primary owner's account cascades to the organisation", [OWNER_CASCADES], NO_DELETION_TRIGGER,
     "deleting owner's account loses no row another user wrote"),
    ("a co-owner deletes the organisation",
     [("using (owner_user_id = (select auth.uid()) and is_personal = false)",
       "using (id = any (array(select private.organization_ids_with_role('owner'))) and is_personal = false)")], "",
     "a co-owner deletes the organisation"),
    ("clients insert invitations with their own expiry",
     [("  new.expires_at := least(", "  return new;\n  new.expires_at := least(")],
     "grant insert (organization_id, email, role, expires_at) on public.invitations to authenticated;\n"
     "create policy open_invites on public.invitations for insert to authenticated with check (true);",
     "a client sets an invitation's expiry"),
    ("invitation secrets readable by clients", [],
     "grant select on private.invitation_tokens to authenticated;",
     "admin reads the stored invitation hashes"),
    ("addresses compare case-sensitively",
     [("  new.email := lower(btrim(new.email));\n", ""),
      ("email ~ '^[^@[:space:]]+@[^@[:space:]]+$' and email = lower(email)", "email ~ '^[^@[:space:]]+@[^@[:space:]]+$'")],
     "", "the same address is invited twice, differently cased"),
    ("expired invitations accepted", [("if invite.expires_at <= now() then", "if false then")], "",
     "an expired invitation is accepted"),
    ("invitations accepted by anyone holding the token",
     [("if confirmed is null or lower(address) is distinct from invite.email then", "if false then")], "",
     "an invitation addressed to someone else is accepted"),
    ("unconfirmed addresses accept invitations",
     [("if confirmed is null or lower(address) is distinct from invite.email then",
       "if lower(address) is distinct from invite.email then")], "",
     "an invitation is accepted with an unconfirmed address"),
    ("invitations used twice",
     [("if not found or invite.accepted_at is not null then", "if not found then"),
      ("delete from private.invitation_tokens where invitation_id = invite.id;  -- single use", ""), NO_LEFT_CHECK], "",
     "an invitation is used twice"),
    ("invitations outlive a removed inviter", [REVOKE_PENDING, INVITER_STILL_RANKED], "",
     "an invitation from a removed admin is accepted"),
    ("a removed member comes back through an invitation sent before",
     [("  if tg_op = 'DELETE' then\n    -- A member removed", "  if false then\n    -- A member removed"),
      NO_LEFT_CHECK], "",
     "an invitation sent to a viewer who is then removed is accepted"),
    ("a removed member keeps an invitation to an address they moved away from", [NO_LEFT_CHECK],
     "drop trigger blueprint_on_auth_user_email_changed on auth.users;",
     "an invitation sent to a viewer who moves to another address, is removed and moves back is accepted"),
    ("an account's address outlives it on the invitations it accepted",
     [("  delete from public.invitations i where i.accepted_by = old.id;\n", "")], "",
     "an account deleted after accepting an invitation leaves its address on it"),
    ("a member's address outlives their membership on the invitation they joined by",
     [("    delete from public.invitations i where i.organization_id = old.organization_id and i.accepted_by = "
       "old.user_id;\n", "")], "",
     "a member who leaves after accepting an invitation leaves their address on it"),
    ("a demoted member climbs back through a promotion offered before",
     [("  elsif new.role < old.role then\n", "  elsif false then\n"), NO_LEFT_CHECK], "",
     "a member offered admin rank, then demoted to viewer, accepts the offer"),
    ("a removed member comes back through an invitation sent before to another address of theirs",
     [NO_LEFT_CHECK], "",
     "a viewer removed after an invitation went to another address of theirs takes that address and accepts it"),
    ("a demoted member climbs back through an offer sent before to another address of theirs",
     [("  if (tg_op = 'DELETE' or new.role < old.role)\n", "  if false\n")], "",
     "a member offered admin rank at another address of theirs, then demoted to viewer, takes that address and "
     "accepts"),
    ("an invitation sent after a member left reads as sent before (one transaction's now())",
     [("  created_at timestamptz not null default clock_timestamp(),\n  updated_at",
       "  created_at timestamptz not null default now(),\n  updated_at")], "",
     "a viewer who left is invited again and accepts"),
    # Red team round 5: after a handover the new primary owner could neither remove nor demote the one before.
    ("the primary owner cannot remove a co-owner",
     [(" or (organization_id = any (array(select o.id from public.organizations o where o.owner_user_id = "
       "(select auth.uid()))) and user_id <> (select auth.uid()))", "")], "",
     "the primary owner removes a co-owner"),
    ("the primary owner cannot demote a co-owner",
     [("(their_role >= my_role and not exists (", "(their_role >= my_role and true or not exists (")], "",
     "the primary owner demotes a co-owner"),
    ("co-owners remove each other",
     [("or (organization_id = any (array(select o.id from public.organizations o where o.owner_user_id = "
       "(select auth.uid()))) and user_id <> (select auth.uid()))",
       "or (organization_id = any (array(select private.organization_ids_with_role('owner'))) and user_id <> "
       "(select auth.uid()))")], "",
     "a co-owner removes another co-owner"),
    ("invitations outlive a demoted inviter", [REVOKE_PENDING, INVITER_STILL_RANKED], "",
     "an invitation at admin rank from a demoted admin is accepted"),
    ("members backdate rows", [], "grant update (created_at) on public.tasks to authenticated;",
     "backdate a tasks row's created_at"),
    ("members pick row ids", [], "grant insert (id) on public.tasks to authenticated;",
     "insert a tasks row with a chosen id"),
    ("members backdate new rows", [], "grant insert (created_at) on public.tasks to authenticated;",
     "insert a backdated tasks row"),
    ("the service role rewrites the audit log", [],
     "drop trigger audit_logs_append_only_trg on public.audit_logs;\n"
     "grant update, delete on public.audit_logs to service_role;",
     "the service role rewrites an audit row"),
    ("the table owner deletes audit rows", [], "drop trigger audit_logs_append_only_trg on public.audit_logs;",
     "the table owner deletes an audit row"),
    ("ownership taken by a co-owner",
     [("if not exists (select 1 from public.organizations o\n                  where o.id = target_organization_id "
       "and o.owner_user_id = (select auth.uid())) then", "if false then"),
      ("if (select auth.uid()) is not null and (select auth.uid()) is distinct from old.owner_user_id then",
       "if false then")], "",
     "admin takes ownership for themself"),
    ("anyone changes roles, their own included",
     [("if my_role is null or my_role < 'admin' then", "if false then"),
      ("if member_user_id = me or new_role > my_role or (their_role", "if false and (their_role")], "",
     "member promotes themself to owner"),
    ("managers grant roles above their own",
     [("if member_user_id = me or new_role > my_role or (their_role", "if member_user_id = me or (their_role")], "",
     "admin makes a viewer owner"),
]


@pytest.fixture(scope="module")
def db_url(pg_cluster):
    pg_cluster.create_database("lifecycle_holes")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/lifecycle_holes"
    pg_cluster.drop_database("lifecycle_holes")


@pytest.fixture(scope="module")
def clean():
    bp = load_template("b2b-saas")
    schema = build_schema(bp)
    return bp, [schema_sql(schema, bp.app.slug), rls_sql(schema, bp.app.slug), triggers_sql(schema, bp.app.slug)]


def reopened(migrations: list[str], edits: list[tuple[str, str]], extra: str) -> list[str]:
    out = list(migrations)
    for old, new in edits:
        hits = [i for i, m in enumerate(out) if old in m]
        assert hits, f"the generated SQL no longer contains {old!r}: update the hole"
        for i in hits:
            out[i] = out[i].replace(old, new)
    return out + ([extra] if extra else [])


def test_the_clean_backend_passes_every_lifecycle_scenario(clean, db_url):
    bp, migrations = clean
    report = verify(source="clean", migrations=migrations, blueprint=bp, database_url=db_url)
    scenarios = [a for a in report.attacks if a.command == "lifecycle"]
    assert report.ok, [f.attack or f.command for f in report.failures]
    names = {a.attack for a in scenarios}
    for _, _, _, scenario in HOLES:
        assert any(n.startswith(scenario) for n in names), scenario


@pytest.mark.parametrize("hole,edits,extra,scenario", HOLES, ids=[h[0] for h in HOLES])
def test_each_reopened_hole_fails_its_scenario(clean, db_url, hole, edits, extra, scenario):
    bp, migrations = clean
    # Only the scenario's own cases are judged (the rest of the matrix is the clean test's): each hole costs
    # the migrations and fixtures, not a whole verify.
    report = verify(source=hole, migrations=reopened(migrations, edits, extra), blueprint=bp, database_url=db_url,
                    attacks=(scenario,))
    assert report.attacks and all(a.attack.startswith(scenario) for a in report.attacks), hole
    failing = {f.attack for f in report.failures if f.attack}
    assert any(a.startswith(scenario) for a in failing), (hole, sorted(failing))


def fire_first(on_delete: str) -> str:
    """SQL renaming the referential-action triggers of every table so those of `on_delete` ('n': set null,
    'c': cascade) fire first. PostgreSQL fires a table's triggers in name order, and these are named after object
    ids, so which order a database has follows its history (ids crossing a power of ten swap them). Applied as a
    migration, before verify's own CASCADES_FIRST (which prefixes the names again)."""
    return actions_first(on_delete) + ";"


@pytest.mark.parametrize("first", ["n", "c"], ids=["set-null-first", "cascade-first"])
def test_the_clean_backend_passes_with_its_referential_actions_in_either_order(clean, db_url, first):
    bp, migrations = clean
    report = verify(source="clean", migrations=[*migrations, fire_first(first)], blueprint=bp, database_url=db_url)
    assert report.ok, [(f.attack or f.command, f.actual) for f in report.failures]


def test_a_deletion_whose_outcome_followed_trigger_order_is_a_leak_in_either_order(clean, db_url):
    """The owner's account cascading to the organisation also nulls the owner's author columns. With the cascade
    first the rows go (a leak). With the set-null first, PostgreSQL checked the nulled rows' other keys, because
    the test rows are new in verify's transaction, found their organisation gone and refused the deletion: an error
    verify could not judge, where a deployed database (old rows, only changed keys checked) loses the rows. verify
    now fires cascades first inside its own transaction (run.CASCADES_FIRST), so it gives the deployed outcome, a
    LEAK, whatever order the database's history gave the triggers."""
    bp, migrations = clean
    holed = reopened(migrations, [OWNER_CASCADES], NO_DELETION_TRIGGER)
    scenario = "deleting owner's account loses no row another user wrote"
    verdicts = {}
    for first in ("c", "n"):
        report = verify(source=first, migrations=[*holed, fire_first(first)], blueprint=bp, database_url=db_url)
        verdicts[first] = next(f for f in report.failures if f.attack == scenario).verdict
    assert verdicts == {"c": "LEAK", "n": "LEAK"}


def test_a_member_reference_nulled_while_its_membership_cascades_verifies_in_either_order(db_url):
    """access-lab: a member's account deletion removes their memberships (cascade) and nulls their author columns
    (set null) on tasks that also reference the membership (assignee_id). With the set-null first, the nulled task
    was re-checked against the membership already gone: every deletion case of the member became an error in a
    fresh clone's CI, where another cluster's object ids had passed (CASCADES_FIRST)."""
    from pathlib import Path

    import yaml

    from blueprint_mcp.model import parse_blueprint
    from blueprint_mcp.verify.run import blueprint_migrations

    bp = parse_blueprint(yaml.safe_load((Path(__file__).parent / "fixtures/blueprints/access-lab.yaml").read_text()))
    report = verify(source="access-lab", migrations=[*blueprint_migrations(bp), fire_first("n")], blueprint=bp,
                    database_url=db_url, grant_mode="explicit")
    assert report.ok, [(f.attack or f.command, f.actual) for f in report.failures]


NESTED = "deleting member's account loses no row another user wrote"
NESTED_SIDE = "deleting member's account keeps owner's projects_private row in their projects"
# A hole in the nested shape: a member's departure takes every project of their organisation with it.
MEMBER_TAKES_PROJECTS = """create function public.take_projects() returns trigger language plpgsql as $$
begin
  delete from public.projects where organization_id = old.organization_id;
  return old;
end $$;
create trigger take_projects after delete on public.organization_members
  for each row execute function public.take_projects();"""


def _nested_cascade():
    from pathlib import Path

    import yaml

    from blueprint_mcp.model import parse_blueprint
    from blueprint_mcp.verify.run import blueprint_migrations

    text = (Path(__file__).parent / "fixtures/blueprints/nested-cascade.yaml").read_text()
    bp = parse_blueprint(yaml.safe_load(text))
    return bp, blueprint_migrations(bp)


@pytest.mark.parametrize("first", ["n", "c"], ids=["set-null-first", "cascade-first"])
def test_a_set_null_fired_before_a_nested_cascade_is_judged_as_a_deployed_database_would(db_url, first):
    """The side row's key check fails only because the row is new in verify's transaction (a deployed database
    does not check unchanged keys, and the cascade then deletes the row). verify reported both account-deletion
    scenarios as "cannot be judged"; it now runs the case again with that key's check deferred to the end of the
    statement, so the deletion goes through and loses nobody else's row, in either order of the triggers."""
    bp, migrations = _nested_cascade()
    report = verify(source="nested", migrations=[*migrations, fire_first(first)], blueprint=bp, database_url=db_url)
    assert report.ok, [(f.attack or f.command, f.actual) for f in report.failures]


def test_a_hole_in_the_nested_shape_is_a_leak_not_an_error(db_url):
    """The same deletion, through a trigger that takes the organisation's projects with a departing member: the
    retried case runs to its end and counts the lost rows (before, the key check refused the whole deletion and
    the hole hid behind "cannot be judged"). A LEAK also proves the clean run's "denied" was the deletion going
    through without loss, not a refusal."""
    bp, migrations = _nested_cascade()
    report = verify(source="nested", migrations=[*migrations, MEMBER_TAKES_PROJECTS], blueprint=bp,
                    database_url=db_url)
    verdicts = {f.attack: f.verdict for f in report.failures if f.attack in (NESTED, NESTED_SIDE)}
    assert verdicts == {NESTED: "LEAK", NESTED_SIDE: "LEAK"}


def test_platform_trigger_names_are_prefixed(clean):
    _, migrations = clean
    sql = "\n".join(migrations)
    assert "create trigger on_auth_user_created" not in sql
    assert "create trigger blueprint_on_auth_user_created\n  after insert on auth.users" in sql
    assert "create trigger blueprint_before_auth_user_deleted\n  before delete on auth.users" in sql


def test_personal_data_readable_by_every_reader_of_the_row_fails_its_scenario(db_url):
    # Before column privacy, habit-tracker's check-in notes were read by every member of the organisation.
    bp = load_template("habit-tracker")
    schema = build_schema(bp)
    migrations = [schema_sql(schema, "h"), rls_sql(schema, "h"), triggers_sql(schema, "h")]
    loose = ("drop policy habit_check_ins_private_select_policy on public.habit_check_ins_private;\n"
             "create policy habit_check_ins_private_select_policy on public.habit_check_ins_private for select "
             "to authenticated using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));")
    clean = verify(source="clean", migrations=migrations, blueprint=bp, database_url=db_url)
    assert clean.ok
    report = verify(source="loose", migrations=migrations + [loose], blueprint=bp, database_url=db_url)
    failing = {f.attack for f in report.failures if f.attack}
    assert "admin reads the personal data of a habit_check_ins row they may see" in failing, sorted(failing)


# habit-tracker's holes: its server_set field (checked_at) handed back to clients, on update or on insert; its
# check-in notes, personal data only their author reads, kept after the author's account is deleted; the audit
# entries of a deleted account's workspace, kept.
HABIT_HOLES = [
    ("members backdate a check-in", [], "grant update (checked_at) on public.habit_check_ins to authenticated;",
     "set a habit_check_ins row's server-set checked_at"),
    ("members insert backdated check-ins", [],
     "grant insert (checked_at) on public.habit_check_ins to authenticated;",
     "insert a habit_check_ins row giving its server-set checked_at"),
    ("a deleted account's private notes stay, read by nobody",
     [("habit_check_ins_private_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade",
       "habit_check_ins_private_user_id_fkey foreign key (user_id) references auth.users (id) on delete set null")],
     "", "deleting admin's account erases the personal data only they read"),
    # Red team 26: a deleted user's workspace stayed in the audit log for a year, habit names and all.
    ("a deleted account's workspace stays in the audit log",
     [("delete from public.audit_logs a where a.organization_id = any (string_to_array(erased, ',')::uuid[]);",
       "null;")],
     "", "deleting admin's account erases the audit entries of their personal workspace"),
]


@pytest.fixture(scope="module")
def habits():
    bp = load_template("habit-tracker")
    schema = build_schema(bp)
    return bp, [schema_sql(schema, bp.app.slug), rls_sql(schema, bp.app.slug), triggers_sql(schema, bp.app.slug)]


@pytest.fixture(scope="module")
def habits_clean(habits, db_url):
    bp, migrations = habits
    return verify(source="clean", migrations=migrations, blueprint=bp, database_url=db_url)


@pytest.mark.parametrize("hole,edits,extra,scenario", HABIT_HOLES, ids=[h[0] for h in HABIT_HOLES])
def test_each_reopened_habit_tracker_hole_fails_its_scenario_alone(habits, habits_clean, db_url, hole, edits, extra,
                                                                   scenario):
    bp, migrations = habits
    assert habits_clean.ok and any(a.attack == scenario for a in habits_clean.attacks), scenario
    report = verify(source=hole, migrations=reopened(migrations, edits, extra), blueprint=bp, database_url=db_url)
    assert {f.attack for f in report.failures if f.attack} == {scenario}, hole


def test_a_cleared_fixture_row_takes_the_rows_naming_it_with_it(db_url):
    """Random-seed fuzz (present at 6ffcc22): a case cleared a fixture row that met its insert on a unique key, in
    replica mode, so the row's personal data (a side row naming it) was left naming nothing. The account deletion
    the case then ran nulled that side row's author, PostgreSQL checked its key and refused the whole deletion:
    verify reported "cannot be judged" for a backend that deletes accounts fine. The rows naming a cleared row go
    with it, and theirs in turn; a row whose reference is null, or names another parent, stays."""
    import psycopg

    from blueprint_mcp.model.schema import Table
    from blueprint_mcp.verify.fixtures import replica_delete
    from blueprint_mcp.verify.matrix import OUTCOME_FUNCTION

    with psycopg.connect(db_url) as conn, conn.transaction(force_rollback=True):
        conn.execute("""
            create table public.parents (id int primary key, org int not null, unique (org, id));
            create table public.kids (id int primary key, org int not null, parent_id int,
              foreign key (org, parent_id) references public.parents (org, id));
            create table public.grandkids (id int primary key, kid_id int not null references public.kids);
            insert into public.parents values (1, 7), (2, 7);
            insert into public.kids values (10, 7, 1), (11, 7, 2), (12, 7, null);
            insert into public.grandkids values (100, 10), (101, 11);""")
        conn.execute(OUTCOME_FUNCTION)
        conn.execute(replica_delete(Table(name="parents"), "id = 1", orphans=True))
        assert conn.execute("select array_agg(id order by id) from public.kids").fetchone()[0] == [11, 12]
        assert conn.execute("select array_agg(id order by id) from public.grandkids").fetchone()[0] == [101]
        conn.execute(replica_delete(Table(name="parents"), "id = 2"))  # the world's own clearing: nothing else
        assert conn.execute("select count(*) from public.kids").fetchone()[0] == 2


def test_a_fixture_taken_back_takes_its_fallback_with_it():
    """Random-seed fuzz (present at 6ffcc22): a dry run of a support row (can it be distinct on every unique key?)
    took back its rows and statements but left their fallbacks, keyed by statement index. The next fixture to
    take that index, when refused, ran the stale fallback instead (a `comment` row in place of personal data),
    was counted as built, and verify called its absence after an account deletion a lost row: a LEAK."""
    from blueprint_mcp.verify.world import Row, World

    w = World(actors={}, orgs={})
    w.add("insert into a ...;", Row("a", "org1", None, {"id": "'1'"}))
    w.add("insert into comment ...;", Row("comment", None, None, {"id": "'2'"}), fallback=("insert into comment (...)", {}))
    w.take_back(1, 1)
    w.add("insert into a_private ...;", Row("a_private", "org1", None, {"id": "'3'"}))
    assert (w.statements, w.fallbacks, [r.table for r in w.rows]) == (
        ["insert into a ...;", "insert into a_private ...;"], {}, ["a", "a_private"])


def test_a_role_check_run_on_every_update_is_caught_once_the_named_member_is_demoted(db_url):
    """Red team 13 (G1): member_roles were checked on every update of the row, so a demoted dentist's appointments
    could be edited by nobody. verify now demotes a member named in such a column and has an editor edit the row:
    the clinic verifies clean, and the trigger without its unchanged-column test is reported blocked."""
    from pathlib import Path

    _demotion_case_catches_g1(db_url, Path(__file__).parents[1] / "examples/clinic.yaml",
                              "owner edits a appointments row naming dentist after dentist is made receptionist")


# The member_roles trigger without its unchanged-column test: it checks the role on every update of the row (G1).
G1 = [("  if tg_op = 'UPDATE' and member is not distinct from (to_jsonb(old) ->> col)::uuid then\n    return new;\n"
       "  end if;\n", "")]


def _demotion_case_catches_g1(db_url, path, scenario: str) -> None:
    """The blueprint at `path` verifies clean with the demotion scenario among its cases, and reopening G1 makes that
    scenario, alone, blocked."""
    import yaml

    from blueprint_mcp.model import parse_blueprint
    from blueprint_mcp.verify.run import blueprint_migrations

    bp = parse_blueprint(yaml.safe_load(path.read_text()))
    migrations = blueprint_migrations(bp)
    clean = verify(source=path.stem, migrations=migrations, blueprint=bp, database_url=db_url)
    assert clean.ok and scenario in {a.attack for a in clean.attacks}
    report = verify(source="holed", migrations=reopened(migrations, G1, ""), blueprint=bp, database_url=db_url)
    assert [(f.verdict, f.attack) for f in report.failures] == [("blocked", scenario)]


def test_a_role_only_the_primary_owner_holds_is_demoted_through_a_stand_in(db_url):
    """member_roles: [owner] with no co-owner in verify's world: the demotion case was skipped without a word. A
    member named and then demoted as the table owner leaves the same state as a demoted owner would, so the case
    now runs on them, and the trigger checking the role on every update is reported blocked."""
    from pathlib import Path

    _demotion_case_catches_g1(db_url, Path(__file__).parent / "fixtures/blueprints/owner-approver.yaml",
                              "owner edits a reviews row naming admin after admin is made viewer")


def test_a_child_row_with_a_unique_default_keeps_its_parent_in_a_cycle_of_references(db_url):
    """Drawn by the random-seed property tests once entities got parents: items (a unique column with a constant
    default) reference time, and time references items. The case putting another user's items row under the
    victim's time row left the unique column to its default, the clearing of the clashing fixture row took the rows
    naming it (orphans), the victim's time row among them, and the insert failed on its key (an error, not a
    verdict). The row now takes fresh unique values, as a client's insert does."""
    import json
    from pathlib import Path

    from blueprint_mcp.model import parse_blueprint
    from blueprint_mcp.verify.run import blueprint_migrations

    bp = parse_blueprint(json.loads((Path(__file__).parent / "fixtures/blueprints/cycle-unique-default.json")
                                    .read_text()))
    report = verify(source="cycle", migrations=blueprint_migrations(bp), blueprint=bp, database_url=db_url)
    assert report.ok, [(f.attack or f.command, f.actual) for f in report.failures]
