"""The audit reader's fast paths read SQL exactly as the slow, obvious readings do.

`split`'s scanner finds tokens from a character class and checks word boundaries in Python; the
reference here is the straightforward regex (look-behinds, IGNORECASE) it replaced. A policy's USING
and WITH CHECK text is found from its parse tree's locations; the reference is the full scan of the
statement's top-level keywords and parentheses (`_policy_expressions_scanned`). Identical clauses share
one tree; an audit of policies that share trees reports what one with a tree per policy reports.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pgparse
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from blueprint_mcp.audit import split as fast
from blueprint_mcp.audit import audit_sql
from blueprint_mcp.audit.ddl_objects import _first_location, _policy_expressions, _policy_expressions_scanned
from blueprint_mcp.audit.parse import Stmt, read_sql
from blueprint_mcp.audit.split import Lines, paren_group, split, top_level_words
from blueprint_mcp.audit import body, parser
from blueprint_mcp.audit.tree import _index_iteratively, index_located, nodes

ROOT = Path(__file__).resolve().parents[1]

# --- the reference scanner --------------------------------------------------------------------------

_REF_TOKEN = re.compile(
    r"""--|/\*|(?<![\w$])[eE]'|'|"|(?<![\w$])\$(?:[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$|;|\\|\(|\)"""
    r"""|(?<![\w$])(?:begin|atomic|case|end|where|using|check|with)(?![\w$])""",
    re.IGNORECASE,
)


def _ref_scan(text: str, pos: int = 0):
    while True:
        m = _REF_TOKEN.search(text, pos)
        if m is None:
            return
        token, pos = m.group().lower(), m.end()
        if token == "--":
            eol = text.find("\n", pos)
            pos = len(text) if eol < 0 else eol
            yield token, m.start(), pos
        elif token == "/*":
            pos = fast._skip_block_comment(text, pos)
        elif token[0] in "'\"$" or token == "e'":
            pos = fast._skip_quoted(text, m.group() if token[0] == "$" else token, pos)
        else:
            yield token, m.start(), pos


FRAGMENTS = ["-", "--", "/*", "*/", "e'", "E'", "'", "''", '"', "$", "$$", "$a$", "$ab_1$", ";", "\\", "(", ")",
             "begin", "BEGIN", "atomic", "case", "end", "End", "where", "using", "check", "with", "x", "type",
             "a$b", " ", "\n", "é", "legend", "\\'", "1", "create function f() begin atomic", "select 1;"]
SQLISH = st.lists(st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(["", " "])), max_size=30).map(
    lambda parts: "".join(a + b for a, b in parts))


@settings(max_examples=1500, deadline=None)
@given(SQLISH, st.integers(min_value=0, max_value=12))
@example("x e'a\\'b' ;", 3)  # started on an E'' string's quote: read as a plain literal, as the reference does
@example("x e'a\\'b' ;", 2)
def test_the_scanner_finds_the_tokens_the_reference_regex_finds(text, start):
    assert list(fast._scan(text, start)) == list(_ref_scan(text, start))


def _ref_split(source: str) -> list[tuple[str, int, bool]]:
    """Statements by the reference scanner: the same state machine as `split`, over every token."""
    out, begin, atomic, skip_to = [], 0, 0, 0

    def flush(stop: int) -> None:
        lead = fast._lead(source, begin, stop)
        if lead < stop:
            out.append((source[lead:stop], lead, False))

    for token, start, end in _ref_scan(source):
        if start < skip_to:
            continue
        if token == ";" and atomic == 0:
            flush(start)
            begin = end
        elif token == "\\":
            flush(start)
            eol = source.find("\n", end)
            skip_to = begin = len(source) if eol < 0 else eol
            out.append((source[start:skip_to], start, True))
        elif token == "begin" and (atomic or fast._ATOMIC.match(source, end)):
            atomic += 1
        elif token == "case" and atomic:
            atomic += 1
        elif token == "end" and atomic:
            atomic -= 1
    flush(len(source))
    return out


@settings(max_examples=1500, deadline=None)
@given(SQLISH)
def test_split_top_level_words_and_groups_agree_with_the_reference(text):
    assert [(s.text, s.start, s.meta) for s in split(text)[0]] == _ref_split(text)
    depth, words = 0, []
    for token, start, _ in _ref_scan(text):
        depth += {"(": 1, ")": -1}.get(token, 0)
        if depth == 0 and token in ("where", "using", "check", "with"):
            words.append((token, start))
    assert top_level_words(text) == words
    for after in (0, 3, 7):
        assert paren_group(text, after) == _ref_paren_group(text, after)


