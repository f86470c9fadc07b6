"""Real apps against the model (session 30, helper q): refusals a founder met writing a learning platform and a
community, each pinned with its blueprint, the refusal's fix followed, and the result verified on PostgreSQL and
audited clean."""

from __future__ import annotations

import pytest
import yaml

from blueprint_mcp.model import InvalidBlueprint, parse_blueprint
from blueprint_mcp.tools import blueprint_sql

from fit_checks import verified

pytestmark = pytest.mark.postgres

TENANCY = {
    "personal_workspaces": False,
    "capabilities": [{"name": "grade", "description": "Read and write grades."}],
    "roles": [
        {"name": "owner", "capabilities": ["read", "write", "manage_members", "manage_billing",
                                           "delete_organization", "grade"]},
        {"name": "instructor", "capabilities": ["read", "write", "grade"]},
        {"name": "assistant", "capabilities": ["read"]},
    ],
}


@pytest.fixture(scope="module")
def url(pg_cluster):
    """One empty database: verify installs the shim itself and rolls everything back."""
    pg_cluster.create_database("fit_s30")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/fit_s30"
    pg_cluster.drop_database("fit_s30")


def learning(update: list[dict]) -> dict:
    """Students (portal users linked through their enrolment) edit their own draft submissions."""
    return {
        "app": {"name": "Coursework", "slug": "coursework"},
        "tenancy": TENANCY,
        "entities": [
            {"name": "enrolments",
             "fields": [{"name": "student_id", "type": "reference", "references": "auth.users",
                         "on_delete": "cascade"}],
             "access": {"select": [{"min_role": "assistant"}, {"linked": ["student_id"]}],
                        "insert": "instructor", "update": "instructor", "delete": "instructor"}},
            {"name": "submissions",
             "fields": [{"name": "enrolment_id", "type": "reference", "references": "enrolments",
                         "nullable": False, "on_delete": "cascade"},
                        {"name": "body", "type": "text", "nullable": False},
                        {"name": "status", "type": "enum", "values": ["draft", "submitted"], "nullable": False,
                         "default": "draft"}],
             "access": {"select": [{"min_role": "assistant"}, {"linked": ["enrolment_id", "student_id"]}],
                        "insert": [{"min_role": "instructor"}, {"linked": ["enrolment_id", "student_id"]}],
                        "update": update,
                        "delete": []}},
        ],
    }


STUDENT_EDITS_DRAFT = {"linked": ["enrolment_id", "student_id"], "where": {"column": "status", "equals": "draft"}}


def test_member_grant_fix_names_this_tenancys_writers_and_is_accepted(url):
    """A linked-only update list is refused (no member grant); the fix named {min_role: viewer}, a role this
    tenancy does not have (following it was refused again), or {capability: read}, which on an update hands every
    reader (the assistants) the write. It now names the least role holding write here, the write capability or
    the top role, and each is accepted; the top role's is verified."""
    with pytest.raises(InvalidBlueprint) as refused:
        parse_blueprint(learning([STUDENT_EDITS_DRAFT]))
    message = str(refused.value)
    assert "entities[1].access.update: no grant names members" in message
    assert "{min_role: instructor} (the least role holding write)" in message
    assert "{capability: write}" in message and "{roles: [owner]}" in message
    assert "viewer" not in message and "{capability: read}" not in message
    for fix in ({"min_role": "instructor"}, {"capability": "write"}):
        parse_blueprint(learning([STUDENT_EDITS_DRAFT, fix]))
    verified(learning([STUDENT_EDITS_DRAFT, {"roles": ["owner"]}]), url)


def test_member_grant_fix_on_select_names_the_least_reader():
    data = learning([STUDENT_EDITS_DRAFT, {"roles": ["owner"]}])
    data["entities"][1]["access"]["select"] = [{"linked": ["enrolment_id", "student_id"]}]
    with pytest.raises(InvalidBlueprint) as refused:
        parse_blueprint(data)
    assert "{min_role: assistant} (the least role holding read), {capability: read}" in str(refused.value)


def community(kinds: list[str], default: str) -> dict:
    """A reaction 'like' (and a public audience 'all'): enum values are quoted literals in every output."""
    return {
        "app": {"name": "Guild", "slug": "guild"},
        "entities": [
            {"name": "posts",
             "fields": [{"name": "title", "type": "text", "nullable": False}],
             "access": {"select": "viewer", "insert": "member", "update": "member", "delete": "admin"}},
            {"name": "reactions",
             "fields": [{"name": "post_id", "type": "reference", "references": "posts", "nullable": False,
                         "on_delete": "cascade"},
                        {"name": "kind", "type": "enum", "values": kinds, "nullable": False, "default": default}],
             "transitions": [{"column": "kind", "initial": [default, "all"],
                              "moves": {default: ["all", "love"], "all": [default]}}],
             "access": {"select": [{"min_role": "viewer"}, {"public": True,
                                                             "where": {"column": "kind", "in": [default, "all"]}}],
                        "insert": "member", "update": [{"min_role": "member", "own": True}],
                        "delete": [{"min_role": "member", "own": True}]}},
        ],
    }


def test_reserved_words_are_enum_values(url):
    """'like' was refused as a reserved word (fix: 'like_'), though no output spells a value as a name: the enum
    type, defaults, transitions, policies, seed and generated types quote it."""
    bp = parse_blueprint(community(["like", "love", "all"], "like"))
    assert bp.entity("reactions").fields[1].values == ["like", "love", "all"]
    sql = "".join(text for _, text in blueprint_sql(bp, "x"))
    assert "'like', 'love', 'all'" in sql and "reactions_kind_enum not null default 'like'" in sql
    verified(community(["like", "love", "all"], "like"), url)


def test_enum_values_keep_the_identifier_shape():
    for bad in ("Like", "thumbs up", "1st"):
        with pytest.raises(InvalidBlueprint, match="not a valid identifier"):
            parse_blueprint(community([bad, "love", "all"], bad))


POLL = """
app: {name: Poll, slug: poll}
entities:
  - name: votes
    fields:
      - {name: answer, type: enum, values: [yes, no, maybe], nullable: false, default: maybe}
      - {name: light, type: enum, values: [on, off]}
"""


def test_yaml_booleans_where_a_string_belongs_say_to_quote_them(url):
    """A poll's answers [yes, no] reach the model as [true, false] (YAML 1.1): the refusal said only "expected a
    string; got true.", naming neither the value written nor the fix. It now says to quote it, and the quoted
    blueprint ('on' a reserved word too) is accepted, verified and audited clean."""
    with pytest.raises(InvalidBlueprint) as refused:
        parse_blueprint(yaml.safe_load(POLL))
    message = str(refused.value)
    assert "entities[0].fields[0].values[0]: expected a string; got true. Fix: quote the value" in message
    assert "entities[0].fields[1].values[1]: expected a string; got false. Fix: quote the value" in message
    quoted = POLL.replace("[yes, no, maybe]", "['yes', 'no', maybe]").replace("[on, off]", "['on', 'off']")
    verified(yaml.safe_load(quoted), url)
