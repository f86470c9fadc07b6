"""Privacy: consent flags, audit logging for chosen tables, PII kept out of analytics."""

from __future__ import annotations

from pydantic import Field

from .base import Ident, Model
from .limits import NAMES_PER_LIST

# Keys that are personal data in any app; event properties may never carry them.
BUILTIN_PII_KEYS = ("email", "phone", "phone_number", "full_name", "first_name", "last_name",
                    "address", "ip", "ip_address", "password", "ssn", "date_of_birth")


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
