"""Audit of blueprints: through the SQL they render, and the model-level rules the spec's checklist reads.

The rules' own cases (SQL in, findings out) are data in tests/cases, run by test_audit_rules.py; here
the first fifteen rules also fire on a broken *generator* model, which the spec renderer audits directly.
"""

from __future__ import annotations

import pgparse
import pytest

from blueprint_mcp.audit import RULES, audit_schema, audit_sql, body
from blueprint_mcp.audit.fold import fold
from blueprint_mcp.audit.parse import read_sql
from blueprint_mcp.model.schema import Command, Function, Policy, Schema, View
from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.templates import load_template, template_names
from blueprint_mcp.tools import audit_spec


def habit_schema() -> Schema:
    return build_schema(load_template("habit-tracker"))


def _habits(s: Schema):
    return s.table("habits")


def nullable_tenant_key(s):
    _habits(s).column("organization_id").nullable = True


def drop_tenant_indexes(s):
    t = s.table("sessions")
    t.constraints = [c for c in t.constraints if c.kind != "unique"]
    t.indexes = [i for i in t.indexes if i.columns[0] != "organization_id"]


def disable_rls(s):
    _habits(s).rls_enabled = False


def drop_policies(s):
    _habits(s).policies = []


def for_all(s):
    _habits(s).policies[0].command = "all"


def second_select(s):
    _habits(s).policies.append(Policy(name="extra", command=Command.select, roles=["authenticated"], using="true"))


def no_role(s):
    _habits(s).policies[0].roles = []


def no_with_check(s):
    next(p for p in _habits(s).policies if p.command == Command.update).check = None


def mutable_search_path(s):
    s.functions[0].search_path = None


def exposed_definer(s):
    s.functions.append(Function(schema_name="public", name="join_org", returns="void", language="sql",
                                security_definer=True, body="select", execute_roles=["anon", "authenticated"]))


def definer_view(s):
    next(v for v in s.views if v.schema_name == "public").security_invoker = False


def exposed_matview(s):
    s.views.append(View(schema_name="public", name="mv", query="select 1", materialized=True))


def unindexed_fk(s):
    t = s.table("habit_check_ins")
    t.indexes = [i for i in t.indexes if i.columns[:2] != ["organization_id", "habit_id"]]


def no_pk(s):
    _habits(s).constraints = [c for c in _habits(s).constraints if c.kind != "primary key"]


def single_column_tenant_fk(s):
    fk = next(f for f in s.table("habit_check_ins").foreign_keys if f.ref_table == "habits")
    fk.columns, fk.ref_columns = ["habit_id"], ["id"]


CASES = {
    "BP001": nullable_tenant_key, "BP002": drop_tenant_indexes, "BP003": disable_rls, "BP004": drop_policies,
    "BP005": for_all, "BP006": second_select, "BP007": no_role, "BP008": no_with_check,
    "BP009": mutable_search_path, "BP010": exposed_definer, "BP011": definer_view, "BP012": exposed_matview,
    "BP013": unindexed_fk, "BP014": no_pk, "BP015": single_column_tenant_fk,
    "BP017": disable_rls, "BP024": exposed_definer,
}


def test_model_cases_name_schema_rules():
    assert set(CASES) <= {r.id for r in RULES.values() if r.target == "schema"}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_on_its_case_and_not_on_the_generated_schema(rule_id):
    assert [f for f in audit_schema(habit_schema()) if f.rule_id == rule_id] == []
    broken = habit_schema()
    CASES[rule_id](broken)
    hits = [f for f in audit_schema(broken) if f.rule_id == rule_id]
    assert len(hits) == 1, hits
    assert hits[0].name == RULES[rule_id].name and hits[0].remediation


@pytest.mark.parametrize("template", template_names())
def test_generated_backends_read_back_from_their_sql_have_no_findings_at_all(template):
    result = audit_spec(template=template)
    assert result.ok is True
    assert result.findings == []


@pytest.mark.parametrize("template", template_names())
def test_generated_model_audited_directly_has_no_findings_either(template):
    # The spec renderer audits the model without SQL: it must agree with the SQL audit.
    assert audit_schema(build_schema(load_template(template))) == []


