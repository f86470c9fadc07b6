"""Teeth: every mutation of habit-tracker's policies that changes who can do what is caught by verify."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from blueprint_mcp.model.schema import Schema
from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.sql.render import rls_sql, schema_sql, triggers_sql
from blueprint_mcp.templates import load_blueprint_file, load_template
from blueprint_mcp.verify.matrix import archives
from blueprint_mcp.verify.run import verify

pytestmark = pytest.mark.postgres

HELPER = re.compile(r"organization_ids_with_role\('([a-z_]+)'\)")

# An UPDATE policy repeats one predicate in USING and WITH CHECK over columns a trigger keeps
# immutable (tenant key, owner, id): old row and new row always get the same answer, so weakening
# only one side changes no outcome. That redundancy is deliberate defence in depth.
SAME_BOTH_SIDES = "UPDATE with identical USING and WITH CHECK over immutable columns: the other side decides"


AUTHOR_NOT_WRITABLE = ("INSERT check that the author is the caller: clients cannot write the author column "
                       "(no column grant), its default is auth.uid()")
AUTHOR_ATOM = re.compile(r"\b([a-z_]+) = \(select auth\.uid\(\)\)")
ARCHIVED_NO_OP = ("DELETE policy's archived-row branch: a client's delete of an archived row changes nothing (it keeps "
                  "when it was archived, A24), so who reaches one is moot")
ARCHIVED_BRANCH = "(archived_at is null or "


def equivalent(schema: Schema, name: str) -> str | None:
    """Why a mutation cannot change who can do what, or None."""
    policy_name, _, change = name.partition(": ")
    for t in schema.tables:
        for p in t.policies:
            if p.name != policy_name:
                continue
            if p.command == "update" and p.using == p.check and change != "dropped":
                return SAME_BOTH_SIDES
            hit = re.fullmatch(r"with check own/assigned/linked user #(\d+) -> true", change)
            if p.command == "insert" and hit:
                column = list(AUTHOR_ATOM.finditer(p.check))[int(hit.group(1)) - 1].group(1)
                insertable = next((g for g in t.grants.get("authenticated", []) if g.privilege == "insert"), None)
                default = (t.column(column).default or "") if t.column(column) else ""
                if "auth.uid()" in default and insertable is not None and insertable.columns \
                        and column not in insertable.columns:
                    return AUTHOR_NOT_WRITABLE
            hit = re.fullmatch(r"using (.+) #(\d+) -> .*", change)
            if p.command == "delete" and hit and archives(t) and ARCHIVED_BRANCH in p.using:
                pattern = next(pat for pat, _, kind in ATOMS if kind == hit.group(1))
                atom = list(pattern.finditer(p.using))[int(hit.group(2)) - 1]
                start = p.using.index(ARCHIVED_BRANCH)
                if start < atom.start() and atom.end() <= _closing(p.using, start):
                    return ARCHIVED_NO_OP
    return None


def _closing(text: str, start: int) -> int:
    """Where the parenthesis opened at `start` closes."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return len(text)


def table_of(schema: Schema, mutation: str) -> str:
    """The table whose policy a mutation (named "<policy>: <change>") changes."""
    policy_name = mutation.partition(": ")[0]
    return next(t.name for t in schema.tables for p in t.policies if p.name == policy_name)


def mutations(schema: Schema) -> Iterator[tuple[str, Callable[[Schema], None]]]:
    """Drop each policy; replace each USING / WITH CHECK with true; lower each role check one level."""
    roles = schema.enums[0].values  # least privileged first
    for t in schema.tables:
        for i, p in enumerate(t.policies):
            def drop(s, t=t.name, i=i):
                s.table(t).policies.pop(i)
            yield f"{p.name}: dropped", drop
            for attr, label in (("using", "using"), ("check", "with check")):
                if getattr(p, attr) not in (None, "true"):
                    def to_true(s, t=t.name, i=i, attr=attr):
                        setattr(s.table(t).policies[i], attr, "true")
                    yield f"{p.name}: {label} -> true", to_true
                for k, m in enumerate(HELPER.finditer(getattr(p, attr) or "")):
                    level = roles.index(m.group(1))
                    if level == 0:
                        continue
                    lower = roles[level - 1]

                    def lower_role(s, t=t.name, i=i, attr=attr, k=k, lower=lower):
                        pol = s.table(t).policies[i]
                        text = getattr(pol, attr)
                        hit = list(HELPER.finditer(text))[k]
                        setattr(pol, attr, text[:hit.start(1)] + lower + text[hit.end(1):])
                    yield f"{p.name}: {label} role #{k + 1} {m.group(1)} -> {lower}", lower_role


# --- running many mutations: one verify per round, not per mutation ----------------------------------