def _ref_paren_group(text: str, after: int):
    depth, open_at = 0, -1
    for token, start, end in _ref_scan(text, after):
        if token == "(":
            open_at = end if depth == 0 else open_at
            depth += 1
        elif token == ")" and depth:
            depth -= 1
            if depth == 0:
                inner = text[open_at:start]
                return open_at + len(inner) - len(inner.lstrip()), start - len(inner) + len(inner.rstrip())
    return None


# --- policy expressions from tree locations ---------------------------------------------------------

TRICKY_POLICIES = """
create policy p1 on t using ((a));
create policy p2 on t USING( (select auth.uid()) = user_id ) WITH CHECK ( ( ( true ) ) );
create policy p3 on t using ( /* c */ x = 1);
create policy p4 on t using ( -- c
 x = 1) with check (-- d
 y = 2);
create policy p5 on t using (exists (select 1 from a join b using (id)));
create policy p6 on t using (case when x then true else false end);
create policy p7 on t using (array[1] @> x);
create policy p8 on t using ((a, b) = (1, 2)) with check (row(a, b) = row(1, 2));
create policy p9 on t using ('a' = e'a\\'') with check (E'x' = 'x');
create policy p10 on t using (x::text = 'a') with check (cast(x as text) = 'a');
create policy p11 on t using (interval '1 day' > x) with check (timestamp '2020-01-01' < x);
create policy p12 on t using (-x > 0) with check (+x > 0);
create policy p13 on t using (current_user = 'a') with check (localtimestamp > x);
create policy p14 on t using (1=1) with check ("Col" = 1);
create policy p15 on t using ($$a$$ = x) with check (x collate "C" = 'a');
create policy p16 on t using (null) with check (not (a or b));
create policy "p17" on t as restrictive for all to public using (x) with check (y);
alter policy p1 on t using (z = 1) with check (w);
create policy p18 on t using(x)with check(y);
create policy p19 on t using ((x).f = 1);
create policy p20 on t using (x = 1 /* using (y) */);
create policy p21 on t using (x = 1) wIth   cHeck (y = 2)
;
create policy p22 on t using (x = ')') with check ( (y) = ')' );
create policy p23 on t for insert with check (x);
create policy p24 on t using (x in (select a from b where c = 'with check (')) with check (z);
create policy p25 on t using (- 1 = x);
create policy p26 on t using (x -> 'a' ? 'b') with check (treat(x as int) = 1);
create policy "é" on "tåble" using (x = 'ü' and "ö" = 1) with check (y = 'ø');
"""


def _policy_statements(sql: str):
    for s in split(sql)[0]:
        if "polic" not in s.text.lower():
            continue
        for raw in pgparse.parse(s.text):
            kind, node = next(iter(raw["stmt"].items()))
            if kind in ("CreatePolicyStmt", "AlterPolicyStmt"):
                yield s.text, node


def _generated_sql() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "tests" / "golden").rglob("migrations/*.sql")))


@pytest.mark.parametrize("sql", [TRICKY_POLICIES, _generated_sql()], ids=["tricky", "generated"])
def test_policy_text_and_rebased_trees_from_locations_match_the_full_scan(sql):
    compared = 0
    for text, node in _policy_statements(sql):
        st = Stmt("f.sql", text, 0, Lines(text))
        a, b = copy.deepcopy(node), copy.deepcopy(node)
        assert _policy_expressions(st, a) == _policy_expressions_scanned(st, b), text
        compared += 1
        for field in ("qual", "with_check"):
            if field in node:
                located = [d["location"] for d in index_located(copy.deepcopy(node[field]))[1]]
                assert _first_location(node[field]) == (min(located) if located else None), text
    assert compared > 25


# --- clauses read once --------------------------------------------------------------------------------

SHARED = """
create schema a; create schema b;
create table a.members (organization_id uuid, user_id uuid, role text, unique (organization_id, user_id));
create table b.members (organization_id uuid, user_id uuid, role text, unique (organization_id, user_id));
create table a.notes (id uuid primary key, organization_id uuid);
create table b.notes (id uuid primary key, organization_id uuid);
alter table a.notes enable row level security;
alter table b.notes enable row level security;
create policy "one" on a.notes for select to authenticated
  using (organization_id in (select organization_id from members where user_id = auth.uid()));
create policy "a much longer name" on b.notes for select to authenticated
  using (organization_id in (select organization_id from members where user_id = auth.uid()));
create policy two on a.notes for update using (organization_id in (select organization_id from members where user_id = auth.uid()))
  with check (organization_id in (select organization_id from members where user_id = auth.uid()));
create policy three on b.notes for delete /* a comment: the full scan reads this one */
  using (organization_id in (select organization_id from members where user_id = auth.uid()));
create policy four on b.notes for insert with check (organization_id in (select organization_id from members where user_id = 2));
"""


