"""Table builders: the core tenancy tables, the domain entities, analytics and privacy tables."""

from __future__ import annotations

from ..model import Blueprint, Entity, EventCategory, FieldType, Scope
from ..model.entities import Requirement
from ..model.blueprint import ROLE_TYPE
from ..model.meaning import erased_with_author
from ..model.privacy import pii_form
from ..model.schema import Column, Constraint, EnumType, Table
from . import columns as c
from .ident import ident, literal

EVENT_SOURCES = ("app", "api", "system")
CLIENT_TYPES = ("web", "ios", "android", "desktop", "api")


def role_enum(bp: Blueprint) -> EnumType:
    # Declared least privileged first, so `role >= 'admin'` means "admin or above".
    return EnumType(schema_name="public", name=ROLE_TYPE, values=[r.name for r in reversed(bp.tenancy.roles)],
                    comment="Membership roles, least privileged first: comparisons rank them.")


def entity_enums(bp: Blueprint) -> list[EnumType]:
    names = c.enum_type_names(bp)
    return [EnumType(schema_name="public", name=names[(e.name, f.name)], values=list(f.values or []),
                     comment=f"Values of {e.name}.{f.name}.") for e, f in c.model_uses_enum(bp)]


def profiles(bp: Blueprint) -> Table:
    t = Table(name="profiles", section="core", comment="One row per auth user, created by the signup trigger.")
    t.columns = [
        Column(name="id", type="uuid", nullable=False, comment="Same id as auth.users."),
        Column(name="full_name", type="text", pii=True),
        Column(name="avatar_url", type="text"),
        Column(name="time_zone", type="text", nullable=False, default="'UTC'"),
        *[Column(name=flag, type="boolean", nullable=False, default="false", comment="Opt-in consent.")
          for flag in bp.privacy.consent_flags],
        *c.timestamps(),
    ]
    t.constraints = [c.primary_key(t.name), c.check(t.name, "full_name", "char_length(full_name) <= 200")]
    t.foreign_keys = [c.auth_user_fk(t.name, "id")]
    return t


def organizations(bp: Blueprint) -> Table:
    t = Table(name="organizations", section="core", comment="Tenants: personal workspaces and team organisations.")
    t.columns = [
        c.id_column(),
        Column(name="name", type="text", nullable=False),
        Column(name="slug", type="text", nullable=False),
        Column(name="is_personal", type="boolean", nullable=False, default="false"),
        Column(name="owner_user_id", type="uuid", nullable=False, default="auth.uid()",
               comment="The primary owner; always holds an owner membership. Changed only by transfer_ownership; "
                       "their account cannot be deleted while the organisation has other members."),
        *c.timestamps(),
    ]
    t.constraints = [
        c.primary_key(t.name), c.unique(t.name, ["slug"]),
        c.check(t.name, "name", "char_length(name) between 1 and 200"),
        c.check(t.name, "slug", "slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'"),
    ]
    # restrict: deleting the owner's account removes their personal workspace and teams nobody else is in
    # first (a trigger on auth.users), and is refused while a team has other members.
    t.foreign_keys = [c.auth_user_fk(t.name, "owner_user_id", "restrict")]
    return t


def organization_members(bp: Blueprint) -> Table:
    writers = "the lifecycle functions (accept_invitation, change_member_role, transfer_ownership)" \
        if bp.tenancy.team_organizations else "the signup trigger"
    t = Table(name="organization_members", section="core", tenant_key=c.ORG,
              comment=f"Who belongs to which organisation, with which role. Written by {writers}, never by a client.")
    t.columns = [
        c.id_column(), c.tenant_column(),
        Column(name="user_id", type="uuid", nullable=False),
        Column(name="role", type=f"public.{ROLE_TYPE}", nullable=False,
               default=literal(bp.tenancy.default_member_role.name)),
        *c.timestamps(),
    ]
    t.constraints = [c.primary_key(t.name), c.unique(t.name, [c.ORG, "user_id"])]
    if not bp.tenancy.multiple_memberships:
        t.constraints.append(c.unique(t.name, ["user_id"]))
    t.foreign_keys = [c.organization_fk(t.name), c.auth_user_fk(t.name, "user_id")]
    return t


INVITATION_DAYS = 7  # the longest an invitation lives; the server sets and caps expires_at