def components(schema: Schema) -> dict[str, int]:
    """Table -> its group: tables are grouped when one's policies, or the invoker functions its policies or
    triggers call, name the other (so its cases can change with the other's policies). Definer helpers read past
    RLS and foreign-key checks run as the owner: neither ties tables together."""
    names = [t.name for t in schema.tables]
    functions = {f"{f.schema_name}.{f.name}": f for f in schema.functions}

    def invoker_bodies(called: list[str]) -> str:
        return " ".join(functions[f].body for f in called if f in functions and not functions[f].security_definer)

    group = {n: k for k, n in enumerate(names)}
    for t in schema.tables:
        text = " ".join(f"{p.using or ''} {p.check or ''}" for p in t.policies)
        text += " " + invoker_bodies(re.findall(r"\b([a-z_]+\.[a-z_0-9]+)\(", text))
        text += " " + invoker_bodies([tr.function for tr in t.triggers])
        for other in names:
            if other != t.name and re.search(rf"\b(public|private)\.{other}\b(?!\()", text):
                old, new = group[other], group[t.name]
                group = {n: new if g == old else g for n, g in group.items()}
    return group


def rounds(schema: Schema, named: list[tuple[str, Callable[[Schema], None]]]) -> list[list[tuple[str, Callable]]]:
    """Mutations in rounds holding at most one per group of tables (`components`)."""
    group = components(schema)
    queues: dict[int, list[tuple[str, Callable]]] = {}
    for item in named:
        queues.setdefault(group[table_of(schema, item[0])], []).append(item)
    return [[queue[k] for queue in queues.values() if k < len(queue)]
            for k in range(max((len(q) for q in queues.values()), default=0))]


def survivors_of(bp, named: list[tuple[str, Callable[[Schema], None]]], url: str) -> list[str]:
    """The mutations verify does not catch, in the order given. A round applies one mutation to a table of each of
    several groups (`components`: no group's cases can change with another group's policies) and judges only the
    mutated tables' cases; a mutation is caught when its own table's cases fail, as it would be alone. A round
    failing otherwise (a lint, a fixture row) runs its mutations one by one."""
    original = build_schema(bp)
    caught: set[str] = set()
    for group in rounds(original, named):
        tables = {table_of(original, name): name for name, _ in group}
        schema = build_schema(bp)
        for _, mutate in group:
            mutate(schema)
        sql = [schema_sql(schema, "m"), rls_sql(schema, "m"), triggers_sql(schema, "m")]
        report = verify(source=", ".join(tables.values()), migrations=sql, blueprint=bp, database_url=url,
                        tables=set(tables))
        failing = {f.table for f in report.failures}
        if len(group) == 1:
            caught |= set() if report.ok else set(tables.values())
        elif report.ok or (failing <= set(tables) and failing and not report.fixture_failures
                           and not any(f.level.value == "ERROR" for f in report.lints)):
            caught |= {tables[t] for t in failing}
        else:
            caught |= {name for name, mutate in group
                       if name not in survivors_of(bp, [(name, mutate)], url)}
    return [name for name, _ in named if name not in caught]



def test_rounds_keep_tables_whose_cases_read_each_other_apart():
    """habit_check_ins' trigger reads habits as the caller, and the private table's insert policy reads
    habit_check_ins; organization_members' delete policy reads organizations: their mutations never share a round,
    so none can be caught by another's effect."""
    schema = build_schema(load_template("habit-tracker"))
    group = components(schema)
    assert group["habits"] == group["habit_check_ins"] == group["habit_check_ins_private"]
    # The memberships' delete policy reads organizations (the primary owner removes co-owners): one group.
    assert group["organizations"] == group["organization_members"]
    assert len({group[t] for t in ("profiles", "organizations", "habits")}) == 3
    named = list(mutations(schema))
    played = rounds(schema, named)
    assert sorted(n for r in played for n, _ in r) == sorted(n for n, _ in named)
    for r in played:
        tables = [group[table_of(schema, n)] for n, _ in r]
        assert len(tables) == len(set(tables)), r

@pytest.fixture(scope="module")
def db_url(pg_cluster):
    pg_cluster.create_database("mutations")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/mutations"
    pg_cluster.drop_database("mutations")


def test_every_behaviour_changing_policy_mutation_is_caught(db_url):
    bp = load_template("habit-tracker")
    named = list(mutations(build_schema(bp)))
    names = [name for name, _ in named]
    # Policies call only definer helpers, so a policy change shows in its own table's cases.
    survivors = survivors_of(bp, named, db_url)
    assert len(names) > 60
    schema = build_schema(bp)
    unexplained = [n for n in survivors if equivalent(schema, n) is None]
    assert unexplained == [], "mutations verify did not catch: " + "; ".join(unexplained)
    # Every one-sided UPDATE mutation survives, and nothing else does.
    assert survivors == [n for n in names if equivalent(schema, n)]


# --- the access constructs: every row condition and role set the grants add has teeth -------------

LAB = Path(__file__).with_name("fixtures") / "blueprints" / "access-lab.yaml"
LAB_TABLES = ("reviews", "drafts", "tasks", "articles", "clients", "invoices", "listings", "contacts",
              "contacts_private", "dossiers", "dossiers_private", "folders", "article_notes", "claims",
              "claims_private")