def test_findings_are_ordered_by_severity_then_position():
    s = habit_schema()
    s.table("streaks").policies = []  # INFO
    disable_rls(s)  # ERROR
    mutable_search_path(s)  # WARN
    found = audit_schema(s)
    levels = [f.level.value for f in found]
    assert levels == sorted(levels, key=["ERROR", "WARN", "INFO"].index)
    assert set(levels) == {"ERROR", "WARN", "INFO"}


# Lint 0024's constant folding: every spelling of a constant folds, and no condition is taken for one.
FOLDED = [
    ("true is true", True), ("true is not false", True), ("null is not true", True), ("(select true)", True),
    ("( SELECT true AS bool)", True), ("coalesce(null, true)", True), ("COALESCE(NULL::boolean, true)", True),
    ("coalesce(true, x)", True), ("greatest(false, true)", True), ("greatest(null, true)", True),
    ("least(false, true)", False), ("1 = 1", True), ("1.0 = 1.00", True), ("1::boolean", True),
    ("' yes '::boolean", True), ("true::text = 'true'", True), ("true or owner_id = auth.uid()", True),
    ("false and x", False), ("null is null", True),
]
NOT_CONSTANT = [
    "coalesce(x, true)", "x and true", "(select true where false)", "(select true from t)", "(select true limit 0)",
    "(select true union select true)", "(select x)", "greatest('a', 'B')", "greatest(x, true)", "1 is true",
    "'maybe'::boolean", "'2024-1-1'::date <> '2024-01-01'::date", "'a '::char(2) <> 'a'", "'abc'::varchar(2) <> 'ab'", "'{a}'::text[] <> '{ a }'", "null = null",
    "not null", "owner_id = (select auth.uid())", "x is null",
]


def _expression(text: str):
    return pgparse.parse(f"select {text}")[0]["stmt"]["SelectStmt"]["targetList"][0]["ResTarget"]["val"]


@pytest.mark.parametrize(("text", "value"), FOLDED)
def test_constant_spellings_fold_to_their_value(text, value):
    assert fold(_expression(text)) is value


@pytest.mark.parametrize("text", NOT_CONSTANT)
def test_conditions_and_nulls_never_fold_to_a_boolean(text):
    assert fold(_expression(text)) is None


LINKED_TABLE = """
create table public.invoices (id uuid primary key, organization_id uuid not null, client_id uuid not null);
create index on public.invoices (organization_id, client_id);
create index on public.invoices (client_id);
alter table public.invoices enable row level security;
create policy invoices_select on public.invoices for select to authenticated using ({});
"""
LINKED = "select private.clients_user_id_linked_ids()"


@pytest.mark.parametrize("using, flagged", [
    # the generated linked form: the array arm is indexable, the hashed IN spares each row the array walk
    (f"client_id in ({LINKED}) and client_id = any (array({LINKED}))", False),
    (f"organization_id = any (array(select private.organization_ids_with_role('admin'))) or "
     f"(client_id in ({LINKED}) and client_id = any (array({LINKED})))", False),
    (f"client_id = any (array({LINKED})) and client_id in ({LINKED})", False),
    (f"client_id in ({LINKED})", True),
    # the array arm reads another set, or another column, or sits across an OR: the IN stays the only way
    (f"client_id in ({LINKED}) and client_id = any (array(select private.other_ids()))", True),
    (f"client_id in ({LINKED}) and organization_id = any (array({LINKED}))", True),
    (f"client_id in ({LINKED}) or client_id = any (array({LINKED}))", True),
])
def test_an_in_sub_query_beside_its_indexable_array_form_is_not_the_slow_form(using, flagged):
    findings = audit_sql([("f.sql", LINKED_TABLE.format(using))])
    assert [f.object for f in findings if f.rule_id == "BP031"] == (["public.invoices.invoices_select"] if flagged else [])


@pytest.mark.parametrize("types, flagged", [
    ("", "accepts files of any type"),
    (", null", "accepts files of any type"),
    (", array['image/png', 'image/svg+xml']::text[]", "accepts image/svg+xml"),
    (", '{image/png,text/html}'", "accepts text/html"),
    (", array['image/*']", "accepts image/*"),
    (", array['image/png', 'application/pdf']", None),
    (", '{image/png}'::text[]", None),
    (", private.allowed_types()", None),  # computed: nothing to read, nothing claimed
])
def test_bp048_reads_the_types_a_public_bucket_accepts(types, flagged):
    column = ", allowed_mime_types" if types else ""
    sql = f"insert into storage.buckets (id, name, public{column}) values ('assets', 'assets', true{types});"
    found = [f.message for f in audit_sql([("f.sql", sql)]) if f.rule_id == "BP048"]
    assert found == ([f"Public bucket assets {flagged}."] if flagged else [])


