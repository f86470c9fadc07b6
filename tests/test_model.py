"""Validation at the boundary: every bad blueprint names the field path and the fix."""

from __future__ import annotations

import copy

import pytest

from blueprint_mcp.model import InvalidBlueprint, Scope, parse_blueprint
from blueprint_mcp.templates import load_template, template_names

BASE = {"app": {"name": "Demo", "slug": "demo"},
        "entities": [{"name": "projects", "fields": [{"name": "title", "type": "text", "nullable": False}]},
                     {"name": "tasks", "fields": [{"name": "project_id", "type": "reference",
                                                   "references": "projects", "nullable": False}]}]}


def with_(path: str, value):
    data = copy.deepcopy(BASE)
    node = data
    keys = path.replace("]", "").replace("[", ".").split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
    last = keys[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


BAD = [
    ("reserved word as field", with_("entities[0].fields[0].name", "select"), "entities[0].fields[0].name", "reserved"),
    ("upper-case table", with_("entities[0].name", "Projects"), "entities[0].name", "try 'projects'"),
    ("unknown type", with_("entities[0].fields[0].type", "string"), "entities[0].fields[0].type",
     "expected one of uuid, text,"),
    ("unknown reference", with_("entities[1].fields[0].references", "project"), "entities[1].fields[0].references",
     "'project' is not an entity"),
    ("generated table name", with_("entities[0].name", "events"), "entities[0].name", "generates itself"),
    ("generated column", with_("entities[0].fields[0].name", "organization_id"), "entities[0].fields[0].name",
     "generated"),
    ("unknown key", with_("entities[0].colour", "red"), "entities[0].colour", "unknown key. Fix: remove it. Accepted keys: name, description,"),
    ("bad slug", with_("app.slug", "My App"), "app.slug", "not a slug"),
    ("enum without values", with_("entities[0].fields[0]", {"name": "state", "type": "enum"}),
     "entities[0].fields[0]", "type enum needs values"),
    ("unknown role override", with_("entities[0].access", {"delete": "superuser"}), "entities[0].access.delete",
     "not a role"),
    ("write override on service scope", with_("entities[0]", {"name": "projects", "scope": "service",
                                                              "access": {"insert": "member"}}),
     "entities[0].access.insert", "service role only"),
    ("restore on service scope", with_("entities[0]", {"name": "projects", "scope": "service", "soft_delete": True,
                                                       "restore": "admin"}),
     "entities[0].restore", "only it restores them"),
    ("query pattern on unknown column", with_("entities[0].query_patterns", [["titel"]]),
     "entities[0].query_patterns[0]", "'titel' is not a column"),
    ("audit of unknown table", with_("privacy.audit_tables", ["nope"]), "privacy.audit_tables[0]", "cannot be audited"),
    ("pii in event properties", with_("analytics.events", [{"name": "x_done", "category": "core_feature",
                                                            "properties": ["email"]}]),
     "analytics.events[0].properties[0]", "'email' is personal data"),
    ("duplicate event", with_("analytics.events", [{"name": "user_signed_up", "category": "auth"}]),
     "analytics.events", "already defined"),
    ("no organisation at all", with_("tenancy", {"personal_workspaces": False, "team_organizations": False}),
     "tenancy", "enable at least one"),
    ("non-monotonic roles", with_("tenancy", {"roles": [
        {"name": "owner", "capabilities": ["read", "write", "manage_members", "manage_billing", "delete_organization"]},
        {"name": "reader", "capabilities": ["read"]},
        {"name": "editor", "capabilities": ["read", "write"]}]}), "tenancy", "reorder the roles"),
    ("global references tenant", with_("entities[1]", {"name": "tags", "scope": "global", "fields": [
        {"name": "project_id", "type": "reference", "references": "projects"}]}),
     "entities[1].fields[0].references", "global entity"),
    ("server_set without a value", with_("entities[0].fields[0]", {"name": "done_at", "type": "timestamptz",
                                                                   "nullable": False, "server_set": True}),
     "entities[0].fields[0]", "a client's insert could never fill it"),
    ("server_set state", with_("entities[0]", {"name": "projects", "fields": [
        {"name": "status", "type": "enum", "values": ["open", "done"], "nullable": False, "default": "open",
         "server_set": True}], "transitions": [{"column": "status", "moves": {"open": ["done"]}}]}),
     "entities[0].transitions[0].column", "'projects.status' is server_set"),
    ("server_set where", with_("entities[0]", {"name": "projects", "fields": [
        {"name": "shared", "type": "boolean", "nullable": False, "default": False, "server_set": True}],
        "access": {"select": [{"min_role": "member"}, {"min_role": "viewer", "where": {"column": "shared",
                                                                                        "equals": True}}]}}),
     "entities[0].access.select[1].where.column", "clients never write it"),
    ("server_set under", with_("entities[1]", {"name": "tasks", "fields": [
        {"name": "project_id", "type": "reference", "references": "projects", "server_set": True}],
        "access": {"insert": [{"min_role": "member", "under": "project_id"}]}}),
     "entities[1].access.insert[0].under", "'tasks.project_id' is server_set"),
    ("visible on a write", with_("entities[1].access", {"select": [{"min_role": "member", "visible": "project_id"}],
                                                          "insert": [{"min_role": "member", "visible": "project_id"}]}),
     "entities[1].access.insert[0].visible", "use visible under access.select only"),
    ("visible on no reference", with_("entities[0].access", {"select": [{"min_role": "member", "visible": "title"}]}),
     "entities[0].access.select[0].visible", "'title' is not a reference from projects"),
    ("visible public over a parent anon cannot read", with_("entities[1].access", {"select": [
        {"min_role": "member"}, {"public": True, "visible": "project_id"}]}),
     "entities[1].access.select[1].visible", "give projects a {public: true, where: ...} select grant"),
    ("server_set unique", with_("entities[0].fields[0]", {"name": "code", "type": "text", "unique": True,
                                                          "server_set": True}),
     "entities[0].fields[0].unique", "is server_set"),
    ("server_set in a key", with_("entities[0]", {"name": "projects", "fields": [
        {"name": "day", "type": "date", "nullable": False, "default_expression": "current_date", "server_set": True}],
        "unique_together": [["day"]]}), "entities[0].unique_together[0]", "drop server_set from day"),
    ("caller default a client may write", with_("entities[0].fields[0]", {
        "name": "reported_by", "type": "reference", "references": "auth.users", "default_expression": "auth_uid"}),
     "entities[0].fields[0].default_expression", "'projects.reported_by' defaults to the signed-in user"),
    ("caller default in a key", with_("entities[0]", {"name": "projects", "fields": [
        {"name": "attendee", "type": "uuid", "nullable": False, "default_expression": "auth_uid", "server_set": True}],
        "unique_together": [["attendee"]]}), "entities[0].unique_together[0]", "'projects.attendee' is server_set"),
    # Red team 25: accepted, and the migration failed with 42701 (every table has these columns)
    ("system column name", with_("entities[0].fields[0].name", "xmin"), "entities[0].fields[0].name",
     "'xmin' is a PostgreSQL system column"),
]


@pytest.mark.parametrize(("case", "data", "path", "text"), BAD, ids=[b[0] for b in BAD])
def test_invalid_blueprint_names_field_and_fix(case, data, path, text):
    with pytest.raises(InvalidBlueprint) as info:
        parse_blueprint(data)
    message = str(info.value)
    assert path in message
    assert text in message
    assert "Fix:" in message


def test_required_reference_cycle_is_rejected():
    data = copy.deepcopy(BASE)
    data["entities"][0]["fields"].append({"name": "task_id", "type": "reference", "references": "tasks",
                                          "nullable": False})
    with pytest.raises(InvalidBlueprint, match="cycle projects -> tasks -> projects"):
        parse_blueprint(data)


def test_nullable_reference_cycle_is_allowed():
    data = copy.deepcopy(BASE)
    data["entities"][0]["fields"].append({"name": "task_id", "type": "reference", "references": "tasks"})
    assert parse_blueprint(data).entity("projects").field("task_id").nullable is True


def test_global_and_service_entities_drop_the_default_owner_column():
    bp = parse_blueprint(with_("entities[0].scope", "global"))
    assert bp.entity("projects").scope is Scope.global_
    assert bp.entity("projects").owner_column is None


@pytest.mark.parametrize("name", template_names())
def test_templates_load_and_round_trip_through_json(name):
    bp = load_template(name)
    assert parse_blueprint(bp.model_dump(mode="json")) == bp


def test_events_include_core_entity_and_custom_events_once():
    bp = load_template("habit-tracker")
    names = [e.name for e in bp.events()]
    assert len(names) == len(set(names))
    assert {"user_signed_up", "habit_created", "habit_check_in_created", "streak_extended"} <= set(names)
    assert "streak_created" not in names  # events: false on streaks


def test_single_membership_with_personal_workspaces_and_teams_is_rejected():
    with pytest.raises(InvalidBlueprint, match="multiple_memberships"):
        parse_blueprint(with_("tenancy", {"multiple_memberships": False}))


def test_a_caller_default_is_accepted_where_no_client_writes_it():
    """server_set (the default records the inserter) and an entity only the service role writes. An assignee
    is the writers' choice: it may not default to the writer (a client could name anyone in it)."""
    caller = {"name": "reported_by", "type": "reference", "references": "auth.users", "default_expression": "auth_uid"}
    assert parse_blueprint(with_("entities[0].fields[0]", {**caller, "server_set": True})) \
        .entity("projects").field("reported_by").server_set
    service = with_("entities[0]", {"name": "projects", "scope": "service", "fields": [caller]})
    assert parse_blueprint(service).entity("projects").field("reported_by").server_set is False
    assigned = with_("entities[0].fields[0]", caller)
    assigned["entities"][0]["access"] = {"select": [{"min_role": "viewer"}],
                                         "update": [{"min_role": "member", "assigned": "reported_by"}]}
    with pytest.raises(InvalidBlueprint, match="drop default_expression where clients choose the user"):
        parse_blueprint(assigned)


def test_server_set_fields_leave_the_client_grants_but_keep_their_default():
    from blueprint_mcp.sql.design import build_schema
    bp = load_template("habit-tracker")
    assert bp.entity("habit_check_ins").field("checked_at").server_set
    t = build_schema(bp).table("habit_check_ins")
    client = {p.privilege: p.columns for p in t.grants["authenticated"]}
    assert "checked_at" not in client["insert"] and "checked_at" not in client["update"]
    assert "habit_id" in client["insert"]
    assert t.column("checked_at").default == "now()"
    assert {p.privilege: p.columns for p in t.grants["service_role"]}["update"] == []  # the whole table