class _Under:
    """The `under` sub-query (access.under_pred) as one atom: `exists (select 1 from public.P where P.id = T.ref
    and (...))`, its parentheses balanced (a regular expression cannot close them)."""

    START = re.compile(r"exists \(select 1 from public\.([a-z_]+) where \1\.id = [a-z_]+\.[a-z_]+ and \(")

    def finditer(self, text: str) -> Iterator[_Span]:
        for m in self.START.finditer(text):
            depth, end = 0, m.start() + len("exists ")
            for end in range(end, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            yield _Span(m.start(), end + 1)


class _Span:
    """Where an atom starts and ends, as a match reports it."""

    def __init__(self, start: int, end: int) -> None:
        self._start, self._end = start, end

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end


# Atoms the grant forms add to predicates; each mutation replaces one with something looser.
ATOMS = (
    (re.compile(r"\b([a-z_]+) = \(select auth\.uid\(\)\)"), "true", "own/assigned/linked user"),
    # the pair is one atom: each half alone decides the same rows (access.linked_pred)
    (re.compile(r"\b([a-z_]+) in \(select (private\.[a-z_]+_linked_ids\(\))\) and \1 = any \(array\(select \2\)\)"),
     "true", "linked chain"),
    (re.compile(r"\b(published|status|active) (= '?[a-z]+'?|in \([^)]*\))"), "true", "where"),
    (re.compile(r"array\[('[a-z_]+'(?:, '[a-z_]+')*)\]::public\.member_role\[\]"), None, "exact roles"),
    (re.compile(r"archived_at is null"), "true", "soft delete"),
    (_Under(), "true", "under parent"),
)


def construct_mutations(schema: Schema, roles: list[str]) -> Iterator[tuple[str, Callable[[Schema], None]]]:
    every_role = "array[" + ", ".join(f"'{r}'" for r in roles) + "]::public.member_role[]"
    for t in schema.tables:
        if t.name not in LAB_TABLES:
            continue
        for i, p in enumerate(t.policies):
            for attr, label in (("using", "using"), ("check", "with check")):
                text = getattr(p, attr) or ""
                for pattern, loose, kind in ATOMS:
                    for k, m in enumerate(pattern.finditer(text)):
                        looser = loose if loose is not None else every_role

                        def loosen(s, t=t.name, i=i, attr=attr, start=m.start(), end=m.end(), looser=looser):
                            pol = s.table(t).policies[i]
                            text = getattr(pol, attr)
                            setattr(pol, attr, text[:start] + looser + text[end:])
                        yield f"{p.name}: {label} {kind} #{k + 1} -> {looser}", loosen


def test_every_loosened_access_construct_is_caught(pg_cluster):
    bp = load_blueprint_file(LAB)
    bp = bp.model_copy(update={"entities": [e for e in bp.entities if e.name in LAB_TABLES], "storage": []})
    roles = [r.name for r in bp.tenancy.roles]
    pg_cluster.create_database("construct_mutations")
    url = f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/construct_mutations"
    try:
        named = list(construct_mutations(build_schema(bp), roles))
        names = [name for name, _ in named]
        survivors = survivors_of(bp, named, url)
    finally:
        pg_cluster.drop_database("construct_mutations")
    kinds = {n.split(" ", 3)[2] for n in names}
    assert len(names) > 25 and {"own/assigned/linked", "linked", "where", "exact", "soft", "under"} <= kinds
    schema = build_schema(bp)
    # Only one side of an UPDATE policy with identical USING and WITH CHECK survives: the other side
    # (and, for columns a row could move across, the select policy a WHERE brings in) still decides.
    assert [n for n in survivors if equivalent(schema, n) is None] == [], survivors
    assert all(n.split(": ")[0].endswith(("_update_policy", "_insert_policy"))
               or equivalent(schema, n) == ARCHIVED_NO_OP for n in survivors)


# --- transitions (A28): the triggers have teeth too ------------------------------------------------

TRANSITION_MUTATIONS = {
    "update trigger dropped": (r"create trigger shipments_transitions_update_trg.*?;\n", ""),
    "insert trigger dropped": (r"create trigger shipments_transitions_insert_trg.*?;\n", ""),
    "a move added (shipped -> preparing)": (r"(when 'shipped' then new\.status::text in \()", r"\1'preparing', "),
    "clients pass as the service role does": (r"current_user not in \('authenticated', 'anon'\)", "true"),
}


@pytest.mark.parametrize("mutation", TRANSITION_MUTATIONS)
def test_every_loosened_transition_rule_is_caught(db_url, mutation):
    bp = load_template("marketplace")
    pattern, replacement = TRANSITION_MUTATIONS[mutation]
    schema = build_schema(bp)
    sql = [schema_sql(schema, "m"), rls_sql(schema, "m"), triggers_sql(schema, "m")]
    mutated = [re.sub(pattern, replacement, s, flags=re.S) for s in sql]
    assert mutated != sql, "the mutation must change the SQL"
    report = verify(source=mutation, migrations=mutated, blueprint=bp, database_url=db_url, tables={"shipments"})
    assert report.leaks > 0, mutation