def test_bp031_compares_deep_selects_without_recursing():
    """The review found the sibling comparison recursing: 300 nested parentheses raised RecursionError. Too deep
    to compare, the two selects count as different: the IN is reported, as any IN alone would be."""
    deep = "1" + " + (1" * 300 + ")" * 300
    sql = LINKED_TABLE.format(f"client_id in (select {deep}) and client_id = any (array(select {deep}))")
    assert [f.rule_id for f in audit_sql([("f.sql", sql)]) if f.rule_id == "BP031"] == ["BP031"]


def test_supabases_documented_storage_policy_is_not_a_per_row_helper_call():
    """Found by an independent check: BP032 reported storage.foldername(name), the platform's own helper in the
    storage policies Supabase documents, as a user-defined function called per row."""
    sql = ("create policy own_folder on storage.objects for select to authenticated using "
           "(bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);")
    assert [f.rule_id for f in audit_sql([("f.sql", sql)]) if f.rule_id == "BP032"] == []


@pytest.mark.parametrize("body, found", [
    ("execute 'select * from public.' || tbl", ["tbl (body line 3)"]),
    ("execute format('select * from public.%s', tbl)", ["tbl (body line 3)"]),
    ("execute format('select * from public.%1$s where x = %2$L', tbl, tbl)", ["tbl (body line 3)"]),
    ("execute format('select * from public.%I where x = %L', tbl, tbl)", []),
    ("execute 'select * from public.' || quote_ident(tbl)", []),
    ("execute 'select * from public.t where id = ' || id", []),
    ("execute 'select * from public.t where id = ' || tbl::uuid", []),
    ("execute 'select * from public.t where name = $1' using tbl", []),
    ("q := 'select * from ' || lower(tbl);\n  execute q", ["tbl (body line 4)"]),
    ("q := 'select 1';\n  execute q", []),
    ("execute tbl", ["tbl (body line 3)"]),
    ("execute $1", ["$1 (body line 3)"]),
    ("return query execute 'select * from public.' || tbl", ["tbl (body line 3)"]),
])
def test_dynamic_sql_made_of_a_text_parameter_is_found_however_it_is_spelled(body, found):
    sql = (f"create function public.f(tbl text, id uuid) returns setof record language plpgsql security definer "
           f"set search_path = '' as $$\ndeclare q text;\nbegin\n  {body};\nend $$;")
    sql = sql.replace("$$\ndeclare q text;\nbegin\n", "$$\ndeclare q text; begin\n")
    f = next(f for f in read_sql([("f.sql", sql)]).schema.functions if f.name == "f")
    assert f.dynamic_inputs == found


@pytest.mark.parametrize("statement, read", [
    ("execute 'delete from public.t where id = $1' using id", ["delete from public.t where id = id"]),
    ("execute format('delete from public.%I where id = $1', 'logs') using id",
     ['delete from public."logs" where id = id']),
    ("if tbl not in ('a', 'b') then return; end if;\n"
     "  execute format('select * from public.%I where id = %L', tbl, id)",
     ['select * from public."a" where id = id', 'select * from public."b" where id = id']),
    ("if tbl = any (array['a']) then execute format('select * from public.%s where x like ''a%%''', tbl); end if",
     ["select * from public.a where x like 'a%'"]),
    ("execute format('select * from public.%I', tbl)", []),  # any table: the text is not spelled out
    ("execute 'select * from public.' || tbl", []),
    ("execute format('select %2$s from public.%1$I', 'a', 'x')", ['select x from public."a"']),
])
def test_an_execute_whose_text_the_body_spells_out_reads_as_the_statements_it_may_run(statement, read):
    sql = (f"create function public.f(tbl text, id uuid) returns setof record language plpgsql security definer "
           f"set search_path = '' as $$ begin\n  {statement};\nend $$;")
    facts = body._read_plpgsql_body(sql, "public", [("tbl", "text"), ("id", "uuid")])
    statements = [_shape(tree[0]["stmt"]) for tree in facts.trees if "SelectStmt" not in tree[0]["stmt"]
                  or tree[0]["stmt"]["SelectStmt"].get("fromClause")]
    assert statements == [_shape(pgparse.parse(text)[0]["stmt"]) for text in read]