def invitations(bp: Blueprint) -> Table:
    t = Table(name="invitations", section="core", tenant_key=c.ORG,
              comment="Pending invitations, created by create_invitation() and accepted by accept_invitation(); "
                      "their secrets are kept as hashes in private.invitation_tokens.")
    t.columns = [
        c.id_column(), c.tenant_column(),
        Column(name="email", type="text", nullable=False, pii=True,
               comment="Stored lower-cased: addresses compare case-insensitively."),
        Column(name="role", type=f"public.{ROLE_TYPE}", nullable=False,
               default=literal(bp.tenancy.default_member_role.name)),
        Column(name="invited_by", type="uuid", default="auth.uid()",
               comment="Pending invitations are revoked when the inviter leaves or drops below the invited role."),
        Column(name="expires_at", type="timestamptz", nullable=False, default=f"now() + interval '{INVITATION_DAYS} days'",
               comment=f"Set by the server: at most {INVITATION_DAYS} days after creation."),
        Column(name="accepted_at", type="timestamptz"),
        Column(name="accepted_by", type="uuid"),
        # Sent at the clock's time, not the transaction's: accept_invitation() compares it with when the invitee
        # left or was demoted (private.membership_changes), which one transaction may do first.
        Column(name="created_at", type="timestamptz", nullable=False, default="clock_timestamp()"),
        *c.timestamps()[1:],
    ]
    t.constraints = [
        c.primary_key(t.name),
        c.check(t.name, "email", "email ~ '^[^@[:space:]]+@[^@[:space:]]+$' and email = lower(email)"),
    ]
    t.foreign_keys = [c.organization_fk(t.name), c.auth_user_fk(t.name, "invited_by", "set null"),
                      c.auth_user_fk(t.name, "accepted_by", "set null")]
    t.indexes = [c.index(t.name, [c.ORG, "email"], unique_=True, where="accepted_at is null")]
    return t


def invitation_tokens(bp: Blueprint) -> Table:
    """Invitation secrets, out of the API's reach: only their SHA-256, read by accept_invitation()."""
    t = Table(schema_name="private", name="invitation_tokens", section="core",
              comment="SHA-256 of each pending invitation's secret; no client role can read it. Deleted on use.")
    t.columns = [
        Column(name="invitation_id", type="uuid", nullable=False),
        Column(name="token_hash", type="bytea", nullable=False),
        Column(name="created_at", type="timestamptz", nullable=False, default="now()"),
    ]
    t.constraints = [Constraint(name=c.object_name(t.name, suffix="pkey"), kind="primary key",
                                columns=["invitation_id"]),
                     c.unique(t.name, ["token_hash"])]
    t.foreign_keys = [c.foreign_key(t.name, ["invitation_id"], "invitations", ["id"], "cascade")]
    return t


def membership_changes(bp: Blueprint) -> Table:
    """When each member last left, was removed or was demoted, and the role they kept: accept_invitation() refuses
    an invitation sent before that, above what they kept, whatever address it was sent to (L11)."""
    t = Table(schema_name="private", name="membership_changes", section="core", tenant_key=c.ORG,
              comment="When a member last left, was removed or was demoted, and the role they kept (null: none). "
                      "accept_invitation() refuses an invitation sent before then, above that role, to any "
                      "address: no coming back, or up, through it. Written by a trigger; no client role reads it.")
    t.columns = [
        Column(name=c.ORG, type="uuid", nullable=False),
        Column(name="user_id", type="uuid", nullable=False),
        Column(name="role", type=f"public.{ROLE_TYPE}"),
        Column(name="changed_at", type="timestamptz", nullable=False, default="clock_timestamp()"),
    ]
    t.constraints = [Constraint(name=c.object_name(t.name, suffix="pkey"), kind="primary key",
                                columns=[c.ORG, "user_id"])]
    t.foreign_keys = [c.organization_fk(t.name), c.auth_user_fk(t.name, "user_id")]
    t.indexes = [c.index(t.name, ["user_id"])]
    return t


COMPARISONS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "ne": "<>"}
RANGE_TYPES = {FieldType.timestamptz: "tstzrange", FieldType.date: "daterange", FieldType.integer: "int4range",
               FieldType.bigint: "int8range", FieldType.numeric: "numrange"}


def referenced_entities(bp: Blueprint) -> set[str]:
    return {f.references for e in bp.entities for f in e.fields if f.is_reference and not f.is_user_column}


