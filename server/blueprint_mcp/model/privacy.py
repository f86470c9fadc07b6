"""Privacy: consent flags, audit logging for chosen tables, PII kept out of analytics."""

from __future__ import annotations

from pydantic import Field

from .base import Ident, Model
from .limits import NAMES_PER_LIST

# Keys that are personal data in any app; event properties may never carry them. Compared in pii_form(): `E-Mail`,
# `e_mail` and `emailAddress` are `email` and `email_address` (red team 31 F10).
BUILTIN_PII_KEYS = ("email", "email_address", "phone", "phone_number", "mobile", "mobile_number", "full_name",
                    "first_name", "last_name", "surname", "address", "street_address", "postal_code", "ip",
                    "ip_address", "password", "ssn", "social_security_number", "date_of_birth", "birth_date")


def pii_form(key: str) -> str:
    """`key` as personal-data keys are compared: lower case, without `_` and `-` (`E-Mail`, `e_mail`: `email`)."""
    return key.lower().replace("_", "").replace("-", "")


# log-event: what event properties may carry, beyond the database's check (events.properties holds none of
# the blueprint's pii_keys() at any depth, in any case, `_` and `-` aside). Keys refused at any depth besides
# pii_keys(), and never declared as an event's properties (log-event would refuse every such event):
EVENT_PII_KEYS = ("name", "username", "display_name", "mail", "token", "access_token", "refresh_token", "secret",
                  "api_key", "birthday", "dob", "postcode", "zip_code", "card_number", "iban", "passport")
# Words that make a key nobody declared look personal or secret (`user_email`, `ip_address`, `access_token`):
# matched against the `_`-separated words of keys the event does not declare.
EVENT_PII_WORDS = ("email", "mail", "phone", "password", "passwd", "ssn", "address", "street", "postcode", "postal",
                   "ip", "token", "secret", "passport", "iban", "surname", "firstname", "lastname", "fullname",
                   "username", "birthdate", "dob")


class Privacy(Model):
    """Consent flags, audit logging of chosen tables, and personal data kept out of analytics."""

    consent_flags: list[Ident] = Field(
        default_factory=lambda: ["consent_for_personalization", "consent_for_ai_recommendations"],
        max_length=NAMES_PER_LIST,
        description="Boolean columns on profiles, default false (opt-in).",
    )
    audit_tables: list[Ident] = Field(
        default_factory=list, max_length=NAMES_PER_LIST,
        description="Tables whose writes are logged to audit_logs: entity names (not scope: user), 'organizations' "
        "or 'organization_members'. A table's entries are read by the audit readers who may read all its rows. An "
        "audited entity's pii fields (kept in <entity>_private) are audited with it: that table is added here.",
    )
    audit_retention_days: int = Field(
        365, ge=1, le=36500,
        description="audit_logs is append-only; private.purge_audit_logs() deletes rows older than this (schedule it, "
                    "e.g. daily with pg_cron).")
    pii_keys: list[Ident] = Field(
        default_factory=list, max_length=NAMES_PER_LIST,
        description="Extra keys rejected in event properties, beyond built-in ones.",
    )