def _shape(tree):
    """A parse tree without its locations (a statement read out of an EXECUTE has its own)."""
    if isinstance(tree, dict):
        return {k: _shape(v) for k, v in tree.items() if k not in ("location", "stmt_location", "stmt_len")}
    return [_shape(v) for v in tree] if isinstance(tree, list) else tree


@pytest.mark.parametrize("body, language, found", [
    ("select (auth.jwt() -> 'user_metadata' ->> 'org_id')::uuid", "sql", True),
    ("select (auth.jwt() -> 'app_metadata' ->> 'org_id')::uuid", "sql", False),
    ("select (raw_user_meta_data ->> 'org_id')::uuid from auth.users where id = auth.uid()", "sql", True),
    ("declare o uuid := (auth.jwt() -> 'user_metadata' ->> 'org_id')::uuid;\nbegin\n  return o;\nend", "plpgsql",
     True),
    ("begin\n  return (current_setting('request.jwt.claims', true)::jsonb -> 'user_metadata' ->> 'org')::uuid;\nend",
     "plpgsql", True),
    ("begin\n  return (auth.jwt() ->> 'org')::uuid;\nend", "plpgsql", False),
])
def test_a_policy_trusting_user_metadata_through_a_helper_is_found(body, language, found):
    sql = (f"create function public.current_org() returns uuid language {language} stable set search_path = '' "
           f"as $$\n{body}\n$$;\ncreate table public.notes (id uuid primary key, organization_id uuid not null);\n"
           "alter table public.notes enable row level security;\ncreate policy p on public.notes for select "
           "to authenticated using (organization_id = (select public.current_org()));")
    assert [f.rule_id for f in audit_sql([("f.sql", sql)]) if f.rule_id == "BP052"] == (["BP052"] if found else [])


def test_a_declared_default_made_of_a_parameter_is_pasted_input_too():
    sql = ("create function public.f(tbl text) returns void language plpgsql security definer set search_path = '' "
           "as $$\ndeclare q text := 'select * from ' || tbl;\nbegin\n  execute q;\nend $$;")
    assert [f.dynamic_inputs for f in read_sql([("f.sql", sql)]).schema.functions] == [["tbl (body line 4)"]]


@pytest.mark.parametrize("condition", ["new.organization_id <> old.organization_id",
                                       "old.organization_id is distinct from new.organization_id"])
def test_a_trigger_that_refuses_a_changed_tenant_key_guards_it(condition):
    """BP030 took only a trigger that sets the key back (or is given or fired by it) for a guard; one that compares
    it with the old row and raises guards it as well (audit-vs-verify probe: a false positive)."""
    table = """
create table public.organizations (id uuid primary key);
create table public.habits (id uuid primary key, organization_id uuid not null references public.organizations (id),
                            created_by uuid not null default auth.uid());
create index on public.habits (organization_id);
alter table public.habits enable row level security;
create policy habits_update on public.habits for update to authenticated
  using (created_by = (select auth.uid())) with check (created_by = (select auth.uid()));
"""
    guard = f"""
create function public.stay() returns trigger language plpgsql set search_path = '' as $$
begin
  if {condition} then raise exception 'organization_id is immutable'; end if;
  return new;
end $$;
create trigger habits_stay before update on public.habits for each row execute function public.stay();
"""
    assert [f.rule_id for f in audit_sql([("m.sql", table)])].count("BP030") == 1
    assert "BP030" not in [f.rule_id for f in audit_sql([("m.sql", table + guard)])]


