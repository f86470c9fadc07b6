"""The audit on the command line: inputs (files, folders, specs, templates), formats, exit codes, suppression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blueprint_mcp.audit import RULES, audit_sql
from blueprint_mcp.audit.spec import SPEC_SECTIONS, normalize, parse_spec
from blueprint_mcp.cli import main
from blueprint_mcp.spec.render import spec_template
from blueprint_mcp.tools import audit_findings

NOTES = "create table public.notes (id uuid primary key, body text);\n"  # BP003 (ERROR)
SLOW = ("create table public.notes (id uuid primary key, owner uuid not null);\n"
        "alter table public.notes enable row level security;\n"
        "create policy notes_select on public.notes for select to authenticated using (owner = auth.uid());\n")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- inputs ----------------------------------------------------------------------------------------

def test_a_migrations_folder_is_applied_in_file_name_order_as_one_history(tmp_path, capsys):
    mig = tmp_path / "supabase" / "migrations"
    write(mig, "20250102000000_rls.sql", "alter table public.notes enable row level security;\n")
    write(mig, "20250101000000_init.sql", NOTES)
    write(tmp_path / "supabase" / "tests" / "database", "x.test.sql", "select plan(1);")  # pgTAP, not a migration
    assert main(["audit", str(tmp_path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["rule_id"] for f in report["findings"]] == ["BP004"]  # RLS on, no policy yet (INFO)
    assert report["findings"][0]["file"] == str(mig / "20250101000000_init.sql")


def test_several_paths_template_and_spec_in_one_run(tmp_path, capsys):
    sql = write(tmp_path, "a.sql", NOTES)
    spec = write(tmp_path, "spec.md", spec_template())
    assert main(["audit", str(sql), str(spec), "habit-tracker", "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["rule_id"], f["file"]) for f in found] == \
        [("BP003", str(sql))] + [("BP040", str(spec))] * 5


def test_an_empty_folder_or_a_missing_file_is_a_usage_error(tmp_path, capsys):
    assert main(["audit", str(tmp_path)]) == 2
    assert "holds no .sql files" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "missing.sql")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blueprint-mcp: error: ") and "no such file" in err and err.count("\n") == 1


def test_an_unknown_file_type_is_a_usage_error_naming_the_path(tmp_path, capsys):
    path = write(tmp_path, "notes.txt", "hello")
    assert main(["audit", str(path)]) == 2
    assert f"{path} is neither SQL" in capsys.readouterr().err


# --- exit codes --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sql", "fail_on", "code"), [
    (NOTES, "error", 1), (SLOW, "error", 0), (SLOW, "warn", 1), ("select 1;", "warn", 0),
])
def test_exit_code_follows_fail_on(tmp_path, sql, fail_on, code):
    assert main(["audit", str(write(tmp_path, "m.sql", sql)), "--fail-on", fail_on]) == code


# --- formats -----------------------------------------------------------------------------------------

def test_text_format_has_position_rule_fix_and_a_summary(tmp_path, capsys):
    path = write(tmp_path, "m.sql", SLOW)
    main(["audit", str(path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"{path}:3:1: WARN BP016 auth_rls_initplan public.notes.notes_select: "
                        'policy "notes_select" on public.notes calls auth.uid() for every row.')
    assert lines[1] == "    fix: Wrap each call in a sub-select: `(select auth.uid())`."
    assert lines[2] == ('    sql: alter policy notes_select on public.notes using (owner = (select auth.uid()));')
    assert lines[-1] == "1 finding(s): 0 error(s), 1 warning(s), 0 info"


def test_sarif_is_2_1_0_with_rules_levels_and_locations(tmp_path, capsys):
    path = write(tmp_path, "m.sql", NOTES + SLOW.replace("notes", "slow"))
    assert main(["audit", str(path), "--format", "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(RULES)
    assert all(r["name"] and r["shortDescription"]["text"] and r["help"]["text"] for r in rules)
    assert {r["defaultConfiguration"]["level"] for r in rules} == {"error", "warning", "note"}
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("BP003", "error"), ("BP016", "warning")]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        location = r["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "file://" + str(path)
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1
        assert r["message"]["text"]
    assert results[1]["locations"][0]["physicalLocation"]["region"] == {"startLine": 4, "startColumn": 1}
    assert results[0]["properties"]["fixSql"] == "alter table public.notes enable row level security;"


def test_sarif_keeps_relative_paths_relative_to_the_source_root(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "db/m.sql", NOTES)
    main(["audit", "db/m.sql", "--format", "sarif"])
    artifact = json.loads(capsys.readouterr().out)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert artifact["artifactLocation"] == {"uri": "db/m.sql", "uriBaseId": "%SRCROOT%"}


# --- suppression ---------------------------------------------------------------------------------------

def test_a_suppression_with_a_reason_silences_that_rule_for_that_statement_only():
    sql = ("-- blueprint: ignore rls_disabled_in_public reference data, read through a view\n"
           "create table public.countries (code text primary key);\n"
           "create table public.notes (id uuid primary key);\n")
    found = audit_sql([("m.sql", sql)])
    assert [(f.rule_id, f.object) for f in found] == [("BP003", "public.notes")]


def test_a_suppression_inside_the_statement_works_and_one_without_reason_is_reported():
    sql = ("create table public.a (  -- blueprint: ignore BP003,BP014 staging table, dropped below\n  x int\n);\n"
           "-- blueprint: ignore BP003\ncreate table public.b (id int primary key);\n")
    found = audit_sql([("m.sql", sql)])
    assert [(f.rule_id, f.line) for f in found] == [("BP003", 5), ("BP038", 4)]
    assert found[1].message == "Suppression gives no reason; it silences nothing."


def test_a_suppression_of_an_unknown_rule_is_reported():
    found = audit_sql([("m.sql", "-- blueprint: ignore BP999 because\nselect 1;")])
    assert [(f.rule_id, f.message) for f in found] == \
        [("BP038", "Suppression names unknown rule(s) BP999; it silences nothing.")]


# --- specs ---------------------------------------------------------------------------------------------

def test_the_spec_rule_sections_are_the_nine_headings_of_the_blank_template():
    headings = [h.text for h in parse_spec(spec_template(), "blank.md").headings if h.level == 2]
    assert [normalize(h) for h in headings] == [normalize(s) for s in SPEC_SECTIONS]


def test_a_spec_missing_sections_and_with_unchecked_items():
    text = "# Spec\n\n## 1. Tenancy Model\n\n```sql\n## 2. not a heading inside code\n```\n\n" \
           "## 9. Security Checklist\n- [x] RLS enabled on all tables\n- [ ] Audit logging for writes\n"
    found = audit_findings(spec=text)
    assert sorted(f.object for f in found if f.rule_id == "BP039") == sorted(SPEC_SECTIONS[1:8])
    unchecked = [f for f in found if f.rule_id == "BP040"]
    assert [(f.object, f.line, f.level.value) for f in unchecked] == [("Audit logging for writes", 11, "INFO")]


def test_the_generated_spec_reports_only_its_two_app_side_checklist_items(tmp_path):
    from blueprint_mcp.templates import load_template
    from blueprint_mcp.tools import spec_markdown

    found = audit_findings(spec=spec_markdown(load_template("habit-tracker")))
    assert [(f.rule_id, f.level.value) for f in found] == [("BP040", "INFO"), ("BP040", "INFO")]
    assert [f.object for f in found] == [
        "No hardcoded secrets (keys only in environment variables / edge function secrets)",
        "Service role used only in Edge Functions"]


def test_a_projects_config_toml_decides_which_schemas_the_api_serves(tmp_path):
    """Found by an independent check: a schema exposed through supabase/config.toml ([api] schemas) was never
    treated as exposed (only pgrst.db_schemas in the SQL counted), so a definer view there audited clean."""
    migrations = tmp_path / "supabase" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "20250101000000_api.sql").write_text(
        "create schema api;\n"
        "create table public.documents (id int primary key, body text);\n"
        "alter table public.documents enable row level security;\n"
        "create view api.documents as select * from public.documents;\n"
        "grant select on api.documents to authenticated;\n")

    def definer_views() -> list[str]:
        return [f.object for f in audit_findings(paths=[str(tmp_path)]) if f.rule_id == "BP011"]

    assert definer_views() == []  # api is not served: nothing exposes the view
    (tmp_path / "supabase" / "config.toml").write_text('[api]\nenabled = true\nschemas = ["public", "api"]\n')
    assert definer_views() == ["api.documents"]
    assert [f.object for f in audit_findings(paths=[str(migrations)]) if f.rule_id == "BP011"] == ["api.documents"]