def test_identical_clauses_share_one_tree_and_each_policy_keeps_its_own_reading():
    policies = {p.name: p for t in read_sql([("f.sql", SHARED)]).schema.tables for p in t.policies}
    one = policies["one"].using_tree
    assert all(tree is one for tree in (policies["a much longer name"].using_tree, policies["two"].using_tree,
                                         policies["two"].check_tree, policies["three"].using_tree))
    assert policies["four"].check_tree is not one  # another literal, another clause
    call = next(body for kind, body, _ in index_located(copy.deepcopy(one))[0] if kind == "FuncCall")
    assert policies["one"].using[call["location"]:].startswith("auth.uid()")


TABLE_SPELLINGS = ['t', 'T', '"t"', 'public.t', 'public . "t"', '"Pub"."Tab"', 'x.y.z', '"a""b"', 'tåble', 'Åb',
                   'U&"d\\0061t"', 's."T x"']


def test_a_policy_read_after_others_ending_alike_reads_as_it_does_alone():
    """Every tricky policy on tables of every spelling, in one file (later ones take what the first read left
    under the text after the table's name) and each alone: the same command, roles, clauses and trees."""
    statements = [s.text for s in split(TRICKY_POLICIES)[0] if s.text.lower().startswith("create policy")]
    name = r'"(?:[^"]|"")*"|\S+'
    variants = [re.sub(rf"^create policy\s+(?:{name})\s+on\s+(?:{name})\s", f"create policy v{i}_{k} on {table} ",
                       text, flags=re.IGNORECASE)
                for i, text in enumerate(statements) for k, table in enumerate(TABLE_SPELLINGS)]

    def policies(sql):
        return [(p.name, p.command, p.roles, p.using, p.check, p.using_tree, p.check_tree, p.columns)
                for t in read_sql([("f.sql", sql)]).schema.tables for p in t.policies]

    together = sorted(policies(";\n".join(variants)), key=repr)
    alone = sorted((p for text in variants for p in policies(text)), key=repr)
    assert len(together) == len(variants) > 250
    assert together == alone


def test_an_audit_over_shared_trees_reports_what_one_over_separate_trees_reports():
    """Each statement read alone (no tree can be shared) and the whole file read at once give the same
    findings, objects, messages and fixes (not positions: alone, a statement sits on other lines): a shared
    tree carries nothing of the policy or schema it was first read in."""
    def keyed(findings):
        return sorted((f.rule_id, f.object, f.message, f.fix_sql or "") for f in findings)

    together = audit_sql([("f.sql", SHARED)])
    reader_per_policy = []
    for name in ('"one"', '"a much longer name"', "two", "three", "four"):
        kept = [s for s in split(SHARED)[0] if "create policy" not in s.text or f"policy {name} " in s.text]
        reader_per_policy.append(keyed(audit_sql([("f.sql", ";\n".join(s.text for s in kept))])))
    # Read alone, the other table of each schema has no policy at all (BP004): not a finding of the whole.
    separate = {f for findings in reader_per_policy for f in findings if f[0] != "BP004"}
    assert set(keyed(together)) == separate
    reads = {f.object for f in together if f.rule_id == "BP031"}
    assert reads == {"a.notes.one", "b.notes.a much longer name", "a.notes.two", "b.notes.three", "b.notes.four"}


# --- the recursive index walk -------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 40, 120])
def test_the_recursive_index_walk_matches_the_iterative_one_and_falls_back_when_deep(depth):
    """120 nested ORs go past the recursion budget: the walk then takes the explicit stack, same answer."""
    expr = "x = 0"
    for k in range(1, depth + 1):
        expr = f"x = {k} or ({expr} and y in (select a from b where c = {k}))"

    def tree():
        return pgparse.parse(f"create policy p on t using ({expr})")[0]["stmt"]["CreatePolicyStmt"]["qual"]

    fast, located = index_located(tree())
    slow, slow_located = _index_iteratively(tree())
    assert [(kind, ctx) for kind, _, ctx in fast] == [(kind, ctx) for kind, _, ctx in slow]
    assert [d["location"] for d in located] == [d["location"] for d in slow_located]
    assert sum(kind == "SubLink" for kind, _, _ in fast) == depth


# --- function bodies read before -------------------------------------------------------------------------

def _reference_nodes(tree):
    """The obvious recursive walk: every {"Upper": {...}} in document order, parents first."""
    if isinstance(tree, list):
        for item in tree:
            yield from _reference_nodes(item)
    elif isinstance(tree, dict):
        if len(tree) == 1:
            (kind, body), = tree.items()
            if kind[:1].isupper() and isinstance(body, dict):
                yield kind, body
                tree = body
        for value in tree.values():
            yield from _reference_nodes(value)