@pytest.mark.parametrize("user_id, reads, tied", [
    ("not null", "public.organization_members m", True),
    ("", "public.organization_members m", False),  # a seat nobody holds yet meets a caller without auth.uid()
    # the missing side of an outer join reads NULL whatever the table declares: member-less organisations
    ("not null", "public.organizations o left join public.organization_members m on m.organization_id = o.id", False),
])
def test_is_not_distinct_from_ties_to_the_caller_only_a_column_that_is_never_null(user_id, reads, tied):
    """Evasion round 9's fp03: `m.user_id is not distinct from (select auth.uid())` is `=` where m.user_id holds no
    NULL. Read alike in a policy's helper (BP054) and in a definer function's own check (BP068)."""
    sql = f"""
create schema private;
create table public.organizations (id uuid primary key);
create table public.organization_members (
  organization_id uuid not null references public.organizations (id),
  user_id uuid {user_id} references auth.users (id), role text not null, unique (organization_id, user_id));
alter table public.organization_members enable row level security;
alter table public.organizations enable row level security;
create function private.is_member(p_org uuid) returns boolean language sql stable security definer
  set search_path = '' as $$ select exists (select 1 from {reads}
    where m.organization_id = p_org and m.user_id is not distinct from (select auth.uid())) $$;
create policy p on public.organizations for select to authenticated using ((select private.is_member(id)));
grant execute on function private.is_member(uuid) to authenticated;
create function public.is_member(p_org uuid) returns boolean language sql stable set search_path = ''
  as $$ select private.is_member(p_org) $$;
"""
    found = [f.rule_id for f in audit_sql([("m.sql", sql)]) if f.rule_id in ("BP054", "BP068")]
    assert sorted(found) == ([] if tied else ["BP054", "BP068"])


@pytest.mark.parametrize("columns, reported", [("muted", False), ("muted, role", True), (None, True)])
def test_a_membership_update_clients_may_make_only_to_harmless_columns_is_no_client_write(columns, reported):
    """BP029 reported every client UPDATE policy on the membership table; where clients are granted UPDATE of
    other columns only (a member mutes their notifications), nobody joins, moves or climbs (audit-vs-verify probe)."""
    grant = (f"revoke update on public.organization_members from authenticated;\n"
             f"grant update ({columns}) on public.organization_members to authenticated;\n") if columns else \
        "grant update on public.organization_members to authenticated;\n"
    sql = """
create table public.organizations (id uuid primary key);
create table public.organization_members (
  organization_id uuid not null references public.organizations (id),
  user_id uuid not null references auth.users (id), role text not null, muted boolean not null default false,
  primary key (organization_id, user_id));
alter table public.organization_members enable row level security;
create policy members_self_update on public.organization_members for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
""" + grant
    assert ("BP029" in [f.rule_id for f in audit_sql([("m.sql", sql)])]) is reported


def test_the_generator_says_where_the_blueprint_lets_a_read_only_role_write():
    """access-lab gives viewer a write capability (review): the rendered policy carries the blueprint's intent as a
    suppression of BP059, and without it the audit reports the policy (the rule is not tuned to generated SQL)."""
    from datetime import datetime
    from pathlib import Path

    from blueprint_mcp.templates import load_blueprint_file
    from blueprint_mcp.tools import migration_files

    bp = load_blueprint_file(Path(__file__).with_name("fixtures") / "blueprints" / "access-lab.yaml")
    files = migration_files(bp, datetime(2025, 1, 1))
    sql = [(p, files[p]) for p in sorted(files) if p.startswith("supabase/migrations/")]
    marked = sum(text.count("-- blueprint: ignore BP059 the blueprint lets viewer") for _, text in sql)
    assert marked >= 1
    assert [f for f in audit_sql(sql) if f.rule_id in ("BP059", "BP038")] == []
    bare = [(p, "\n".join(line for line in text.splitlines() if "blueprint: ignore BP059" not in line))
            for p, text in sql]
    assert len([f for f in audit_sql(bare) if f.rule_id == "BP059"]) == marked


