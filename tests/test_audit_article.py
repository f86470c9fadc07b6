"""The article's SQL (tests/fixtures/article.sql), audited: the exact findings, the baseline to beat."""

from __future__ import annotations

from pathlib import Path

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.cli import main

ARTICLE = Path(__file__).with_name("fixtures") / "article.sql"

# (level, rule id, rule name, object, line): every finding, in report order (severity, then position).
EXPECTED = [
    ('ERROR', 'BP003', 'rls_disabled_in_public', 'public.profiles', 5),
    ('ERROR', 'BP017', 'policy_exists_rls_disabled', 'public.profiles', 5),
    ('ERROR', 'BP003', 'rls_disabled_in_public', 'public.organizations', 14),
    ('ERROR', 'BP001', 'tenant_key_nullable', 'public.organization_members', 29),
    ('ERROR', 'BP003', 'rls_disabled_in_public', 'public.organization_members', 29),
    ('ERROR', 'BP001', 'tenant_key_nullable', 'public.habits', 43),
    ('ERROR', 'BP001', 'tenant_key_nullable', 'public.habit_check_ins', 58),
    ('ERROR', 'BP003', 'rls_disabled_in_public', 'public.habit_check_ins', 58),
    ('ERROR', 'BP015', 'cross_tenant_foreign_key', 'public.habit_check_ins', 61),
    ('ERROR', 'BP001', 'tenant_key_nullable', 'public.sessions', 74),
    ('ERROR', 'BP003', 'rls_disabled_in_public', 'public.sessions', 74),
    ('ERROR', 'BP001', 'tenant_key_nullable', 'public.events', 90),
    ('ERROR', 'BP015', 'cross_tenant_foreign_key', 'public.events', 94),
    ('ERROR', 'BP003', 'rls_disabled_in_public', 'public.feature_flags', 107),
    ('ERROR', 'BP001', 'tenant_key_nullable', 'public.feature_flag_assignments', 117),
    ('ERROR', 'BP003', 'rls_disabled_in_public', 'public.feature_flag_assignments', 117),
    ('ERROR', 'BP001', 'tenant_key_nullable', 'public.audit_logs', 218),
    ('ERROR', 'BP003', 'rls_disabled_in_public', 'public.audit_logs', 218),
    ('WARN', 'BP047', 'user_reference_blocks_account_deletion',
     'public.organizations.organizations_owner_user_id_fkey', 19),
    ('WARN', 'BP018', 'duplicate_index', 'public.organizations', 25),
    ('WARN', 'BP030', 'tenant_key_mutable', 'public.habits', 43),
    ('WARN', 'BP047', 'user_reference_blocks_account_deletion',
     'public.habits.habits_created_by_fkey', 46),
    ('WARN', 'BP047', 'user_reference_blocks_account_deletion',
     'public.habit_check_ins.habit_check_ins_user_id_fkey', 62),
    ('WARN', 'BP047', 'user_reference_blocks_account_deletion',
     'public.sessions.sessions_user_id_fkey', 77),
    ('WARN', 'BP047', 'user_reference_blocks_account_deletion',
     'public.events.events_user_id_fkey', 93),
    ('WARN', 'BP034', 'event_properties_pii', 'public.events', 98),
    ('WARN', 'BP002', 'tenant_key_unindexed', 'public.feature_flag_assignments', 117),
    ('WARN', 'BP047', 'user_reference_blocks_account_deletion',
     'public.feature_flag_assignments.feature_flag_assignments_user_id_fkey', 121),
    ('WARN', 'BP012', 'materialized_view_in_api', 'public.daily_org_metrics', 126),
    ('WARN', 'BP007', 'policy_without_role', 'public.habits.Users see own org habits', 142),
    ('WARN', 'BP016', 'auth_rls_initplan', 'public.habits.Users see own org habits', 142),
    ('WARN', 'BP031', 'policy_in_subquery', 'public.habits.Users see own org habits', 142),
    ('WARN', 'BP007', 'policy_without_role', 'public.habits.Users create habits in own orgs', 152),
    ('WARN', 'BP016', 'auth_rls_initplan', 'public.habits.Users create habits in own orgs', 152),
    ('WARN', 'BP031', 'policy_in_subquery', 'public.habits.Users create habits in own orgs', 152),
    ('WARN', 'BP007', 'policy_without_role', 'public.habits.Members can update habits', 162),
    ('WARN', 'BP008', 'update_without_with_check', 'public.habits.Members can update habits', 162),
    ('WARN', 'BP016', 'auth_rls_initplan', 'public.habits.Members can update habits', 162),
    ('WARN', 'BP031', 'policy_in_subquery', 'public.habits.Members can update habits', 162),
    ('WARN', 'BP007', 'policy_without_role', 'public.habits.Members can delete habits', 173),
    ('WARN', 'BP016', 'auth_rls_initplan', 'public.habits.Members can delete habits', 173),
    ('WARN', 'BP031', 'policy_in_subquery', 'public.habits.Members can delete habits', 173),
    ('WARN', 'BP007', 'policy_without_role', 'public.events.Users see own org events', 186),
    ('WARN', 'BP016', 'auth_rls_initplan', 'public.events.Users see own org events', 186),
    ('WARN', 'BP031', 'policy_in_subquery', 'public.events.Users see own org events', 186),
    ('WARN', 'BP007', 'policy_without_role', 'public.events.Service role can insert events', 196),
    ('WARN', 'BP016', 'auth_rls_initplan', 'public.events.Service role can insert events', 196),
    ('WARN', 'BP027', 'policy_without_membership_check', 'public.events.Service role can insert events', 196),
    ('WARN', 'BP033', 'analytics_table_writable', 'public.events.Service role can insert events', 196),
    ('WARN', 'BP009', 'function_search_path_mutable', 'public.update_updated_at', 201),
    ('WARN', 'BP047', 'user_reference_blocks_account_deletion',
     'public.audit_logs.audit_logs_user_id_fkey', 221),
    ('WARN', 'BP007', 'policy_without_role', 'public.profiles.Users see own profile', 232),
    ('WARN', 'BP007', 'policy_without_role', 'public.profiles.Users update own profile', 236),
    ('WARN', 'BP008', 'update_without_with_check', 'public.profiles.Users update own profile', 236),
    ('INFO', 'BP035', 'updated_at_trigger_missing', 'public.profiles', 5),
    ('INFO', 'BP035', 'updated_at_trigger_missing', 'public.organizations', 14),
    ('INFO', 'BP035', 'updated_at_trigger_missing', 'public.organization_members', 29),
    ('INFO', 'BP035', 'updated_at_trigger_missing', 'public.habit_check_ins', 58),
    ('INFO', 'BP035', 'updated_at_trigger_missing', 'public.sessions', 74),
    ('INFO', 'BP013', 'unindexed_foreign_keys', 'public.events.events_session_id_fkey', 94),
    ('INFO', 'BP035', 'updated_at_trigger_missing', 'public.feature_flags', 107),
    ('INFO', 'BP013', 'unindexed_foreign_keys',
     'public.feature_flag_assignments.feature_flag_assignments_feature_flag_id_fkey', 119),
    ('INFO', 'BP013', 'unindexed_foreign_keys',
     'public.feature_flag_assignments.feature_flag_assignments_organization_id_fkey', 120),
    ('INFO', 'BP013', 'unindexed_foreign_keys',
     'public.feature_flag_assignments.feature_flag_assignments_user_id_fkey', 121),
    ('INFO', 'BP013', 'unindexed_foreign_keys', 'public.audit_logs.audit_logs_user_id_fkey', 221),
]


