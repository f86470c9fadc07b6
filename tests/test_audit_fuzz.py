"""The auditor never raises: random bytes, truncated and mangled migrations, deeply nested expressions."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blueprint_mcp.audit import audit_spec_document, audit_sql
from blueprint_mcp.templates import load_template
from blueprint_mcp.tools import blueprint_sql

CORPUS = "\n".join(text for _, text in blueprint_sql(load_template("habit-tracker"), "x")) + \
    (Path(__file__).with_name("fixtures") / "article.sql").read_text(encoding="utf-8")
SQL_CHARS = st.sampled_from(list("();,'\"$\\-/*\n\t .:=<>[]{}|?!&%~^`\x00é☕") +
                            ["select", "create", "policy", "using", "with check", "begin", "atomic", "end", "case",
                             "function", "table", "as $$", "$$", "language plpgsql", "language sql", "do", "--",
                             "/*", "*/", "E'", "\\set", "alter", "drop", "rename", "grant", "on", "to", "for"])
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Whole migrations take ~10 ms each to audit: fewer, larger examples keep the suite fast.
FUZZ_CORPUS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def audits(text: str) -> None:
    found = audit_sql([("fuzz.sql", text)])
    assert all(f.rule_id and f.level for f in found)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data):
    audits(data.decode("utf-8", errors="replace"))


@FUZZ
@given(st.lists(SQL_CHARS, max_size=120).map("".join))
def test_random_sql_shaped_text(text):
    audits(text)


@FUZZ_CORPUS
@given(st.integers(0, len(CORPUS)), st.integers(0, len(CORPUS)))
def test_truncated_and_spliced_migrations(a, b):
    audits(CORPUS[:a])
    audits(CORPUS[:min(a, b)] + CORPUS[max(a, b):])


@FUZZ_CORPUS
@given(st.integers(0, len(CORPUS) - 1), st.lists(st.sampled_from(list("();'\"$-*/\\ \n")), min_size=1, max_size=8))
def test_mangled_migrations(at, junk):
    audits(CORPUS[:at] + "".join(junk) + CORPUS[at:])


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 3000), st.sampled_from([" + ", " and ", " or ", " || ", "::text"]))
def test_deeply_nested_expressions(parens, terms, op):
    nested = "(" * parens + "x" + ")" * parens
    chain = (op.join(["x"] * terms) if op != "::text" else "x" + op * terms)
    audits(f"create table t (x int primary key);\ncreate policy p on t to authenticated using ({nested} = {chain});\n"
           f"create index on t ({nested});\nselect {chain};\n")


@FUZZ
@given(st.text(max_size=300))
def test_random_markdown_specs(text):
    audit_spec_document(text, "fuzz.md")