def test_the_generator_says_where_a_blueprint_ranks_roles_against_their_usual_names():
    """A blueprint may call its top role viewer and its least owner: the role enum then lists owner first, which
    BP064 reads as ranks reversed. The rendered type carries the blueprint's order as a suppression; without it
    the audit reports the enum (its helper compares roles by order), and the usual order needs none."""
    from blueprint_mcp.tools import blueprint_sql, resolve_blueprint

    every = ["read", "write", "manage_members", "manage_billing", "delete_organization"]
    data = {"app": {"name": "X", "slug": "x"}, "entities": [{"name": "projects", "fields": [
        {"name": "title", "type": "text"}]}], "tenancy": {"roles": [
            {"name": "viewer", "capabilities": every}, {"name": "admin", "capabilities": ["read", "write",
                                                                                      "manage_members"]},
            {"name": "owner", "capabilities": ["read"]}]}}
    sql = blueprint_sql(resolve_blueprint(None, data), "x")
    assert sum(text.count("-- blueprint: ignore BP064") for _, text in sql) == 1
    assert [f for f in audit_sql(sql) if f.rule_id in ("BP064", "BP038")] == []
    bare = [(p, "\n".join(line for line in text.splitlines() if "blueprint: ignore BP064" not in line))
            for p, text in sql]
    assert [f.object for f in audit_sql(bare) if f.rule_id == "BP064"] == ["public.member_role"]
    usual = blueprint_sql(resolve_blueprint("b2b-saas", None), "b2b-saas")
    assert not any("BP064" in text for _, text in usual)
    # Two names out of their usual order are said too (random-seed fuzz: owner, member, admin; BP064 reads a
    # single inversion since it learnt enum positions, and the suppression still asked for all of them reversed).
    data["tenancy"]["roles"] = [{"name": "owner", "capabilities": every}, {"name": "member", "capabilities": []},
                                {"name": "admin", "capabilities": []}]
    sql = blueprint_sql(resolve_blueprint(None, data), "x")
    assert sum(text.count("-- blueprint: ignore BP064") for _, text in sql) == 1
    assert [f for f in audit_sql(sql) if f.rule_id == "BP064"] == []


_ROLES = """create type public.member_role as enum ('viewer', 'member', 'admin', 'owner');
create table public.organizations (id uuid primary key default gen_random_uuid(), name text);
create table public.organization_members (organization_id uuid not null references public.organizations (id),
  user_id uuid not null references auth.users (id), role public.member_role not null,
  primary key (organization_id, user_id));
alter table public.organization_members enable row level security;
create function private.org_ids_with_role(min_role public.member_role) returns setof uuid
  language sql stable security definer set search_path = '' as $$
  select m.organization_id from public.organization_members m
   where m.user_id = (select auth.uid()) and m.role >= min_role $$;
"""


@pytest.mark.parametrize("added, reported", [
    ("add value 'guest'", True),  # appended: the greatest value, above owner (evasion round 5's e11)
    ("add value if not exists 'guest' after 'owner'", True),
    ("add value 'guest' before 'viewer'", False),
    ("add value 'auditor'", False),  # a name the rule cannot rank
    ("add value 'billing' after 'admin'", False),
])
def test_a_role_added_to_the_enum_is_ranked_where_postgresql_puts_it(added, reported):
    sql = _ROLES + f"alter type public.member_role {added};"
    assert any(f.rule_id == "BP064" for f in audit_sql([("m.sql", sql)])) is reported


@pytest.mark.parametrize("ranking, reported", [
    ("m.role = any (enum_range(min_role, null))", True),  # evasion round 6's e07: no <, <=, > or >=
    ("m.role between min_role and 'owner'", True),
    ("m.role = any (array['admin', 'owner']::public.member_role[])", False),  # a list: no order
    ("m.role = any (enum_range(null::public.member_role))", False),  # every value (review)
])
def test_an_enum_ranked_by_its_range_or_between_bounds_is_ordered_use(ranking, reported):
    sql = _ROLES.replace("m.role >= min_role", ranking) + "alter type public.member_role add value 'guest';"
    assert any(f.rule_id == "BP064" for f in audit_sql([("m.sql", sql)])) is reported


@pytest.mark.parametrize("check, reported", [
    ("m.role >= min_role", True),  # collation order: 'viewer' >= 'admin' (evasion round 5's e08)
    ("m.role = any (case min_role when 'viewer' then array['viewer', 'editor', 'admin'] "
     "when 'editor' then array['editor', 'admin'] else array['admin'] end)", False),
])
def test_a_text_role_compared_by_order_is_reported(check, reported):
    sql = _ROLES.replace("role public.member_role not null", "role text not null check (role in ('viewer', "
                         "'editor', 'admin'))").replace("min_role public.member_role", "min_role text") \
        .replace("m.role >= min_role", check)
    assert any(f.rule_id == "BP064" for f in audit_sql([("m.sql", sql)])) is reported