def entity_table(bp: Blueprint, e: Entity, enum_types: dict[tuple[str, str], str] | None = None) -> Table:
    """A domain table: tenant key, owner, fields, composite FKs into the same tenant, indexes. `enum_types`:
    `columns.enum_type_names(bp)`, which the caller building every table computes once (it walks every field)."""
    t = Table(name=e.name, section="domain", comment=e.description,
              tenant_key=c.ORG if e.is_tenant else None)
    t.columns = [c.id_column()]
    t.constraints = [c.primary_key(e.name)]
    if e.is_tenant:
        t.columns.append(c.tenant_column())
        t.foreign_keys.append(c.organization_fk(e.name))
        # (organization_id, id) is what tenant-safe composite FKs point at; it also indexes the tenant key.
        t.constraints.append(c.unique(e.name, [c.ORG, "id"]))
    if e.owner_column:
        private, erased = e.scope is Scope.user, erased_with_author(bp, e)
        t.columns.append(c.owner_column(e.owner_column, private, erased))
        t.foreign_keys.append(c.auth_user_fk(e.name, e.owner_column, "cascade" if private or erased else "set null"))
    enum_types = c.enum_type_names(bp) if enum_types is None else enum_types
    for f in e.fields:
        t.columns.append(c.field_column(e, f, enum_types.get((e.name, f.name))))
        if f.unique:
            _add_unique(t, e, [f.name])
        if f.check:
            t.constraints.append(c.check(e.name, f.name, c.check_expression(f.name, f.check)))
        if f.is_reference:
            t.foreign_keys.append(_reference_fk(bp, e, f))
    for cols in e.unique_together:
        _add_unique(t, e, list(cols))
    for cmp in e.checks:
        t.constraints.append(c.check(e.name, f"{cmp.column}_{cmp.op}_{cmp.other}",
                                     f"{ident(cmp.column)} {COMPARISONS[cmp.op]} {ident(cmp.other)}"))
    for k, r in enumerate(e.requires):
        t.constraints.append(c.check(e.name, f"requires_{k + 1}", requirement_expression(r)))
    for ex in e.exclusions:
        # An archived row holds no range (a cancelled booking frees its slot; restoring it into a slot taken
        # since is refused, 23P01): red team 16 found archived rows blocking their slots for every client.
        t.constraints.append(c.exclusion(e.name, [c.ORG, *ex.keys], ex.range, RANGE_TYPES[e.field(ex.range[0]).type],
                                         "archived_at is null" if e.soft_delete else None))
    if e.soft_delete:
        t.columns.append(Column(name="archived_at", type="timestamptz", comment="Soft delete: set instead of deleting."))
    t.columns += c.timestamps()
    for pattern in e.query_patterns:
        c.add_index(t, list(pattern))
    return t


def requirement_expression(r: Requirement) -> str:
    """`kind <> 'reply' or rating is null`: a row outside the condition passes, one inside meets every part
    (a NULL in the condition's column passes, as any CHECK does)."""
    values = r.when.values
    outside = (f"{ident(r.when.column)} <> {literal(values[0])}" if len(values) == 1 else
               f"{ident(r.when.column)} not in ({', '.join(literal(v) for v in values)})")
    parts = [f"{ident(f)} is not null" for f in r.filled] + [f"{ident(f)} is null" for f in r.empty]
    return f"{outside} or " + (parts[0] if len(parts) == 1 else f"({' and '.join(parts)})")


def _add_unique(t: Table, e: Entity, columns: list[str]) -> None:
    """A unique key, inside the organisation for tenant entities; NULLs are distinct (plain SQL
    `unique`): a row with a missing optional part never conflicts. A key already there is not repeated."""
    key = ([c.ORG] if e.is_tenant else []) + [col for col in columns if not (e.is_tenant and col == c.ORG)]
    if any(set(k.columns) == set(key) for k in t.constraints if k.kind in ("primary key", "unique")):
        return
    t.constraints.append(c.unique(e.name, key))