def test_the_node_walk_yields_what_the_recursive_reference_yields_on_every_template():
    """Every statement and every PL/pgSQL body of every template's rendered SQL."""
    from blueprint_mcp.templates import template_names
    from blueprint_mcp.tools import blueprint_sql, resolve_blueprint
    trees = []
    for name in template_names():
        for _, text in blueprint_sql(resolve_blueprint(name, None), name):
            for s in split(text)[0]:
                trees.append(pgparse.parse(s.text))
                if "plpgsql" in s.text and s.text.lstrip().lower().startswith("create"):
                    trees.append(pgparse.parse_pgsql(s.text))
    assert len(trees) > 1000
    for tree in trees:
        assert list(nodes(tree)) == list(_reference_nodes(tree))


def test_a_body_read_again_gives_what_its_first_reading_gave_and_each_reader_its_own_copy():
    """The remembered reading of a PL/pgSQL body equals a fresh one field by field; changing what one
    reader got changes neither the remembered reading nor the next reader's."""
    text = (ROOT / "tests" / "golden" / "habit-tracker" / "supabase" / "migrations"
            / "20250101000002_triggers.sql").read_text()
    bodies = [s.text for s in split(text)[0] if "language plpgsql" in s.text.lower()]
    assert len(bodies) > 5
    for statement in bodies:
        fresh = body._read_plpgsql_body(statement, "public", [("target", "uuid")])
        first = body.plpgsql_body(statement, "public", [("target", "uuid")])
        assert first == fresh and first is not fresh
        first.reads.add("public.changed")
        first.assigns.append("changed")
        first.trees.append({"changed": True})
        again = body.plpgsql_body(statement, "public", [("target", "uuid")])
        assert again == fresh
    # Another default schema or other parameters are another reading.
    unqualified = "create function f() returns trigger language plpgsql as $$ begin\n" \
        "  insert into logs select * from items where id = new.id; return new; end $$"
    assert body.plpgsql_body(unqualified, "public").writes == {"public.logs"}
    assert body.plpgsql_body(unqualified, "private").writes == {"private.logs"}
    assert body.plpgsql_body(unqualified, "private").reads == {"private.items"}
    assert body.sql_body("select 1 from t", "a").reads == {"a.t"}
    assert body.sql_body("select 1 from t", "b").reads == {"b.t"}
    assert body.sql_body("select from", "a") is None  # not SQL: remembered as unreadable, still None
    assert body.sql_body("select from", "a") is None


def test_a_statement_parsed_again_gives_fresh_equal_trees():
    """The remembered JSON is decoded anew: the reader rebases trees in place, so no parse shares objects."""
    text = "create policy p on t for select using (a = 1 and b in (select c from d))"
    first = parser.parse(text)
    first[0]["stmt"]["CreatePolicyStmt"]["qual"]["changed"] = True
    again = parser.parse(text)
    assert again == pgparse.parse(text) and again[0] is not first[0]
    with pytest.raises(pgparse.PGQueryError):
        parser.parse("create policy p on")
    with pytest.raises(pgparse.PGQueryError):  # not remembered: it raises every time
        parser.parse("create policy p on")


@pytest.mark.parametrize("name", ["habit-tracker", "e-commerce"])
def test_an_audit_with_everything_remembered_reports_what_a_first_audit_reports(name):
    from blueprint_mcp.tools import audit_findings
    body.forget_bodies()
    parser.forget_parses()
    first = audit_findings(template=name)
    assert audit_findings(template=name) == first
    assert [f.model_dump() for f in audit_findings(template=name)] == [f.model_dump() for f in first]


def test_what_is_remembered_stays_within_its_bounds(monkeypatch):
    """The oldest statements and bodies go first once the kept JSON or body text passes its limit."""
    parser.forget_parses()
    monkeypatch.setattr(parser, "_PARSED_MAX_JSON", 4000)
    texts = [f"select {i} as c{i} from t{i}" for i in range(40)]
    for text in texts:
        parser.parse(text)
    assert 0 < parser._parsed_json <= 4000
    assert parser._parsed_json == sum(len(v) for v in parser._PARSED.values())
    assert list(parser._PARSED) == texts[-len(parser._PARSED):] and len(parser._PARSED) < 40
    body.forget_bodies()
    monkeypatch.setattr(body, "_READ_MAX_TOTAL", 300)
    for i in range(20):
        body.sql_body(f"select a{i} from t{i} where b = {i}", "public")
    assert 0 < body._read_chars <= 300 and len(body._READ) < 20
    assert body._read_chars == sum(len(key[1]) for key in body._READ)
    parser.forget_parses()
    body.forget_bodies()