_STAMP = """create function private.stamp() returns trigger language plpgsql set search_path = '' as $$
declare me uuid := auth.uid();
begin
  {body}
  return new;
end $$;
create trigger projects_stamp before insert on public.projects for each row execute function private.stamp();
"""


@pytest.mark.parametrize("body, writer", [
    ("new.created_by := me;", True),  # through a variable holding the caller's id
    ("new.created_by = (select auth.uid());", True),
    ("select auth.uid() into new.created_by;", True),
    ("NEW.created_by := auth.uid()::uuid;", True),
    ("new.created_by := coalesce(new.created_by, auth.uid());", False),  # the client may choose it
    ("new.name := me;", False),
])
def test_bp091_reads_the_writer_column_a_trigger_stamps_from_the_body(body, writer):
    import yaml
    from pathlib import Path
    case = yaml.safe_load((Path(__file__).parent / "cases" / "BP091.yaml").read_text())
    sql = case["fail_sql"].replace("created_by uuid default auth.uid() references", "created_by uuid references")
    sql = sql.replace("alter table public.projects enable", _STAMP.format(body=body) + "alter table public.projects "
                      "enable", 1)
    assert "private.stamp" in sql
    found = [f for f in audit_sql([("m.sql", sql)]) if f.rule_id == "BP091" and not f.object.startswith(
        "public.hr_requests.")]
    # projects' select and update ways, and invoices' chain to the project's writer (hr_requests' pinned requester
    # is another case's)
    assert len(found) == (3 if writer else 0)


def test_what_holds_a_function_follows_its_rename_and_new_schema_and_a_later_namesake_does_not():
    """Audit-evasion round 9, e05: policies, triggers and views hold a function by its OID, so ALTER FUNCTION ...
    RENAME (or SET SCHEMA) carries them along; a function made afterwards under the old name is held by what is made
    afterwards only. Bodies name functions and are resolved when they run: they are left as written."""
    from blueprint_mcp.audit.tree import function_name, nodes

    sql = """
    create schema private;
    create table public.t (id uuid primary key, organization_id uuid not null);
    create function private.guard() returns trigger language plpgsql as $$ begin return new; end $$;
    create function private.ok(o uuid) returns boolean language sql stable as $$ select true $$;
    create trigger t_guard before update on public.t for each row execute function private.guard();
    create policy early on public.t for select to authenticated using (private.ok(organization_id));
    create view public.v as select private.ok(organization_id) as fine from public.t;
    alter function private.ok(uuid) rename to ok_v1;
    alter function private.guard() set schema public;
    create function private.ok(o uuid) returns boolean language sql stable as $$ select false $$;
    create function private.guard() returns trigger language plpgsql as $$ begin return new; end $$;
    create policy late on public.t for update to authenticated using (private.ok(organization_id));
    """
    schema = read_sql([("m.sql", sql)]).schema
    t = schema.table("t", "public")
    called = {p.name: [function_name(b) for k, b in nodes(p.using_tree) if k == "FuncCall"] for p in t.policies}
    assert called == {"early": ["private.ok_v1"], "late": ["private.ok"]}
    assert [trg.function for trg in t.triggers] == ["public.guard"]
    assert next(v for v in schema.views if v.name == "v").calls == ["private.ok_v1"]


@pytest.mark.parametrize("column, ends", [
    ("removed_at timestamptz", True), ("deleted_on date", True), ("is_active boolean not null default true", True),
    ("suspended boolean", True), ("status public.membership_status not null default 'invited'", True),
    ("status text not null default 'active'", True), ("status text not null default 'available'", False),
    ("joined_at timestamptz not null default now()", False), ("removed_at text", False), ("active_theme text", False),
])
def test_bp095_reads_a_column_saying_a_membership_ended_or_has_not_begun(column, ends):
    from blueprint_mcp.audit.parse import read_sql
    from blueprint_mcp.audit.rules.helper_rules import _lifecycle_columns

    sql = ("create type public.membership_status as enum ('invited', 'active', 'removed');\n"
           "create table public.organizations (id uuid primary key);\n"
           "create table public.organization_members (organization_id uuid not null references public.organizations "
           f"(id), user_id uuid not null references auth.users (id), role text not null, {column}, "
           "primary key (organization_id, user_id));")
    schema = read_sql([("m.sql", sql)]).schema
    found = _lifecycle_columns(schema, schema.table("organization_members", "public"))
    assert found == ([column.split()[0]] if ends else [])


