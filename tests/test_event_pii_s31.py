"""Personal-data keys in event properties (red team 31 F10): the model, the events check and log-event compare a key
by its pii_form() (`E-Mail`, `e_mail` and `emailAddress` are `email` and `email_address`), and the built-ins cover
the keys the list lacked. log-event's side runs under Deno (tests/deno/log_event_validate_test.ts)."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from blueprint_mcp.model import InvalidBlueprint, parse_blueprint
from blueprint_mcp.model.privacy import BUILTIN_PII_KEYS, EVENT_PII_KEYS, pii_form
from blueprint_mcp.sql.tables import events
from blueprint_mcp.templates import load_template


def _blueprint(properties: list[str], **privacy) -> dict:
    return {"app": {"name": "Ev", "slug": "ev"}, "entities": [{"name": "notes", "fields": [{"name": "body",
            "type": "text"}]}], "privacy": privacy,
            "analytics": {"events": [{"name": "note_shared", "category": "engagement", "properties": properties}]}}


@pytest.mark.parametrize("key", ["username", "e_mail", "first_name", "postal_code", "mail", "token"])
def test_an_event_may_not_declare_a_key_the_check_or_log_event_refuses(key):
    # log-event refuses its own keys (`username`) before it reads the declared ones: such an event could never be
    # logged. Spelled with `_` elsewhere (`e_mail`), a key is still the one it spells.
    with pytest.raises(InvalidBlueprint) as raised:
        parse_blueprint(_blueprint([key, "channel"]))
    assert [p[0] for p in raised.value.problems] == ["analytics.events[0].properties[0]"]
    assert "personal data or a secret" in raised.value.problems[0][1]


def test_keys_that_only_resemble_personal_data_may_be_declared():
    bp = parse_blueprint(_blueprint(["emails_sent", "mobile_app", "channel", "email_opened"]))
    assert bp.analytics.events[0].properties == ["emails_sent", "mobile_app", "channel", "email_opened"]


def test_a_declared_pii_key_is_compared_by_its_form():
    with pytest.raises(InvalidBlueprint) as raised:
        parse_blueprint(_blueprint(["loyalty_id"], pii_keys=["loyaltyid"]))
    assert [p[0] for p in raised.value.problems] == ["analytics.events[0].properties[0]"]


def test_the_builtins_cover_the_keys_red_team_31_named():
    forms = {pii_form(k) for k in [*BUILTIN_PII_KEYS, *EVENT_PII_KEYS]}
    for key in ["e_mail", "emailAddress", "mail", "birth_date", "postal_code", "social_security_number", "surname",
                "street_address", "mobile", "Phone-Number"]:
        assert pii_form(key) in forms, key


def _check_pattern() -> str:
    """The jsonpath of the events check, as the generator writes it for habit-tracker."""
    table = events(load_template("habit-tracker"))
    check = next(c for c in table.constraints if c.name.endswith("properties_check"))
    return re.search(r"jsonb_path_exists\(properties, '(.*)'\)\)?$", check.expression).group(1).replace("''", "'")


KEYS = st.one_of(
    # (and keys whose case folding depends on the locale: `İ` folds to `i` under en_US, not in log-event)
    st.sampled_from([*BUILTIN_PII_KEYS, "emails_sent", "mobile_app", "email_opened", "plan", "name", "notes",
                     "EMAİL", "emaıl", "ＥＭＡＩＬ"]),
    st.text(alphabet="abdeilmnoprstuEMNP_-", min_size=1, max_size=14))


@pytest.fixture(scope="module")
def conn(pg_cluster):
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as connection:
        yield connection


@pytest.mark.postgres
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.one_of(KEYS, KEYS.map(lambda k: k.upper()), KEYS.map(lambda k: f"_{k}-")), nested=st.booleans())
def test_the_events_check_refuses_exactly_the_keys_whose_form_is_personal(conn, key, nested):
    bp = load_template("habit-tracker")
    forms = {pii_form(k) for k in bp.pii_keys()}
    properties = {"context": [{key: 1}]} if nested else {key: 1}
    found = conn.execute("select jsonb_path_exists(%s::jsonb, %s::jsonpath)",
                         (json.dumps(properties), _check_pattern())).fetchone()[0]
    assert found == (pii_form(key) in forms), key
