"""Giving a role (an invitation, a role change) never hands out a right the giver lacks (docs/lifecycle.md L07).

Ranks alone allowed it: app-defined capabilities and exact-role grants need not follow the ranking, so the
marketplace's manager, who does not read payouts, could invite a second account of theirs as a bookkeeper
(who does), and the clinic's admin could do the same as a dentist to read x-rays and clinical notes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from blueprint_mcp.model.blueprint import parse_blueprint
from blueprint_mcp.model.meaning import may_give_role, role_covers, ungrantable
from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.sql.render import rls_sql, schema_sql, triggers_sql
from blueprint_mcp.templates import load_template
from blueprint_mcp.verify.run import verify
from pgutil import build_world, migrate

ROOT = Path(__file__).resolve().parents[1]
PRIVILEGE = "42501"
MARKET_ROLES = ["owner", "manager", "shipper", "bookkeeper"]


def _bp(access: dict, fields: tuple = (), storage: list | None = None, member_caps: tuple = ()) -> object:
    data = {"version": 1, "app": {"name": "T", "slug": "t"},
            "tenancy": {"capabilities": [{"name": "see_secrets"}], "roles": [
                {"name": "owner", "capabilities": ["read", "write", "manage_members", "manage_billing",
                                                   "delete_organization", "see_secrets"]},
                {"name": "admin", "capabilities": ["read", "write", "manage_members"]},
                {"name": "member", "capabilities": ["read", "write", *member_caps]},
                {"name": "viewer", "capabilities": ["read"]}]},
            "entities": [{"name": "notes", "fields": [{"name": "body", "type": "text"}, *fields], "access": access}]}
    if storage:
        data["storage"] = storage
    return parse_blueprint(data)


@pytest.mark.parametrize("name,expected", [
    ("b2b-saas", {}), ("cms", {}), ("e-commerce", {}), ("habit-tracker", {}),
    ("marketplace", {"manager": ["bookkeeper"]}),
])
def test_each_template_withholds_exactly_the_roles_holding_rights_their_manager_lacks(name, expected):
    assert ungrantable(load_template(name)) == expected


@pytest.mark.parametrize("name,expected", [
    ("clinic", {"admin": ["dentist"]}), ("marketplace", {}), ("publishing", {}),
])
def test_each_example_withholds_exactly_the_roles_holding_rights_their_manager_lacks(name, expected):
    bp = parse_blueprint(yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text()))
    assert ungrantable(bp) == expected


@pytest.mark.parametrize("label,bp,withheld", [
    ("ranked grants only", _bp({}), {}),
    ("an exact-role grant leaving the admin out", _bp({"select": [{"roles": ["owner", "member"]}]}),
     {"admin": ["member"]}),
    ("the admin's wider grant covers the member's narrower one",
     _bp({"select": [{"min_role": "admin"}, {"roles": ["member"], "where": {"column": "body", "equals": "x"}}]}), {}),
    ("an app-defined capability the admin lacks", _bp({}, member_caps=("see_secrets",)), {"admin": ["member"]}),
    ("a member reference only members may be named in",
     _bp({}, fields=({"name": "assignee", "type": "reference", "references": "organization_members",
                      "member_roles": ["member"]},)), {"admin": ["member"]}),
    ("a bucket read by the viewer, not the admin",
     _bp({}, storage=[{"name": "files", "access": {"select": [{"roles": ["owner", "viewer"]}]}}]),
     {"admin": ["viewer"]}),
])
def test_a_role_is_withheld_from_a_manager_exactly_when_it_holds_a_right_the_manager_lacks(label, bp, withheld):
    assert ungrantable(bp) == withheld, label
    for granter in ("owner", "admin"):
        for role in ("owner", "admin", "member", "viewer"):
            ranked = ["owner", "admin", "member", "viewer"].index(role) >= ["owner", "admin"].index(granter)
            assert may_give_role(bp, granter, role) == (ranked and role not in withheld.get(granter, [])), \
                (label, granter, role)
    assert not may_give_role(bp, "member", "viewer")  # only managers give roles
    assert role_covers(bp, "owner", "viewer") == ("viewer" not in withheld.get("owner", []))


@pytest.mark.postgres
def test_the_marketplace_manager_gives_every_lower_role_but_the_bookkeeper(make_db):
    conn = make_db("explicit")
    migrate(conn, "marketplace")
    w = build_world(conn, MARKET_ROLES)
    invite = "select public.create_invitation(%s, %s, %s)"
    assert len(w.as_("manager", invite, (w.org1, "packer@example.com", "shipper"))[0][0]) == 64
    assert w.denied("manager", invite, (w.org1, "my.other.account@example.com", "bookkeeper")) == PRIVILEGE
    assert len(w.as_("owner", invite, (w.org1, "accountant@example.com", "bookkeeper"))[0][0]) == 64

    change = "select public.change_member_role(%s, %s, %s)"
    role_of = "select role::text from public.organization_members where organization_id = %s and user_id = %s"
    assert w.denied("manager", change, (w.org1, w.users["shipper"], "bookkeeper")) == PRIVILEGE
    w.as_("manager", change, (w.org1, w.users["bookkeeper"], "shipper"))  # taking a right away is theirs to do
    assert w.su(role_of, (w.org1, w.users["bookkeeper"])) == [("shipper",)]
    w.as_("owner", change, (w.org1, w.users["shipper"], "bookkeeper"))
    assert w.su(role_of, (w.org1, w.users["shipper"])) == [("bookkeeper",)]

    # A co-owner's invitation to a bookkeeper goes when they become a manager, who may not give the role; their
    # invitation to a shipper stays.
    w.su("insert into public.organization_members (organization_id, user_id, role) values (%s, %s, 'owner')",
         (w.org1, w.users["owner2"]))
    w.as_("owner2", invite, (w.org1, "books@example.com", "bookkeeper"))
    w.as_("owner2", invite, (w.org1, "boxes@example.com", "shipper"))
    w.su("update public.organization_members set role = 'manager' where organization_id = %s and user_id = %s",
         (w.org1, w.users["owner2"]))
    pending = "select email from public.invitations where invited_by = %s and accepted_at is null order by email"
    assert w.su(pending, (w.users["owner2"],)) == [("boxes@example.com",)]


@pytest.mark.postgres
def test_verify_fails_the_marketplace_when_managers_may_give_the_bookkeeper_role(pg_cluster):
    bp = load_template("marketplace")
    schema = build_schema(bp)
    migrations = [schema_sql(schema, "m"), rls_sql(schema, "m"), triggers_sql(schema, "m")]
    withheld = "= any (case my_role when 'manager' then array['bookkeeper']::public.member_role[] else"
    accepted = (" and not invite.role = any (case m.role when 'manager' then array['bookkeeper']::public.member_role[] "
                "else '{}'::public.member_role[] end)")
    assert sum(m.count(withheld) for m in migrations) == 2 and sum(m.count(accepted) for m in migrations) == 1
    holes = [m.replace(f"if invitee_role {withheld}", f"if false and invitee_role {withheld}")
             .replace(f"if new_role {withheld}", f"if false and new_role {withheld}").replace(accepted, "")
             for m in migrations]
    pg_cluster.create_database("role_giving")
    try:
        report = verify(source="holes", migrations=holes, blueprint=bp,
                        database_url=f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/role_giving")
    finally:
        pg_cluster.drop_database("role_giving")
    failing = {f.attack for f in report.failures if f.attack}
    assert failing == {"manager invites a bookkeeper (a role with rights manager lacks)",
                       "an invitation to a bookkeeper from a manager is accepted",
                       "manager makes a shipper a bookkeeper (rights manager lacks)"}, sorted(failing)