def test_policies_and_views_follow_a_renamed_or_moved_table_and_a_later_namesake_does_not():
    """As a function's: a policy's sub-query and a view hold a relation by its OID (a membership table renamed _old
    with a new one made under its name leaves them reading the old one)."""
    from blueprint_mcp.audit.tree import nodes

    sql = """
    create schema archive;
    create table public.members (organization_id uuid not null, user_id uuid not null);
    create table public.notes (id uuid primary key, organization_id uuid not null);
    create policy early on public.notes for select to authenticated
      using (exists (select 1 from members m where m.organization_id = notes.organization_id));
    create view public.roster as select m.user_id from public.members m;
    alter table public.members rename to members_old;
    alter table public.members_old set schema archive;
    create table public.members (organization_id uuid not null, user_id uuid not null);
    create policy late on public.notes for update to authenticated
      using (exists (select 1 from members m where m.organization_id = notes.organization_id));
    """
    schema = read_sql([("m.sql", sql)]).schema
    read = {p.name: [(b.get("schemaname"), b["relname"]) for k, b in nodes(p.using_tree) if k == "RangeVar"]
            for p in schema.table("notes", "public").policies}
    assert read == {"early": [("archive", "members_old")], "late": [(None, "members")]}
    roster = next(v for v in schema.views if v.name == "roster")
    assert roster.reads == ["archive.members_old"]
    assert [(b.get("schemaname"), b["relname"]) for tree in roster._body.trees for k, b in nodes(tree)
            if k == "RangeVar"] == [("archive", "members_old")]


_AUTO_RLS = """
create function public.rls_auto_enable() returns event_trigger language plpgsql set search_path = '' as $$
declare
  cmd record;
begin
  for cmd in select * from pg_event_trigger_ddl_commands() loop
    {test}
      execute format('alter table %s enable row level security', cmd.object_identity);
    end if;
  end loop;
end $$;
create event trigger ensure_rls on ddl_command_end when tag in ('CREATE TABLE')
  execute function public.rls_auto_enable();
create table public.notes (id int primary key, body text);
create policy notes_select on public.notes for select to authenticated using (true);
"""


@pytest.mark.parametrize("test, enabled", [
    ("if cmd.schema_name = 'public' then", True),
    ("if cmd.schema_name not in ('audit', 'private') and cmd.object_identity like 'public.%' then", True),
    ("if cmd.schema_name = 'app' then", False),
    ("if cmd.schema_name = any (array['public']) then", True),  # evasion round 21 fp04: an array of literals
    # Tests not read (a variable, the OID, the name taken apart): the tables stay reported.
    ("if cmd.schema_name = any (v_schemas) then", False),
    ("if cmd.objid <> 'public.audit_log'::regclass then", False),
    ("if split_part(cmd.object_identity, '.', 2) <> 'audit_log' then", False),
    ("if 'public' = cmd.schema_name then", False),
    # Evasion round 12: command_tag compares as written (e02); a guard clause skips what it admits (fp01). Round 16
    # reads the tree: a guard testing two things skips only where both hold (public tables go on, as PostgreSQL
    # shows in tests/corpus/platform.yaml).
    ("if cmd.command_tag in ('create table') then", False),
    ("if cmd.command_tag in ('CREATE TABLE') then", True),
    ("continue when cmd.schema_name <> 'public';\n    if true then", True),
    ("continue when cmd.schema_name = 'public';\n    if true then", False),
    ("continue when cmd.schema_name <> 'public' and cmd.object_type <> 'table';\n    if true then", True),
    ("continue when cmd.schema_name = 'public' or cmd.object_type <> 'table';\n    if true then", False),
])
def test_an_event_trigger_turns_rls_on_only_where_its_function_is_read_whole(test, enabled):
    found = {f.rule_id for f in audit_sql([("m.sql", _AUTO_RLS.format(test=test))])}
    assert ({"BP003", "BP017"} & found == set()) is enabled
    assert read_sql([("m.sql", _AUTO_RLS.format(test=test))]).schema.table("notes").rls_enabled is enabled