def findings():
    return audit_sql([(str(ARTICLE), ARTICLE.read_text(encoding="utf-8"))])


def test_the_article_sql_yields_exactly_these_findings():
    assert [(f.level.value, f.rule_id, f.name, f.object, f.line) for f in findings()] == EXPECTED


def test_the_findings_the_issue_names_are_among_them():
    got = {(f.name, f.object) for f in findings()}
    assert ("auth_rls_initplan", "public.habits.Users see own org habits") in got  # unwrapped auth.uid()
    assert ("update_without_with_check", "public.habits.Members can update habits") in got
    assert {("rls_disabled_in_public", f"public.{t}") for t in ("sessions", "feature_flags",
                                                                "feature_flag_assignments")} <= got
    assert {("tenant_key_nullable", f"public.{t}") for t in ("habits", "events", "sessions")} <= got
    assert ("function_search_path_mutable", "public.update_updated_at") in got  # the trigger function
    assert ("materialized_view_in_api", "public.daily_org_metrics") in got


def test_every_finding_carries_a_position_remediation_and_where_mechanical_fix_sql():
    found = findings()
    assert all(f.file == str(ARTICLE) and f.line and f.column and f.remediation and f.categories for f in found)
    fixes = {(f.rule_id, f.object): f.fix_sql for f in found}
    assert fixes[("BP016", "public.habits.Users see own org habits")].startswith(
        'alter policy "Users see own org habits" on public.habits using (')
    assert fixes[("BP003", "public.sessions")] == "alter table public.sessions enable row level security;"
    assert fixes[("BP009", "public.update_updated_at")] == \
        "alter function public.update_updated_at() set search_path = pg_catalog, pg_temp;"


def test_cli_on_the_article_exits_1_and_summarises(capsys):
    assert main(["audit", str(ARTICLE)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "65 finding(s): 18 error(s), 36 warning(s), 11 info"