def _reference_fk(bp: Blueprint, e: Entity, f) -> object:
    on_delete = f.effective_on_delete
    if f.references_auth_users:
        return c.auth_user_fk(e.name, f.name, on_delete)
    if f.references_member:
        # A member of this row's organisation: the FK onto (organization_id, user_id) makes a user of
        # another organisation, or a removed member, impossible; set null clears only this column.
        return c.foreign_key(e.name, [c.ORG, f.name], "organization_members", [c.ORG, "user_id"], on_delete,
                             set_null_columns=[f.name] if on_delete == "set null" else None)
    target = bp.entity(f.references)
    if e.is_tenant and target.is_tenant:
        # Composite: a row can only point at a row of its own organisation (FK checks bypass RLS).
        return c.foreign_key(e.name, [c.ORG, f.name], target.name, [c.ORG, "id"], on_delete,
                             set_null_columns=[f.name] if on_delete == "set null" else None)
    return c.foreign_key(e.name, [f.name], target.name, ["id"], on_delete)


def sessions(bp: Blueprint) -> Table:
    t = Table(name="sessions", section="analytics", tenant_key=c.ORG,
              comment="Client sessions, written by the service role: the track-session edge function starts and ends "
                      "the caller's own; log-event accepts an event's session_id only among the caller's own.")
    t.columns = [
        c.id_column(), c.tenant_column(),
        Column(name="user_id", type="uuid", nullable=False),
        Column(name="started_at", type="timestamptz", nullable=False, default="now()"),
        Column(name="ended_at", type="timestamptz"),
        Column(name="client_type", type="text"),
        Column(name="user_agent", type="text"),
        Column(name="country", type="text", comment="ISO 3166-1 alpha-2; no finer location is stored."),
        *c.timestamps(),
    ]
    t.constraints = [
        c.primary_key(t.name), c.unique(t.name, [c.ORG, "id"]),
        c.check(t.name, "client_type", f"client_type in ({', '.join(literal(v) for v in CLIENT_TYPES)})"),
        c.check(t.name, "country", "country ~ '^[A-Z]{2}$'"),
        c.check(t.name, "ended_at", "ended_at is null or ended_at >= started_at"),
    ]
    t.foreign_keys = [c.organization_fk(t.name), c.auth_user_fk(t.name, "user_id")]
    t.indexes = [c.index(t.name, [c.ORG, "started_at"]), c.index(t.name, ["user_id", "started_at"])]
    return t


def events(bp: Blueprint) -> Table:
    t = Table(name="events", section="analytics", tenant_key=c.ORG,
              comment="Analytics events of the canonical taxonomy; service role writes, no raw PII.")
    t.columns = [
        c.id_column(), c.tenant_column(),
        Column(name="user_id", type="uuid", comment="Null for system events."),
        Column(name="session_id", type="uuid"),
        Column(name="event_name", type="text", nullable=False),
        Column(name="event_category", type="text", nullable=False),
        Column(name="event_source", type="text", nullable=False, default="'app'"),
        Column(name="properties", type="jsonb", nullable=False, default="'{}'::jsonb",
               comment="Context for the event; personal data is rejected by a check."),
        Column(name="occurred_at", type="timestamptz", nullable=False, default="now()"),
        *c.timestamps(updated=False),
    ]
    # Personal-data keys at any depth, in any case, with `_` or `-` anywhere or not (`Email`, `e_mail`, `phoneNumber`,
    # `first-name`): the key's pii_form() is one of theirs, as log-event and the model compare them. Case is folded
    # by ASCII classes, not `flag "i"`, whose folding follows the database's locale (under en_US `İ` would be `i`
    # here and not in log-event: red team 33).
    forms = dict.fromkeys(pii_form(k) for k in bp.pii_keys())
    keys = "|".join("[_-]*".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in form) for form in forms)
    pii_path = f'lax $.** ? (@.type() == "object").keyvalue() ? (@.key like_regex "^[_-]*({keys})[_-]*$")'
    t.constraints = [
        c.primary_key(t.name),
        c.check(t.name, "event_name", "event_name ~ '^[a-z][a-z0-9_]{0,62}$'"),
        c.check(t.name, "event_category",
                f"event_category in ({', '.join(literal(x.value) for x in EventCategory)})"),
        c.check(t.name, "event_source", f"event_source in ({', '.join(literal(v) for v in EVENT_SOURCES)})"),
        c.check(t.name, "properties",
                f"jsonb_typeof(properties) = 'object' and not jsonb_path_exists(properties, {literal(pii_path)})"),
    ]
    t.foreign_keys = [c.organization_fk(t.name), c.auth_user_fk(t.name, "user_id", "set null")]
    if bp.analytics.sessions:
        t.foreign_keys.append(c.foreign_key(t.name, [c.ORG, "session_id"], "sessions", [c.ORG, "id"], "set null",
                                            set_null_columns=["session_id"]))
    t.indexes = [c.index(t.name, [c.ORG, "occurred_at"]), c.index(t.name, ["event_name", "occurred_at"]),
                 c.index(t.name, ["user_id", "occurred_at"])]
    return t


