"""Every audit rule as data (tests/cases/<id>.yaml): its failing case reports it, its passing case does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from blueprint_mcp.audit import RULES, Finding, Level, audit_spec_document, audit_sql
from blueprint_mcp.audit.docs import rules_markdown
from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.templates import load_template, template_names

CASES_DIR = Path(__file__).with_name("cases")
RULES_MD = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
CASES = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(CASES_DIR.glob("*.yaml"))}
KEYS = {"schema": ("fail_sql", "pass_sql"), "suppressions": ("fail_sql", "pass_sql"), "spec": ("fail_md", "pass_md")}


def run(rule_id: str, which: str):
    case = CASES[rule_id]
    key = KEYS[RULES[rule_id].target][0 if which == "fail" else 1]
    name = f"{rule_id}_{which}.{'md' if key.endswith('md') else 'sql'}"
    found = audit_spec_document(case[key], name) if key.endswith("md") else audit_sql([(name, case[key])])
    return [f for f in found if f.rule_id == rule_id]


def test_every_rule_has_a_case_with_both_sides_a_permanent_id_and_documentation():
    assert sorted(CASES) == sorted(RULES)
    for rule_id, case in CASES.items():
        assert case["rule"] == rule_id
        assert set(KEYS[RULES[rule_id].target]) <= set(case), rule_id
    names = [r.name for r in RULES.values()]
    assert len(names) == len(set(names))
    for r in RULES.values():
        assert re.fullmatch(r"BP\d{3}", r.id) and re.fullmatch(r"[a-z][a-z0-9_]+", r.name)
        assert r.summary and r.why and r.bad and r.fix and r.categories


def test_rule_ids_are_permanent():
    # Ids never change meaning; BP010 kept its meaning for anon under Supabase's name (0028).
    first = {"BP001": "tenant_key_nullable", "BP002": "tenant_key_unindexed", "BP003": "rls_disabled_in_public",
             "BP004": "rls_enabled_no_policy", "BP005": "policy_for_all", "BP006": "multiple_permissive_policies",
             "BP007": "policy_without_role", "BP008": "update_without_with_check",
             "BP009": "function_search_path_mutable", "BP010": "anon_security_definer_function_executable",
             "BP011": "security_definer_view", "BP012": "materialized_view_in_api", "BP013": "unindexed_foreign_keys",
             "BP014": "no_primary_key", "BP015": "cross_tenant_foreign_key"}
    assert {k: RULES[k].name for k in first} == first


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_reports_its_failing_case_and_not_its_passing_case(rule_id):
    hits = run(rule_id, "fail")
    assert len(hits) == CASES[rule_id].get("fail_count", 1), hits
    r = RULES[rule_id]
    assert all(f.name == r.name and f.level is r.level and f.remediation and f.file and f.line for f in hits)
    assert run(rule_id, "pass") == []


FIXABLE = [rule_id for rule_id in sorted(CASES) if RULES[rule_id].target == "schema"
           and any(f.fix_sql for f in run(rule_id, "fail"))]


@pytest.mark.parametrize("rule_id", FIXABLE)
def test_fix_sql_applied_after_the_failing_case_clears_the_finding(rule_id):
    fixes = "\n".join(f.fix_sql for f in run(rule_id, "fail") if f.fix_sql)
    after = audit_sql([("case.sql", CASES[rule_id]["fail_sql"]), ("fix.sql", fixes)])
    assert [f for f in after if f.rule_id == rule_id] == []


def test_docs_rules_md_is_generated_from_the_registry():
    assert RULES_MD.read_text(encoding="utf-8") == rules_markdown(), \
        "docs/rules.md is stale: python -m blueprint_mcp.audit.docs > docs/rules.md"


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_every_finding_a_rule_reports_is_valid_as_it_stands(rule_id):
    """`Rule.finding` builds findings without validating them again (an audit reports tens of thousands):
    each is exactly the finding validation makes of its fields, a list of categories of its own included."""
    hits = run(rule_id, "fail")
    for f in hits:
        again = Finding.model_validate(dict(f.__dict__))
        assert again == f and again.model_dump_json() == f.model_dump_json() and repr(again) == repr(f)
        assert list(f.__dict__) == list(Finding.model_fields) and f.model_fields_set == set(Finding.model_fields)
        assert type(f.level) is Level and type(f.categories) is list
        assert f.categories is not hits[0].categories or f is hits[0]
        assert isinstance(f.message, str) and (f.object is None or isinstance(f.object, str))


def test_the_tenant_index_fix_names_the_table_found_and_the_rule_text_names_none():
    found = audit_sql([("x.sql", "create table app.projects (id uuid primary key, organization_id uuid not null);")])
    hits = [f for f in found if f.rule_id == "BP002"]
    assert [(f.object, f.fix_sql) for f in hits] == [
        ("app.projects", "create index on app.projects (organization_id);")]
    assert "habits" not in hits[0].remediation


def test_fix_texts_name_only_helpers_the_generated_sql_defines():
    """A fix that names a private helper names one a generated backend has, called as it is generated."""
    defined = {f.qualified for t in template_names() for f in build_schema(load_template(t)).functions}
    named = {(r.id, m) for r in RULES.values() for m in re.findall(r"private\.\w+", r.fix)}
    assert {(rule_id, m) for rule_id, m in named if m not in defined} == set()
    assert "organization_id = any (array(select private.organization_ids_with_role('member')))" in RULES["BP023"].fix
    assert all("habits" not in r.fix for r in RULES.values())
