"""The Blueprint: one design, the single source of every generated artefact."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field as PField, ValidationError, model_validator

from .analytics import Analytics, Event, EventCategory, EventSource, canonical_taxonomy
from .base import Model, Slug, Text
from .entities import AUTH_USERS, Entity, Scope
from .errors import InvalidBlueprint
from .names import object_name
from .privacy import BUILTIN_PII_KEYS, Privacy
from .tenancy import Tenancy

CORE_TABLES = ("profiles", "organizations", "organization_members", "invitations")
ANALYTICS_TABLES = ("sessions", "events", "feature_flags", "feature_flag_assignments", "daily_org_metrics")
PRIVACY_TABLES = ("audit_logs",)
GENERATED_TABLES = CORE_TABLES + ANALYTICS_TABLES + PRIVACY_TABLES
ROLE_TYPE = "member_role"  # the enum of membership roles; a table's row type may not take its name
# Tables that hold analytics whatever created them: the auditor holds clients off them and wants
# PII kept out of their properties, so an entity may not take such a name.
ANALYTICS_NAMES = frozenset(ANALYTICS_TABLES) | {"page_views", "pageviews"}


def is_analytics_name(name: str) -> bool:
    return name in ANALYTICS_NAMES or name.startswith("analytics_")


# Core tables that may be audited besides entities.
AUDITABLE_CORE = ("organizations", "organization_members", "invitations")


class App(Model):
    name: Text = PField(min_length=1, max_length=120)
    slug: Slug
    description: Text = ""


class Blueprint(Model):
    """A whole backend design: app, tenancy, entities, analytics and privacy."""

    version: Literal[1] = 1
    app: App
    tenancy: Tenancy = PField(default_factory=Tenancy)
    entities: list[Entity] = PField(default_factory=list)
    analytics: Analytics = PField(default_factory=Analytics)
    privacy: Privacy = PField(default_factory=Privacy)

    @model_validator(mode="after")
    def _cross_checks(self) -> "Blueprint":
        problems: list[tuple[str, str, str]] = []
        _normalise_owner_columns(self, problems)
        _check_names(self, problems)
        _check_references(self, problems)
        _check_cycles(self, problems)
        _check_access_and_patterns(self, problems)
        _check_privacy(self, problems)
        _check_events(self, problems)
        if problems:
            raise InvalidBlueprint(problems)
        return self

    def entity(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.name == name), None)

    def events(self) -> list[Event]:
        """The resolved taxonomy: core events, events derived from entities, then custom ones."""
        out = [Event(**e.model_dump(), source=EventSource.core) for e in canonical_taxonomy().events]
        if self.analytics.derive_entity_events:
            for ent in self.entities:
                if not ent.events:
                    continue
                for verb in ("created", "updated", "deleted"):
                    out.append(Event(
                        name=object_name(ent.singular, suffix=verb), category=EventCategory.core_feature,
                        description=f"A row of {ent.name} was {verb}.", source=EventSource.entity,
                        entity=ent.name, properties=[object_name(ent.singular, suffix="id")],
                    ))
        out.extend(Event(**e.model_dump(), source=EventSource.custom) for e in self.analytics.events)
        return out

    def pii_keys(self) -> list[str]:
        """Keys never allowed in event properties: built-ins, declared extras and PII field names."""
        keys = list(BUILTIN_PII_KEYS) + list(self.privacy.pii_keys)
        keys += [f.name for e in self.entities for f in e.fields if f.pii]
        return list(dict.fromkeys(keys))


def generated_columns(entity: Entity) -> list[str]:
    cols = ["id"]
    if entity.is_tenant:
        cols.append("organization_id")
    if entity.owner_column:
        cols.append(entity.owner_column)
    if entity.soft_delete:
        cols.append("archived_at")
    return cols + ["created_at", "updated_at"]


def _normalise_owner_columns(bp: Blueprint, problems: list) -> None:
    for i, e in enumerate(bp.entities):
        explicit = "owner_column" in e.model_fields_set
        if e.scope in (Scope.global_, Scope.service) and e.owner_column:
            if explicit:
                problems.append((f"entities[{i}].owner_column",
                                 f"scope '{e.scope.value}' rows are written by the service role, which has no user.",
                                 "remove owner_column or set it to null"))
            else:
                e.owner_column = None
        if e.scope is Scope.user and not e.owner_column:
            problems.append((f"entities[{i}].owner_column", "scope 'user' rows are private to their creator.",
                             "set owner_column (e.g. created_by)"))


def _check_names(bp: Blueprint, problems: list) -> None:
    seen: dict[str, int] = {}
    for i, e in enumerate(bp.entities):
        if e.name in GENERATED_TABLES or e.name == ROLE_TYPE:
            kind = "type" if e.name == ROLE_TYPE else "table"
            problems.append((f"entities[{i}].name", f"'{e.name}' is a {kind} the blueprint generates itself.",
                             f"rename the entity (e.g. app_{e.name})"))
        elif is_analytics_name(e.name):
            problems.append((f"entities[{i}].name", f"'{e.name}' names an analytics table: analytics rows are "
                             "written by the service role and carry no personal data, which an entity does not promise.",
                             "record it as an event (analytics.events) or rename the entity"))
        if e.name in seen:
            problems.append((f"entities[{i}].name", f"'{e.name}' is already entities[{seen[e.name]}].",
                             "give every entity a distinct name"))
        seen.setdefault(e.name, i)
        reserved = generated_columns(e)
        names: dict[str, int] = {}
        for j, f in enumerate(e.fields):
            path = f"entities[{i}].fields[{j}].name"
            if f.name in reserved:
                problems.append((path, f"'{f.name}' is generated for every {e.scope.value}-scoped entity.",
                                 "remove the field or rename it"))
            if f.name in names:
                problems.append((path, f"'{f.name}' repeats entities[{i}].fields[{names[f.name]}].",
                                 "give every field a distinct name"))
            names.setdefault(f.name, j)


def _check_references(bp: Blueprint, problems: list) -> None:
    known = {e.name: e for e in bp.entities}
    for i, e in enumerate(bp.entities):
        for j, f in enumerate(e.fields):
            if not f.is_reference or f.references == AUTH_USERS:
                continue
            path = f"entities[{i}].fields[{j}].references"
            target = known.get(f.references or "")
            if target is None:
                choices = sorted(known) + [AUTH_USERS]
                problems.append((path, f"'{f.references}' is not an entity of this blueprint.",
                                 f"use one of {choices}"))
            elif not e.is_tenant and target.is_tenant:
                problems.append((path, f"global entity '{e.name}' cannot reference tenant entity '{target.name}': "
                                 "reference data would point into one organisation.",
                                 "make the referencing entity tenant-scoped or drop the reference"))
            elif target.scope is Scope.user and e.scope is not Scope.user:
                problems.append((path, f"'{e.name}' ({e.scope.value} scope) references user-private '{target.name}': "
                                 "other members could not see what the row points to.",
                                 f"make '{e.name}' user-scoped too, or '{target.name}' organization-scoped"))


def _check_cycles(bp: Blueprint, problems: list) -> None:
    """A cycle of NOT NULL references can never receive its first row."""
    graph = {e.name: [f.references for f in e.fields
                      if f.is_reference and not f.nullable and f.references in {x.name for x in bp.entities}]
             for e in bp.entities}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (cyc := visit(m)):
                return cyc
        stack.pop()
        state[n] = 2
        return None

    for name in graph:
        if name not in state and (cycle := visit(name)):
            i = next(k for k, e in enumerate(bp.entities) if e.name == cycle[0])
            problems.append((f"entities[{i}].fields", f"required references form a cycle {' -> '.join(cycle)}: "
                             "no row could ever be inserted first.", "make one reference in the cycle nullable"))
            return


def _check_access_and_patterns(bp: Blueprint, problems: list) -> None:
    roles = [r.name for r in bp.tenancy.roles]
    for i, e in enumerate(bp.entities):
        for cmd in ("select", "insert", "update", "delete"):
            role = getattr(e.access, cmd)
            if role is None:
                continue
            path = f"entities[{i}].access.{cmd}"
            if role not in roles:
                problems.append((path, f"'{role}' is not a role of this tenancy.", f"use one of {roles}"))
            elif cmd != "select" and not e.client_writable:
                problems.append((path, f"scope '{e.scope.value}' is written by the service role only.",
                                 "remove the override or use scope organization/user"))
            elif not e.is_tenant:
                problems.append((path, "global entities are readable by every signed-in user.", "remove the override"))
        cols = set(generated_columns(e)) | {f.name for f in e.fields}
        if e.access.own_rows_only and (not e.owner_column or not e.client_writable):
            problems.append((f"entities[{i}].access.own_rows_only", "needs a client-writable entity with an owner column.",
                             "set owner_column, use scope organization, or remove own_rows_only"))
        patterns = [(f"entities[{i}].query_patterns[{j}]", p) for j, p in enumerate(e.query_patterns)]
        patterns += [(f"entities[{i}].unique_together[{j}]", p) for j, p in enumerate(e.unique_together)]
        for path, pattern in patterns:
            if not pattern:
                problems.append((path, "an empty query pattern.", "list the columns queried together"))
            for col in pattern:
                if col not in cols:
                    problems.append((path, f"'{col}' is not a column of {e.name}.", f"use one of {sorted(cols)}"))
            if len(set(pattern)) != len(pattern):
                problems.append((path, "a column repeats.", "list each column once"))


def _check_privacy(bp: Blueprint, problems: list) -> None:
    tenant = {e.name for e in bp.entities if e.is_tenant}
    allowed = sorted(tenant) + list(AUDITABLE_CORE)
    if not bp.tenancy.team_organizations:
        allowed = [t for t in allowed if t != "invitations"]
    for k, t in enumerate(bp.privacy.audit_tables):
        if t not in allowed:
            problems.append((f"privacy.audit_tables[{k}]", f"'{t}' cannot be audited (audit rows belong to an organisation).",
                             f"use one of {allowed}"))
    if len(set(bp.privacy.audit_tables)) != len(bp.privacy.audit_tables):
        problems.append(("privacy.audit_tables", "a table repeats.", "list each table once"))
    if len(set(bp.privacy.consent_flags)) != len(bp.privacy.consent_flags):
        problems.append(("privacy.consent_flags", "a flag repeats.", "list each flag once"))
    for k, flag in enumerate(bp.privacy.consent_flags):
        if flag in ("id", "full_name", "avatar_url", "time_zone", "created_at", "updated_at"):
            problems.append((f"privacy.consent_flags[{k}]", f"'{flag}' is already a column of profiles.",
                             "name consent flags consent_for_<purpose>"))


def _check_events(bp: Blueprint, problems: list) -> None:
    pii = set(bp.pii_keys())
    seen: dict[str, str] = {}
    for ev in bp.events():
        if ev.name in seen:
            where = "analytics.events" if ev.source is EventSource.custom else f"entity {ev.entity}"
            problems.append((where, f"event '{ev.name}' is already defined ({seen[ev.name]}).",
                             "rename the event or remove the duplicate"))
        seen.setdefault(ev.name, ev.source.value)
        for key in ev.properties:
            if key in pii:
                problems.append((f"analytics.events[{ev.name}].properties", f"'{key}' is personal data.",
                                 "reference the user by user_id instead of copying PII into events"))


def parse_blueprint(data: Any, source: str | None = None) -> Blueprint:
    """Validate raw data into a Blueprint; every problem names its field path and fix."""
    if isinstance(data, Blueprint):
        return data
    if not isinstance(data, dict):
        raise InvalidBlueprint([(source or "blueprint", f"expected a mapping, got {type(data).__name__}.",
                                 "pass an object with at least app.name and app.slug")])
    try:
        return Blueprint.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = _path(err["loc"])
            inner = (err.get("ctx") or {}).get("error")
            if isinstance(inner, InvalidBlueprint):
                problems.extend(inner.problems)
                continue
            msg = str(inner) if inner else err["msg"]
            fix = _fix_for(err)
            prefix = f"{source}: " if source else ""
            problems.append((prefix + (path or "blueprint"), msg.rstrip(".") + ".", fix))
        raise InvalidBlueprint(problems) from None


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after[_check_ident(), str]",):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _fix_for(err: dict) -> str:
    kind = err["type"]
    if kind == "missing":
        return "add this field"
    if kind == "extra_forbidden":
        return "remove this key (it is not part of the blueprint schema; see blueprint://schema)"
    if kind in ("enum", "literal_error"):
        expected = (err.get("ctx") or {}).get("expected", "")
        return f"use one of {expected}" if expected else "use an allowed value"
    return "correct the value (see blueprint://schema)"
