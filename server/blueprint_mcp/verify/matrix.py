"""The attack matrix: every table x command x actor x organisation, plus targeted attacks.

Each case is one literal SQL statement run through `blueprint_tests.outcome(...)`, a plpgsql
function that impersonates the actor the way PostgREST does (role + request.jwt.claims), runs the
statement, and undoes it by raising: the same function serves the verifier and the pgTAP files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import Blueprint, Capability, Scope
from ..model.meaning import remembered_grants
from ..model.schema import Schema, Table
from ..model.tenant_keys import member_column, membership_table, role_column, user_tables
from ..sql.ident import ident, literal, qname
from .conditions import (PORTAL, condition_rows, insert_condition_cases, needs_portal, reattribution_attacks,
                         transition_cases)
from .lifecycle import lifecycle_cases
from .fixtures import (add_row, admit, clashes, client_writable, clearing_sql, for_own_parent, fuller, insert_values,
                       marker_for, replica_delete, row_values, take_parent_author, unique_keys)
from .oracle import DENIED, GenericOracle, Oracle
from .values import allowed_values, crowded_ranges, enum_labels, requirements
from .world import (
    CORE_FLOW_TABLES,
    ORG,
    Actor,
    Row,
    World,
    fk_order,
    insert_sql,
    pk_key,
    plan_actors,
    stable_id,
    users_sql,
    where_key,
)

OUTCOME_FUNCTION = """create schema if not exists blueprint_tests;
create or replace function blueprint_tests.outcome(
  api_role text, claims text, kind text, statement text, probe text default null, setup text default null,
  outsider boolean default false)
returns text
language plpgsql
set search_path = ''
as $$
declare
  n bigint;
  context text;
  -- Foreign keys whose check this case defers to the end of its statement (see the retry below).
  deferred text[] := '{}';
  failed_schema text;
  failed_table text;
  failed_key text;