def feature_flags(bp: Blueprint) -> Table:
    t = Table(name="feature_flags", section="analytics", comment="Flags for gradual rollout; service role writes.")
    t.columns = [
        c.id_column(),
        Column(name="key", type="text", nullable=False),
        Column(name="description", type="text"),
        Column(name="enabled", type="boolean", nullable=False, default="false"),
        Column(name="rollout_strategy", type="jsonb", nullable=False, default="'{}'::jsonb"),
        *c.timestamps(),
    ]
    t.constraints = [c.primary_key(t.name), c.unique(t.name, ["key"]),
                     c.check(t.name, "key", "key ~ '^[a-z][a-z0-9_.-]{0,99}$'")]
    return t


def feature_flag_assignments(bp: Blueprint) -> Table:
    t = Table(name="feature_flag_assignments", section="analytics", tenant_key=c.ORG,
              comment="Variant per organisation (user_id null) or per user inside it.")
    t.columns = [
        c.id_column(),
        Column(name="feature_flag_id", type="uuid", nullable=False),
        c.tenant_column(),
        Column(name="user_id", type="uuid"),
        Column(name="variant", type="text", nullable=False, default="'control'"),
        Column(name="assigned_at", type="timestamptz", nullable=False, default="now()"),
        *c.timestamps(),
    ]
    t.constraints = [c.primary_key(t.name),
                     c.check(t.name, "variant", "variant ~ '^[a-z][a-z0-9_]{0,62}$'")]
    t.foreign_keys = [c.foreign_key(t.name, ["feature_flag_id"], "feature_flags", ["id"], "cascade"),
                      c.organization_fk(t.name), c.auth_user_fk(t.name, "user_id")]
    # One assignment per flag, organisation and user, the organisation-wide row (user null) included.
    t.indexes = [c.index(t.name, [c.ORG, "user_id", "feature_flag_id"], unique_=True)]
    return t


def audit_logs(bp: Blueprint) -> Table:
    t = Table(name="audit_logs", section="privacy", tenant_key=c.ORG,
              comment="Row changes of audited tables, written by a definer trigger; PII columns redacted.")
    t.columns = [
        c.id_column(),
        # No FK to organizations: the log must outlive the organisation it records.
        Column(name=c.ORG, type="uuid", nullable=False),
        Column(name="actor_id", type="uuid", comment="auth.uid() of the writer; null for the service role."),
        Column(name="action", type="text", nullable=False),
        Column(name="table_name", type="text", nullable=False),
        Column(name="record_id", type="uuid"),
        Column(name="old_data", type="jsonb"),
        Column(name="new_data", type="jsonb"),
        Column(name="occurred_at", type="timestamptz", nullable=False, default="now()"),
    ]
    t.constraints = [c.primary_key(t.name),
                     c.check(t.name, "action", "action in ('INSERT', 'UPDATE', 'DELETE')")]
    t.indexes = [c.index(t.name, [c.ORG, "occurred_at"]), c.index(t.name, ["table_name", "record_id"])]
    return t


def all_tables(bp: Blueprint) -> list[Table]:
    """Every table in creation order: core, domain (declaration order), analytics, privacy."""
    tables = [profiles(bp), organizations(bp), organization_members(bp)]
    if bp.tenancy.team_organizations:
        tables += [invitations(bp), invitation_tokens(bp), membership_changes(bp)]
    enum_types = c.enum_type_names(bp)
    tables += [entity_table(bp, e, enum_types) for e in bp.entities]
    a = bp.analytics
    if a.enabled:
        if a.sessions:
            tables.append(sessions(bp))
        tables.append(events(bp))
        if a.feature_flags:
            tables += [feature_flags(bp), feature_flag_assignments(bp)]
    if bp.privacy.audit_tables:
        tables.append(audit_logs(bp))
    for t in tables:
        c.index_foreign_keys(t)
    return tables