begin
  -- What every verdict relies on, set by verify before the migrations and again after them: a migration's
  -- trigger (or a write through a view of pg_settings) firing later, as the fixture rows went in, must not turn
  -- row level security off (a leak would read as denied) or pin one caller for every actor.
  if current_setting('row_security') <> 'on' or current_setting('session_replication_role') <> 'origin'
     or coalesce(current_setting('request.jwt.claim.sub', true), '') <> ''
     or coalesce(current_setting('request.jwt.claim.role', true), '') <> ''
     or coalesce(current_setting('request.jwt.claim.email', true), '') <> ''
     or coalesce(current_setting('request.jwt.claim', true), '') <> '' then
    return 'error: something the migrations added changed row_security, session_replication_role or a legacy '
           'request.jwt.claim setting after verify set them: no verdict can be trusted';
  end if;
  <<attempt>>
  loop
  begin
    if setup is not null then
      -- As the table owner, first clear the rows an insert would meet on a unique key: a unique
      -- violation is raised before foreign keys are checked, and would hide the access decision.
      begin
        execute setup;
      exception when others then
        return 'error: setup ' || sqlstate || ' ' || sqlerrm;
      end;
    end if;
    perform set_config('role', api_role, true);
    perform set_config('request.jwt.claims', claims, true);
    if cardinality(deferred) > 0 then
      execute 'set constraints ' || array_to_string(deferred, ', ') || ' deferred';
    end if;
    if kind = 'count' then
      execute statement into n;
    else
      execute statement;
      get diagnostics n = row_count;
      if cardinality(deferred) > 0 then
        -- The statement and all its referential actions are done: check the deferred keys now, on the rows they
        -- left (a row an action deleted is not checked), and only those keys.
        execute 'set constraints ' || array_to_string(deferred, ', ') || ' immediate';
      end if;
      if kind = 'exec' then
        n := 1;
      elsif kind = 'probe' then
        -- A statement without WHERE: did it reach the probed row? Look as the table owner.
        perform set_config('role', 'none', true);
        execute probe into n;
      elsif kind = 'moved' and n > 0 then
        -- An update that reached its row: did the row go where the statement sent it? (A trigger may have
        -- kept its organisation: new.organization_id := old.organization_id.) Look as the table owner.
        perform set_config('role', 'none', true);
        execute probe into n;
      end if;
    end if;
    -- Undo whatever the statement did (and the role switch) before the next case.
    raise exception using errcode = 'BPT01', message = case when n > 0 then 'allowed' else 'denied' end;
  exception
    when sqlstate 'BPT01' then
      return sqlerrm;
    when insufficient_privilege or foreign_key_violation or raise_exception then
      -- An outsider's insert must meet RLS (or the privileges) first: refused inside another function (a
      -- BEFORE trigger), its message may describe the other organisation's rows (who holds which role).
      get stacked diagnostics context = pg_exception_context;
      if outsider and context like 'PL/pgSQL function %' and context not like 'PL/pgSQL function blueprint_tests.%' then
        return 'revealed: ' || sqlstate || ' ' || sqlerrm;
      end if;
      -- A trigger's or a function's own refusal (raise exception 'not allowed') denies as RLS does.
      if sqlstate in ('42501', 'P0001') then
        return 'denied';
      end if;
      -- A check at the end of a DELETE on a row one of its referential actions updated (on delete set null):
      -- another cascade of the same DELETE had removed that row's parent. PostgreSQL checks every key of a
      -- row written in the same transaction, as all fixture rows are, where a deployed database checks only
      -- changed keys; and which comes first follows the triggers' names. Neither denied nor allowed.
      if kind <> 'rows' and sqlerrm like 'insert or update on table %'
         and split_part(context, E'\\n', 1) ~* '^SQL statement "\\s*delete\\M' then
        -- A deployed database does not check that row (its keys did not change), and the cascade deletes it: run
        -- the case again with that key's check deferred to the end of the statement, when the cascades are done.
        -- Only a key whose own ON DELETE is an action (a NO ACTION key's refusal is checked where it fires) and
        -- that the connection may alter; made DEFERRABLE INITIALLY IMMEDIATE, it behaves as before elsewhere.
        get stacked diagnostics failed_schema = schema_name, failed_table = table_name,
                                failed_key = constraint_name;
        if not format('%I.%I', failed_schema, failed_key) = any (deferred) and exists (
             select 1 from pg_catalog.pg_constraint c
              where c.conname = failed_key and c.contype = 'f' and c.confdeltype <> 'a'
                and c.conrelid = format('%I.%I', failed_schema, failed_table)::regclass) then
          begin
            execute format('alter table %I.%I alter constraint %I deferrable initially immediate',
                           failed_schema, failed_table, failed_key);
            deferred := deferred || format('%I.%I', failed_schema, failed_key);
            continue attempt;
          exception when insufficient_privilege then
            null;  -- a table the connection does not own (the platform's, on a real project) keeps its key
          end;
        end if;
        return 'error: ' || sqlstate || ' ' || sqlerrm || ' (checked on a row an ON DELETE SET NULL of this '
          || 'delete changed, whose parent another of its cascades removed: PostgreSQL checks that only on rows '
          || 'new in the transaction, as the test rows are, and in an order set by trigger names, so this '
          || 'deletion cannot be judged; make it independent of that order, e.g. delete the dependent rows in '
          || 'a BEFORE DELETE trigger)';
      end if;
      -- A reference into another organisation is refused; but a DELETE that a restricting
      -- reference stops had reached its row: access control let it through.
      return case when kind = 'rows' and lower(left(ltrim(statement), 7)) = 'delete ' then 'allowed' else 'denied' end;
    when unique_violation or not_null_violation then
      -- Raised after privileges and RLS WITH CHECK passed: access control let the row through
      -- (but a statement without WHERE that failed reached nothing).
      return case when kind = 'probe' then 'denied' else 'allowed' end;
    when others then
      return 'error: ' || sqlstate || ' ' || sqlerrm;
  end;
  end loop;
end
$$;

-- A case that clears a fixture row (replica mode: no triggers, no foreign keys) takes the rows that name it
-- with it, and theirs in turn: a row left naming a missing parent is no row a deployed database holds, and a
-- later write to it (an ON DELETE SET NULL of an account deletion) would fail on its key, not on access.
create or replace function blueprint_tests.clear_orphans(parent regclass)
returns void
language plpgsql
set search_path = ''
as $$
declare
  queue regclass[] := array[parent];
  t regclass;
  fk record;
  n bigint;
begin
  while cardinality(queue) > 0 loop
    t := queue[1];
    queue := queue[2:];
    for fk in
      select c.conrelid::regclass as child,
             (select string_agg(format('c.%I is not null', a.attname), ' and ')
                from unnest(c.conkey) k join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k)
               as filled,
             (select string_agg(format('p.%I = c.%I', pa.attname, ca.attname), ' and ')
                from unnest(c.conkey, c.confkey) as k(child_col, parent_col)
                join pg_attribute ca on ca.attrelid = c.conrelid and ca.attnum = k.child_col
                join pg_attribute pa on pa.attrelid = c.confrelid and pa.attnum = k.parent_col) as joined
        from pg_constraint c
       where c.contype = 'f' and c.confrelid = t
    loop
      begin
        execute format('delete from %s c where %s and not exists (select 1 from %s p where %s)',
                       fk.child, fk.filled, t, fk.joined);
        get diagnostics n = row_count;
      exception when insufficient_privilege then
        n := 0;  -- a table the connection may not write (the platform's own, on a real project) keeps its rows
      end;
      if n > 0 then
        queue := queue || fk.child;
      end if;
    end loop;
  end loop;
end
$$;"""

# A deletion's referential actions fire in the order of their triggers' names, which follow object ids (a
# database's history). Verify's test rows are new in its transaction, so when an ON DELETE SET NULL fires before a
# cascade that removes the nulled row's parent, PostgreSQL re-checks every key of the row and refuses the whole
# deletion, which a deployed database (old rows, only changed keys checked) never does: the same backend verified
# clean in one cluster and "cannot be judged" in another. Inside verify's transaction and the pgTAP file's (both
# rolled back), cascades fire first, the order in which the test rows give the deployed outcome. A table the
# connection does not own (auth.users on a real project) keeps its order.
def actions_first(kind: str) -> str:
    """A DO block renaming the referential-action triggers of every table the connection owns so those whose ON
    DELETE action is `kind` ('c' cascade, 'n' set null, 'd' set default) fire first on each table."""
    return f"""do $$
declare
  r record;
begin
  for r in select t.tgname, n.nspname, k.relname, c.confdeltype
             from pg_trigger t join pg_constraint c on c.oid = t.tgconstraint
             join pg_class k on k.oid = t.tgrelid join pg_namespace n on n.oid = k.relnamespace
            where t.tgisinternal and c.contype = 'f' and t.tgrelid = c.confrelid loop
    begin
      execute format('alter trigger %I on %I.%I rename to %I', r.tgname, r.nspname, r.relname,
                     left(case when r.confdeltype = '{kind}' then 'a_' else 'z_' end || r.tgname, 63));
    exception when insufficient_privilege then
      null;
    end;
  end loop;
end
$$"""


CASCADES_FIRST = actions_first("c")

_SKIP_UPDATE = {"id", ORG, "created_at", "updated_at", "archived_at"}


@dataclass
class Case:
    table: str
    command: str
    actor: str
    org: str | None
    kind: str  # count | rows | exec | probe | moved (rows, then the probe where a row was reached)
    sql: str
    expected: str | None  # allowed | denied | None (not judged)
    attack: str | None = None  # name of a targeted attack
    probe: str | None = None  # for kind "probe": counts the rows the statement reached, as the owner
    actual: str | None = None
    setup: str | None = None  # run as the owner first: clears rows an insert would collide with
    api_role: str | None = None  # instead of the actor's: "none" runs as the session user (the auth service)
    # An insert into an organisation the actor does not belong to, where only members may insert: RLS must be
    # what refuses it (a trigger refusing first may describe the organisation's rows: OUTCOME_FUNCTION).
    outsider: bool = False
    claims: dict | None = None  # instead of the actor's JWT claims

    @property
    def verdict(self) -> str:
        if self.actual is None:
            return "not run"
        if self.actual.startswith("error"):
            return "error"
        if self.actual.startswith("revealed"):
            return "LEAK"  # refused, but by a check that answered before RLS (see OUTCOME_FUNCTION)
        if self.expected is None:
            return "observed"
        if self.expected == self.actual:
            return "ok"
        return "LEAK" if self.actual == "allowed" else "blocked"

    def outcome_call(self, actors: dict[str, Actor]) -> str:
        actor = actors.get(self.actor)
        api_role = self.api_role or actor.api_role
        claims = self.claims if self.claims is not None else actor.claims()
        probe = f", {literal(self.probe)}" if self.probe else ""
        setup = f", setup => {literal(self.setup)}" if self.setup else ""
        outsider = ", outsider => true" if self.outsider else ""
        return (f"blueprint_tests.outcome({literal(api_role)}, {literal(json.dumps(claims))}, "
                f"{literal(self.kind)}, {literal(self.sql)}{probe}{setup}{outsider})")

    @property
    def label(self) -> str:
        where = f" in {self.org}" if self.org else ""
        what = self.attack or f"{self.command} {self.table}{where}"
        return f"{self.actor}: {what} -> {self.expected or 'observed'}"


@dataclass
class Plan:
    """A world and how to derive its cases once the fixtures exist (rows that failed are dropped)."""

    world: World
    build: Callable[[set[str] | None], list[Case]]  # the cases; given `only`, it may leave other tables' out
    cases: list[Case] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    only: set[str] | None = None  # judge only these tables' cases (a mutation run touching one table)
    only_attacks: tuple[str, ...] | None = None  # only the attacks named so, by prefix (a test reopening a hole)
    fixture_failures: list[str] = field(default_factory=list)  # fixture statements PostgreSQL refused
    untested: list[str] = field(default_factory=list)  # tables whose every fixture row was refused

    def planned_cases(self) -> list[Case]:
        before = len(self.world.statements)
        self.cases = [c for c in self.build(self.only) if (self.only is None or c.table in self.only)
                      and (self.only_attacks is None or (c.attack or "").startswith(self.only_attacks))]
        # verify runs the fixtures before building cases, the pgTAP file prints them after: a case that
        # planned a fixture would exist in one and not the other.
        assert len(self.world.statements) == before, "building cases must not add fixture statements"
        return self.cases


# --- worlds ---------------------------------------------------------------------------------------

def org2_roles_needed(bp: Blueprint, owner: str, hopper_role: str | None) -> list[str]:
    """Roles org2 must have a member in besides its owner and the hopper: a required member reference
    limited to roles neither holds could not be filled there, and nobody could write its table in org2.
    The least of each reference's roles, so no actor is more powerful than the data needs."""
    ranked = [r.name for r in bp.tenancy.roles]
    held = {owner} | ({hopper_role} if hopper_role else set())
    out: list[str] = []
    for e in bp.entities:
        for f in e.fields if e.is_tenant else []:
            if f.references_member and f.member_roles and not f.nullable and not held & set(f.member_roles):
                least = max(f.member_roles, key=ranked.index)
                held.add(least)
                out.append(least)
    return out


def blueprint_world(bp: Blueprint, schema: Schema) -> World:
    roles = [r.name for r in bp.tenancy.roles]
    writer = bp.tenancy.default_member_role.name
    manager = bp.tenancy.min_role(Capability.manage_members)
    single = not bp.tenancy.multiple_memberships
    # With one membership per user nobody belongs to two organisations: there is no hopper to play.
    actors, orgs, cast = plan_actors(roles, writer, manager.name if manager and manager.name != roles[0] else None,
                                     hopper=not single, org2_roles=org2_roles_needed(bp, roles[0], None if single
                                                                                      else writer))
    if needs_portal(bp):
        name = PORTAL
        while name in actors:  # a role may be called portal: the portal user is another user
            name += "_"
        actors[name] = Actor(name, "authenticated", stable_id("user", name))
        cast[PORTAL] = name
    w = World(actors=actors, orgs=orgs, role_names=roles, cast=cast, schema=schema)
    w.statements += users_sql(w)
    if single and bp.tenancy.personal_workspaces:
        # Signup gave every user their one membership (the personal workspace); the fixture
        # organisations need them, so the workspaces go, as the service role could do.
        w.statements += [f"delete from public.organizations where is_personal and owner_user_id = "
                         f"{literal(a.user_id)};" for a in actors.values() if a.user_id and a.memberships]
    w.owners = {"org1": roles[0], "org2": w.who("owner2")}
    for label, owner in w.owners.items():
        w.add(f"insert into public.organizations (id, name, slug, owner_user_id) values ({literal(orgs[label])}, "
              f"{literal('Fixture ' + label)}, {literal('fixture-' + label)}, {literal(w.actor_id(owner))});",
              Row("organizations", label, owner, {"id": literal(orgs[label])}))
    for actor in actors.values():
        for label, role in actor.memberships.items():
            row = Row("organization_members", label, actor.name,
                      {ORG: literal(orgs[label]), "user_id": literal(actor.user_id)},
                      purpose="attack" if actor.name == w.who("hopper") else "matrix")
            if actor.name == w.owners[label]:
                w.rows.append(row)  # the add_owner_membership trigger made this one
                continue
            w.add("insert into public.organization_members (id, organization_id, user_id, role) values "
                  f"({literal(stable_id('member', label, actor.name))}, {literal(orgs[label])}, "
                  f"{literal(actor.user_id)}, {literal(role)});", row)
    w.rows.append(Row("profiles", "org1", writer, {"id": literal(w.actor_id(writer))}))
    w.rows.append(Row("profiles", "org2", w.owners["org2"], {"id": literal(w.actor_id(w.owners["org2"]))}))
    enums = {f"public.{e.name}": e.values for e in schema.enums}
    add_rows(w, schema, [t for t in schema.tables if t.name not in CORE_FLOW_TABLES], enums,
             {"org1": roles, "org2": [w.owners["org2"]]}, global_author=roles[0])
    condition_rows(bp, schema, w, enums, row_values, writer, start=3000)
    audit_entries(bp, schema, w, enums, roles[0])
    if any(f.name == "refresh_daily_org_metrics" for f in schema.functions):
        w.statements.append("select private.refresh_daily_org_metrics();")
    return w


ARCHIVED = "'2001-06-01 00:00:00+00'::timestamptz"


def archived_rows(bp: Blueprint, schema: Schema, w: World, enums: dict[str, list[str]], authors: list[str]) -> None:
    """Rows archived long ago in every soft-deleted table, one per author (restoring may be limited to
    one's own rows): hidden but from those who may restore them."""
    n = 4500
    for e in (e for e in bp.entities if e.soft_delete):
        t = schema.table(e.name)
        org = "org1" if e.is_tenant else None
        for author in (authors if e.is_tenant else authors[:1]):
            n += 1
            values = row_values(t, org, w, author, n, enums, with_id=True)
            values["archived_at"] = f"{ARCHIVED} + interval '{n} minutes'"  # distinct: keys may include it
            peers = [r.values for r in w.rows if r.table == t.name and r.org == org]
            if clashes(t, values, peers, unique_keys(t)):
                continue  # a key the author cannot leave (one row per user): no second row of theirs
            w.add(insert_sql(t, values) + ";", Row(t.name, org, author, pk_key(t, values), values=values))
            for side in (s for s in bp.entities if s.private_of == e.name):
                # Its personal data, archived with it: only those who may see the archived row reach it.
                st = schema.table(side.name)
                n += 1
                data = {**row_values(st, org, w, author, n, enums, with_id=True), side.fields[0].name: values["id"]}
                take_parent_author(st, w, data, author)
                if clashes(st, data, [r.values for r in w.rows if r.table == st.name and r.org == org],
                           unique_keys(st)):
                    continue  # a key its author cannot leave (a unique personal field holding their id)
                w.add(insert_sql(st, data) + ";", Row(st.name, org, author, pk_key(st, data), values=data))
    # And one under an archived row of each soft-deleted entity it references: restoring it is refused until
    # that row is restored (docs/access.md A24), as filing a new row there is.
    for e in (e for e in bp.entities if e.soft_delete and e.is_tenant):
        t = schema.table(e.name)
        for f in e.fields:
            parent = bp.entity(f.references) if f.references else None
            if parent is None or not parent.soft_delete or not parent.is_tenant:
                continue
            named = next((r for r in w.rows if r.table == parent.name and r.org == "org1" and "id" in r.key
                          and r.values.get("archived_at", "null") != "null"), None)
            if named is None:
                continue
            n += 1
            values = row_values(t, "org1", w, authors[0], n, enums, with_id=True)
            values.update({f.name: named.key["id"], "archived_at": f"{ARCHIVED} + interval '{n} minutes'"})
            # (a kind of row that may hold the reference: `requires` may ask it empty)
            values = admit(t, "org1", w, authors[0], values, [f.name, "archived_at"], n)
            if values is not None and not clashes(t, values, [r.values for r in w.rows if r.table == t.name
                                                              and r.org == "org1"], unique_keys(t)):
                w.add(insert_sql(t, values) + ";", Row(t.name, "org1", authors[0], pk_key(t, values), values=values))


def audit_entries(bp: Blueprint, schema: Schema, w: World, enums: dict[str, list[str]], author: str) -> None:
    """An audit_logs entry of every audited entity (in org1: the generic entries show organisations apart): who
    reads it depends on the table."""
    log = schema.table("audit_logs")
    if log is None:
        return
    for n, name in enumerate((t for t in bp.privacy.audit_tables if bp.entity(t) is not None), start=4800):
        values = {**row_values(log, "org1", w, author, n, enums, with_id=True), "table_name": literal(name)}
        w.add(insert_sql(log, values) + ";", Row(log.name, "org1", author, pk_key(log, values), values=values))


def add_rows(w: World, schema: Schema, tables: list[Table], enums: dict[str, list[str]],
             authors: dict[str, list[str]], global_author: str) -> None:
    """In every tenant table a row per organisation and author, in every global table one row."""
    n = len(w.rows)
    for t in fk_order(schema, tables):
        for org in (["org1", "org2"] if t.tenant_key is not None else [None]):
            for author in (authors[org] if org else [global_author]):
                n += 1
                add_row(w, t, org, author, n, enums)


# --- cases ----------------------------------------------------------------------------------------

def update_column(t: Table) -> str:
    fk_cols = {c for fk in t.foreign_keys for c in fk.columns}
    writable = client_writable(t, "update")  # a column only the server writes would refuse any client
    for c in t.columns:
        if c.name not in _SKIP_UPDATE and c.name not in fk_cols and c.name != "owner_user_id" and c.name in writable:
            return c.name
    return "updated_at" if t.column("updated_at") else t.columns[-1].name


def probe_column(t: Table) -> str | None:
    """A free text column for a write without WHERE: in no unique key (every row it reaches gets the
    same marker, and a unique violation would hide how far it reached) and listing no values. A keyed
    column is the last resort: it still shows a write that reaches a single row."""
    keyed = {c for columns, _ in unique_keys(t) for c in columns}
    fk_cols = {c for fk in t.foreign_keys for c in fk.columns}
    # Nor one some kind of row must leave empty (a hold's agenda): those rows would refuse the marker, and the
    # whole write with them.
    held_empty = {c for rule in requirements(t) for c in (rule.column, *rule.empty)}
    first = update_column(t)
    skip = fk_cols | _SKIP_UPDATE | held_empty
    writable = client_writable(t, "update")
    free = [c.name for c in sorted(t.columns, key=lambda c: c.name != first)
            if c.type == "text" and c.name not in skip and c.name in writable and not allowed_values(t, c.name)]
    return next((c for c in free if c not in keyed), free[0] if free else None)


ARCHIVED_SINCE = "'2002-01-01'"  # fixture rows are archived in 2001; an archive by a case is now()


def archives(t: Table) -> bool:
    """A soft-deleted table of the generator: a client's DELETE archives the row instead."""
    return t.column("archived_at") is not None and any(
        trg.timing == "before" and "delete" in trg.events and trg.function.endswith("_archive_on_delete")
        for trg in t.triggers)


def delete_probe(t: Table, key: dict[str, str]) -> str:
    """Did a delete reach the row: gone, or (soft delete) archived just now."""
    target = qname(t.schema_name, t.name)
    if archives(t):
        return (f"select (not exists (select 1 from {target} where {where_key(key)}) or exists (select 1 from "
                f"{target} where {where_key(key)} and archived_at > {ARCHIVED_SINCE}))::int")
    return f"select (not exists (select 1 from {target} where {where_key(key)}))::int"


def blanket_cases(t: Table, r: Row, actor: Actor, oracle, enums: dict[str, list[str]]) -> list[Case]:
    """Writes without WHERE: only the command's own USING applies (no SELECT policy), so a loose
    UPDATE/DELETE policy hidden behind a strict SELECT policy still shows. Judged only where the row
    must stay untouched."""
    out = []
    target = qname(t.schema_name, t.name)
    if oracle.expect(actor, "delete", t.name, r, r.org) == DENIED:
        out.append(Case(t.name, "delete (no where)", actor.name, r.org, "probe", f"delete from {target}", DENIED,
                        probe=delete_probe(t, r.key)))
    text_col = probe_column(t)
    if text_col and oracle.expect(actor, "update", t.name, r, r.org) == DENIED:
        marker = marker_for(t, t.column(text_col), enums)
        out.append(Case(t.name, "update (no where)", actor.name, r.org, "probe",
                        f"update {target} set {ident(text_col)} = {marker}", DENIED,
                        probe=f"select count(*) from {target} where {where_key(r.key)} "
                              f"and {ident(text_col)} = {marker}"))
    return out


def matrix_cases(schema: Schema, w: World, oracle, enums: dict[str, list[str]], views: list[str],
                 view_key: str = ORG, only: set[str] | None = None) -> list[Case]:
    """Every actor x command x matrix row; `only`: these tables' rows alone (the rest would be dropped)."""
    cases: list[Case] = []
    n = 1000
    for t in schema.tables:
        if only is not None and t.name not in only:
            n += len(w.actors) * (2 if t.tenant_key is not None else 1)  # the kept tables' rows stay as they were
            continue
        target = qname(t.schema_name, t.name)
        rows = [r for r in w.rows if r.table == t.name and r.purpose == "matrix"]
        col = ident(update_column(t))
        for actor in w.actors.values():
            for r in rows:
                for command, kind, sql in (
                    ("select", "count", f"select count(*) from {target} where {where_key(r.key)}"),
                    ("update", "rows", f"update {target} set {col} = {col} where {where_key(r.key)}"),
                    ("delete", "probe" if archives(t) else "rows", f"delete from {target} where {where_key(r.key)}"),
                ):
                    cases.append(Case(t.name, command, actor.name, r.org, kind, sql,
                                      oracle.expect(actor, command, t.name, r, r.org),
                                      probe=delete_probe(t, r.key) if kind == "probe" else None))
                cases += blanket_cases(t, r, actor, oracle, enums)
            for org in (["org1", "org2"] if t.tenant_key is not None else [None]):
                n += 1
                values = insert_values(t, org, w, actor.name, n, enums)
                tries = [(values, clearing_sql(t, values, w), None)]
                # A private side row takes its parent's author: the actor writes the personal data of a row of
                # their own, and tries that of someone else's row.
                own = for_own_parent(t, w, values, actor.name, org)
                if own is not None:
                    where = f" in {org}" if org else ""
                    tries = [(*own, None), (*tries[0][:2], f"insert {t.name} for another's row{where}")]
                planned = Row(t.name, org, actor.name, {}, values=values)
                if oracle.expect(actor, "insert", t.name, planned, org) == DENIED:
                    tries += naming_members(t, w, actor, org, values)
                tries += under_each_parent(t, w, actor, org, values, oracle.under_refs(t.name))
                outsider = oracle.outsider_insert(actor, t.name, org)
                for values, setup, attack in tries:
                    new = Row(t.name, org, actor.name, {}, values=values)
                    cases.append(Case(t.name, "insert", actor.name, org, "rows", insert_sql(t, values),
                                      oracle.expect(actor, "insert", t.name, new, org), attack=attack, setup=setup,
                                      outsider=outsider))
    for view in views:
        for actor in w.actors.values():
            for org in ("org1", "org2"):
                row = Row(view, org, None, {view_key: literal(w.orgs[org])})
                cases.append(Case(view, "select", actor.name, org, "count",
                                  f"select count(*) from public.{ident(view)} where {where_key(row.key)}",
                                  oracle.expect(actor, "select", view, row, org)))
    return cases


def under_each_parent(t: Table, w: World, actor: Actor, org: str | None, values: dict[str, str],
                      refs: list[str]) -> list[tuple]:
    """For an `under` grant (docs/access.md A25): the actor's insert under each parent row of the organisation,
    those they may update and those they may not."""
    out = []
    for ref in refs:
        fk = next((fk for fk in t.foreign_keys if ref in fk.columns), None)
        parents = [r for r in w.rows if fk is not None and r.table == fk.ref_table and r.org == org
                   and r.purpose == "matrix" and "id" in r.key and r.key["id"] != values.get(ref)]
        for parent in parents:
            v = admit(t, org, w, actor.name, {**values, ref: parent.key["id"]}, [ref])
            if v is None:
                continue  # no kind of row files under a parent
            out.append((v, clearing_sql(t, v, w), f"insert {t.name} under {parent.author}'s {fk.ref_table} in {org}"))
    return out


def naming_members(t: Table, w: World, actor: Actor, org: str | None, values: dict[str, str]) -> list[tuple]:
    """The outsider's inserts into org1 naming each of its members in each member column, where the outsider
    may not insert: refused alike whoever they name (by RLS, before a check on the member reveals who holds
    which role; Case.outsider)."""
    if org != "org1" or actor.name != w.who("outsider"):
        return []
    columns = [dict(zip(fk.ref_columns, fk.columns))["user_id"] for fk in t.foreign_keys
               if fk.ref_table == w.members_table and set(fk.ref_columns) == {t.tenant_key, "user_id"}]
    members = [a for a in w.actors.values() if a.memberships.get(org) and a.user_id]
    named = [(admit(t, org, w, actor.name, {**values, col: literal(m.user_id)}, [col]),
              f"insert {t.name} naming {m.name} as {col} in {org}") for col in columns for m in members]
    return [(v, clearing_sql(t, v, w), label) for v, label in named if v is not None]


def attack_cases(schema: Schema, w: World, roles: list[str], writer: str, manager: str | None,
                 members_table: Table | None, enums: dict[str, list[str]], private_functions: list[tuple]) -> list[Case]:
    """The targeted attacks; every one must be denied."""
    out: list[Case] = []
    top = roles[0]
    members_name = members_table.name if members_table is not None else None

    def attack(name: str, table: str, actor: str, sql: str, kind: str = "rows", setup: str | None = None) -> None:
        out.append(Case(table, "attack", actor, None, kind, sql, DENIED, attack=name, setup=setup))

    for t in schema.tables:
        if t.tenant_key is None or t.name == members_name:
            continue
        target = qname(t.schema_name, t.name)
        hopper = w.who("hopper")
        hop_row = next((r for r in w.rows if r.table == t.name and hopper and r.author == hopper and r.org == "org1"),
                       None)
        if hop_row:
            # Where the row's key names it apart from its organisation, the case also looks whether it arrived.
            rest = {c: v for c, v in hop_row.key.items() if c != t.tenant_key}
            moved = {t.tenant_key: literal(w.orgs["org2"]), **rest}
            out.append(Case(t.name, "attack", hopper, None, "moved" if rest else "rows",
                            f"update {target} set {ident(t.tenant_key)} = {literal(w.orgs['org2'])} "
                            f"where {where_key(hop_row.key)}", DENIED,
                            attack=f"move a {t.name} row to another organisation",
                            probe=f"select count(*) from {target} where {where_key(moved)}" if rest else None))
        for fk in t.foreign_keys:
            other = _only_in_org2(w, fk)
            if fk.ref_schema != "public" or other is None or fk.columns == [t.tenant_key]:
                continue
            values = insert_values(t, "org1", w, writer, 9000 + len(out), enums)
            known = {**other.values, **other.key}  # the other row's columns, as inserted
            pointed = [(col, ref_col) for col, ref_col in zip(fk.columns, fk.ref_columns)
                       if col != t.tenant_key and ref_col in known]
            if not pointed:
                continue  # nothing to point with: the attack would not reference the other organisation
            for col, ref_col in pointed:
                values[col] = known[ref_col]
            values = admit(t, "org1", w, writer, values, [col for col, _ in pointed])
            if values is None:
                continue  # no kind of row references anything there
            attack(f"insert a {t.name} row referencing another organisation's {fk.ref_table}", t.name, writer,
                   insert_sql(t, values), setup=clearing_sql(t, values, w))
    if members_table is not None and members_name and members_table.tenant_key:
        members, key = qname(members_table.schema_name, members_name), ident(members_table.tenant_key)
        role = ident(role_column(members_table) or "role")
        user = ident(member_column(members_table, members_table.tenant_key, user_tables(w.schema.tables))
                     if w.schema else "user_id")
        attack("member promotes themself", members_name, writer,
               f"update {members} set {role} = {literal(top)} where {user} = {literal(w.actor_id(writer))}")
        if manager and manager != top:
            attack(f"{manager} grants {top}", members_name, manager,
                   f"update {members} set {role} = {literal(top)} where {user} = {literal(w.actor_id(roles[-1]))} "
                   f"and {key} = {literal(w.orgs['org1'])}")
        attack("the last owner leaves", members_name, top,
               f"delete from {members} where {user} = {literal(w.actor_id(top))} "
               f"and {key} = {literal(w.orgs['org1'])}")
        outsider = w.who("outsider")
        attack("an outsider joins by inserting a membership", members_name, outsider,
               f"insert into {members} ({key}, {user}, {role}) values ({literal(w.orgs['org1'])}, "
               f"{literal(w.actor_id(outsider))}, {literal(top)})")
        for lower in (r for r in roles if r != top):  # a policy may forbid one role only: `role = 'member'`
            attack(f"an outsider joins as {lower} by inserting a membership", members_name, outsider,
                   f"insert into {members} ({key}, {user}, {role}) values ({literal(w.orgs['org1'])}, "
                   f"{literal(w.actor_id(outsider))}, {literal(lower)})")
    orgs_table = schema.table("organizations")
    if orgs_table is not None and orgs_table.column("owner_user_id") is not None:
        attack("create an organisation owned by someone else", "organizations", writer,
               "insert into public.organizations (name, slug, owner_user_id) values ('Hijack', 'hijack-org', "
               f"{literal(w.actor_id(w.who('owner2')))})")
    if schema.table("invitations") and schema.table("invitations").tenant_key == ORG and manager and manager != top:
        attack(f"{manager} invites a {top}", "invitations", manager,
               f"insert into public.invitations ({ORG}, email, role) values ({literal(w.orgs['org1'])}, "
               f"'intruder@example.com', {literal(top)})")
    if schema.table("profiles") and schema.table("profiles").tenant_key is None:
        attack("read other users' profiles", "profiles", writer,
               "select count(*) from public.profiles where id is distinct from auth.uid()", kind="count")
    for name in ("events", "sessions"):
        t = schema.table(name)
        if t is not None and t.tenant_key is not None:
            values = insert_values(t, "org1", w, top, 9500, enums)
            attack(f"a signed-in user writes {name}", name, top, insert_sql(t, values), setup=clearing_sql(t, values, w))
    for schema_name, fname, args, volatile in private_functions:
        call = f"select {qname(schema_name, fname)}({args})"
        attack(f"anon calls {schema_name}.{fname}", fname, w.who("anon"), call, kind="exec")
        if volatile:
            attack(f"a signed-in user calls {schema_name}.{fname}", fname, writer, call, kind="exec")
    return out


def _only_in_org2(w: World, fk) -> Row | None:
    """A row of org2 that `fk` may point at and that org1 has no twin of (the hopper's membership is
    in both organisations: pointing at it from org1 is legitimate)."""
    target = w.schema.table(fk.ref_table, fk.ref_schema) if w.schema else None
    refs = [c for c in fk.ref_columns if c != (target.tenant_key if target is not None else ORG)]
    org1 = {tuple({**r.values, **r.key}.get(c) for c in refs) for r in w.rows if r.table == fk.ref_table
            and r.org == "org1"}
    return next((r for r in w.rows if r.table == fk.ref_table and r.org == "org2"
                 and tuple({**r.values, **r.key}.get(c) for c in refs) not in org1), None)


def hopper_rows(w: World, tables: list[Table], enums: dict[str, list[str]]) -> None:
    """Rows the hopper (a writer in both organisations) wrote in org1: the org-hopping targets."""
    hopper = w.who("hopper")
    if hopper is None:
        return
    for t in tables:
        # A row the hopper wrote in org1 already (a parent made on demand for one of theirs) serves, where its
        # key allows the hopper one row (organization_id, created_by): a second would be refused (random fuzz).
        mine = [r.values for r in w.rows if r.table == t.name and r.org == "org1" and r.author == hopper]
        me = literal(w.actor_id(hopper)) if mine else None
        authored = {c for c in (col.name for col in t.columns) if all(v.get(c) == me for v in mine)}
        if mine and any(set(cols) <= {t.tenant_key} | authored for cols, _ in unique_keys(t)):
            continue
        rows, statements = len(w.rows), len(w.statements)
        row = add_row(w, t, "org1", hopper, 5000 + len(w.rows), enums, purpose="attack")
        # A row no choice of values makes distinct (one child per parent, and every parent org1 may have is taken:
        # a parent key allows one per author, each author has theirs) would be refused: the hopper has none here,
        # and the case that moves it is not made (random fuzz: a fixture failure).
        if clashes(t, row.values, [r.values for r in w.rows[:rows] if r.table == t.name], unique_keys(t)):
            w.take_back(rows, statements)


def private_functions(schema: Schema) -> list[tuple[str, str, str, bool]]:
    # A volatile private function with a public function of the same signature is an API implementation
    # (the public wrapper calls it, it checks the caller itself): only anon is attacked with it. So is one whose
    # body is read and writes nothing (a membership helper not marked stable): calling it changes nothing.
    wrapped = {(f.name, f.arg_types.replace(" ", "")) for f in schema.functions if f.schema_name == "public"}
    return [(f.schema_name, f.name, ", ".join(f"null::{a.strip()}" for a in f.arg_types.split(",") if a.strip()),
             f.volatility == "volatile" and (f.name, f.arg_types.replace(" ", "")) not in wrapped and f.writes != [])
            for f in schema.functions if f.schema_name == "private" and f.returns != "trigger"]


def blueprint_plan(bp: Blueprint, schema: Schema) -> Plan:
    w = blueprint_world(bp, schema)
    enums = {f"public.{e.name}": e.values for e in schema.enums}
    writer = bp.tenancy.default_member_role.name
    hopper_rows(w, [schema.table(e.name) for e in bp.entities if e.scope in (Scope.organization, Scope.user)], enums)
    # Last: an archived row is left out when a key has no room for it, so it never takes the value of a row
    # the matrix needs (the hopper's, above).
    archived_rows(bp, schema, w, enums, list(w.role_names))
    oracle = Oracle(bp, w)
    manager = bp.tenancy.min_role(Capability.manage_members)

    def build(only: set[str] | None) -> list[Case]:
        with remembered_grants():  # the oracle and the lifecycle scenarios ask the same grants again and again
            return _build(only)

    def _build(only: set[str] | None) -> list[Case]:
        cases = matrix_cases(schema, w, oracle, enums, [v.name for v in schema.views if v.schema_name == "public"],
                             only=only)
        cases += transition_cases(bp, schema, w, oracle, Case, only)
        cases += insert_condition_cases(bp, schema, w, oracle, Case,
                                        lambda t, org, w, author, n: insert_values(t, org, w, author, n, enums), only)
        attacks = attack_cases(schema, w, [r.name for r in bp.tenancy.roles], writer,
                               manager.name if manager else None, schema.table("organization_members"), enums,
                               private_functions(schema))

        def attack(name: str, table: str, actor: str, sql: str) -> None:
            attacks.append(Case(table, "attack", actor, None, "rows", sql, DENIED, attack=name))

        reattribution_attacks(bp, schema, w, enums, row_values, oracle, attack)
        return cases + attacks + lifecycle_cases(bp, schema, w, oracle, Case, row_values)
    notes = [] if w.who("hopper") else [
        "one membership per user: nobody belongs to two organisations, so moving rows between them is "
        "impossible by construction and is not attacked"]
    return Plan(w, build, notes=notes)


__all__ = ["Case", "GenericOracle", "OUTCOME_FUNCTION", "Plan", "add_rows", "attack_cases", "blueprint_plan",
           "matrix_cases", "plan_actors"]


# --- generic mode: any migrations folder, no blueprint ------------------------------------------------

def generic_plan(schema: Schema) -> Plan:
    """Nobody reads or writes another organisation's rows; read-only roles write nothing; anon nothing.

    The schema holds the app's tables of every schema (introspect): the tenant and membership tables may live
    outside public (Basejump's basejump schema); the cases are run on the public tables, what the API serves."""
    enums = enum_labels(schema)
    key = next((t.tenant_key for t in schema.tables if t.tenant_key), None)
    tenant = [t for t in schema.tables if t.tenant_key]
    targets = [(fk.ref_schema, fk.ref_table) for t in tenant for fk in t.foreign_keys if fk.columns == [t.tenant_key]]
    orgs_table = schema.table(*reversed(max(set(targets), key=targets.count))) if targets else None
    people = user_tables(schema.tables)
    members = membership_table(schema.tables, key) or next(
        (t for t in sorted(tenant, key=lambda t: "member" not in t.name)
         if t.column("user_id") is not None and t is not orgs_table), None)
    role_col = role_column(members) if members is not None else None
    user_col = member_column(members, key, people) if members is not None else None
    # A membership naming users by a table of one row per user (profile_id -> profiles): every actor has one.
    user_fk = next((fk for fk in members.foreign_keys if fk.columns == [user_col]), None) if user_col else None
    per_user = schema.table(user_fk.ref_table, user_fk.ref_schema) \
        if user_fk is not None and (user_fk.ref_schema, user_fk.ref_table) in people else None
    roles = _role_labels(members, role_col, enums) if members else ["member"]
    writer = "member" if "member" in roles else roles[0]
    actors, orgs, cast = plan_actors(roles, writer)
    w = World(actors=actors, orgs=orgs, role_names=roles, cast=cast, schema=schema,
              members_table=members.name if members is not None else None)
    notes: list[str] = []
    w.statements += users_sql(w)
    w.owners = owners = {"org1": roles[0], "org2": w.who("owner2")}
    if per_user is not None:
        pk = next(k.columns for k in per_user.constraints if k.kind == "primary key")[0]
        ids = ", ".join(literal(a.user_id) for a in actors.values() if a.user_id)
        w.statements.append(replica_delete(per_user, f"{ident(pk)} in ({ids})"))
        for n, actor in enumerate(a for a in actors.values() if a.user_id):
            add_row(w, per_user, None, actor.name, 100 + n, enums)
    if orgs_table is None:
        notes.append("no tenant table found (no membership table names a tenant key, and no table has "
                     "organization_id): anon checks only")
    else:
        for label, owner in owners.items():
            n = len(w.statements)
            values = row_values(orgs_table, None, w, owner, n, enums, with_id=True)
            values["id"] = literal(orgs[label])
            w.add(insert_sql(orgs_table, values) + ";",
                  Row(orgs_table.name, label, owner, {"id": literal(orgs[label])}, values=values),
                  fallback=fuller(orgs_table, None, w, owner, n, enums, values))
    if members is not None and orgs_table is not None and members.tenant_key:
        # Triggers may have made memberships already (an organisation's owner joins it on insert): the world's
        # own take their place, so every actor holds exactly the role planned.
        w.statements.append(replica_delete(members, f"{ident(members.tenant_key)} in ({literal(orgs['org1'])}, "
                                                    f"{literal(orgs['org2'])})"))
        role_type = members.column(role_col).type if role_col else None
        for actor in actors.values():
            for label, role in actor.memberships.items():
                values = row_values(members, label, w, actor.name, len(w.statements), enums, with_id=True)
                values[user_col or "user_id"] = literal(actor.user_id)
                if role_col is not None:
                    values[role_col] = f"{literal(role)}::{role_type}"
                purpose = "attack" if actor.name == w.who("hopper") else "matrix"
                w.add(insert_sql(members, values) + ";", Row(members.name, label, actor.name,
                                                             pk_key(members, values), purpose=purpose,
                                                             values=values))
    skip = {t.qualified for t in (orgs_table, members, per_user) if t is not None}
    # What clients reach: the public tables (the others are set up above, or left to the functions that use them).
    served = [t for t in schema.tables if t.schema_name == "public"]
    rest = [t for t in served if t.qualified not in skip]
    if orgs_table is not None and not any(t.tenant_key for t in served):
        away = sorted({t.schema_name for t in tenant})
        notes.append(f"no tenant table in the API's schemas (they are in {', '.join(away)}): clients reach them only "
                     "through functions, which the generic matrix does not call; add a table keyed by "
                     f"{key} in public to have it attacked")
    ids = ", ".join(literal(a.user_id) for a in actors.values() if a.user_id)
    for t in rest:
        pk = next((k.columns for k in t.constraints if k.kind == "primary key"), [])
        if len(pk) == 1 and any(fk.columns == pk and fk.ref_schema == "auth" for fk in t.foreign_keys):
            # One row per user (a profile) that a signup trigger may have made: the world's own takes its place.
            w.statements.append(replica_delete(t, f"{ident(pk[0])} in ({ids})"))
    add_rows(w, schema, rest, enums, {"org1": [writer], "org2": [owners["org2"]]}, global_author=roles[0])
    hopper_rows(w, [t for t in rest if t.tenant_key is not None], enums)
    w.statements += [f"refresh materialized view public.{ident(v.name)};" for v in schema.views if v.materialized]
    manager = next((r for r in ("admin", "manager") if r in roles), None)
    public = schema.model_copy(update={"tables": served})

    def build(only: set[str] | None) -> list[Case]:
        with remembered_grants():  # the oracle and the lifecycle scenarios ask the same grants again and again
            return _build(only)

    def _build(only: set[str] | None) -> list[Case]:
        cases = matrix_cases(public, w, GenericOracle(members.name if members else None), enums,
                             [v.name for v in schema.views], view_key=key or ORG, only=only)
        return cases + attack_cases(public, w, roles, writer, manager, members, enums, private_functions(schema))
    return Plan(w, build, notes=notes + [str(c) for c in crowded_ranges(w, schema.tables)])


def _role_labels(members: Table, role_col: str | None, enums: dict[str, list[str]]) -> list[str]:
    """The membership roles, most privileged first (an enum may list them either way)."""
    col = members.column(role_col) if role_col else None
    labels = (enums.get(col.type) or enums.get(col.type.replace("public.", "")) or allowed_values(members, role_col)
              if col is not None else []) or ["member"]
    order = ("owner", "admin", "manager", "editor", "member", "viewer")
    if labels and labels[-1] in ("owner", "admin") and labels[0] not in ("owner", "admin"):
        labels = list(reversed(labels))
    return sorted(labels, key=lambda r: order.index(r) if r in order else len(order))
