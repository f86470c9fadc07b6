"""The Blueprint: one design, the single source of every generated artefact."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any, Literal

from pydantic import Field as PField, SerializerFunctionWrapHandler, ValidationError, model_serializer, model_validator

from .analytics import Analytics, Event, EventCategory, EventSource, canonical_taxonomy
from .base import Model, Slug, Text
from .access import COMMANDS, Grant, Match
from .entities import AUTH_USERS, MEMBERS, DefaultExpression, Entity, Field, FieldType, Scope
from .errors import InvalidBlueprint, choose, preview
from .limits import APP_DESCRIPTION_CHARS, APP_NAME_CHARS, ENTITIES
from .names import object_name
from .storage import Bucket
from .privacy import BUILTIN_PII_KEYS, EVENT_PII_KEYS, Privacy, pii_form
from .tenancy import Capability, Tenancy
from .validation import join, problems_from

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


class Api(Model):
    """Which of the platform's APIs the app uses beyond PostgREST."""

    graphql: bool = PField(False, description=(
        "Serve the tables over GraphQL (pg_graphql). Off: the migration drops pg_graphql, so its "
        "introspection does not show every table the API roles may select (Supabase lints 0026/0027)."))


class App(Model):
    """What the app is called and what it does."""

    name: Text = PField(min_length=1, max_length=APP_NAME_CHARS,
                        description="Display name (e.g. Habit Tracker), shown in the spec.")
    slug: Slug = PField(description="Short id: lower case letters, digits and - (e.g. habit-tracker); names the "
                                    "Supabase project_id and generated files (SUPABASE-<slug>.md).")
    description: Text = PField("", max_length=APP_DESCRIPTION_CHARS,
                               description="What the app does, in a sentence or two; shown in the spec.")


class Blueprint(Model):
    """A whole backend design: app, tenancy, entities, analytics and privacy."""

    version: Literal[1] = PField(1, description="1: the blueprint format (the only one so far; default).")
    app: App
    tenancy: Tenancy = PField(default_factory=Tenancy)
    entities: list[Entity] = PField(default_factory=list, max_length=ENTITIES,
                                    description="The app's own tables, each with its columns, scope and access.")
    analytics: Analytics = PField(default_factory=Analytics)
    privacy: Privacy = PField(default_factory=Privacy)
    storage: list[Bucket] = PField(default_factory=list, max_length=20,
                                   description="Storage buckets; objects live under <organization_id>/ folders.")
    api: Api = PField(default_factory=Api)

    @model_validator(mode="after")
    def _cross_checks(self) -> "Blueprint":
        problems: list[tuple[str, str, str]] = []
        _normalise_owner_columns(self, problems)
        written = [[f.name for f in e.fields] for e in self.entities]
        origin, kept = _split_private_fields(self, problems)
        split = len(problems)  # problems from here on name entities and fields as the split model holds them
        _check_names(self, problems)
        _check_references(self, problems)
        _check_cycles(self, problems)
        _check_access_and_patterns(self, problems)
        _check_server_set(self, problems)
        _check_movable(self, problems)
        _check_caller_defaults(self, problems)
        _check_privacy(self, problems)
        _check_events(self, problems)
        _check_storage(self, problems)
        if not problems:  # reads the grants as the generator does, which needs them valid first
            from .meaning import remembered_grants  # meaning reads a validated Blueprint
            with remembered_grants():  # each entity's grants and reach worked out once (review: cubic otherwise)
                _check_assignees(self, problems)
                _check_cascade_moves(self, problems)
                _check_pins(self, problems)
                _check_restore_names(self, problems)
                _check_movable_links(self, problems)
                _check_dead_parents(self, problems)
        if problems:
            problems[split:] = [(_written_path(self, origin, kept, written, path), why, fix)
                                for path, why, fix in problems[split:]]
            raise InvalidBlueprint(problems)
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict:
        """Serialised as the user writes it: each private side's pii fields (and the keys, patterns and
        checks made of them) back on their entity, the side itself left out. Parsing that again splits it
        the same way, so a returned blueprint round-trips to the same SQL."""
        data = handler(self)
        entities = data.get("entities") if isinstance(data, dict) else None
        if not entities:
            return data
        by_name = {e.get("name"): e for e in entities}
        kept = []
        for e in entities:
            parent = by_name.get(e.get("private_of")) if e.get("private_of") else None
            if parent is None:
                kept.append(e)
                continue
            parent.setdefault("fields", []).extend(e.get("fields", [])[1:])
            for key in ("query_patterns", "unique_together", "checks"):
                if e.get(key):
                    parent.setdefault(key, []).extend(e[key])
        data["entities"] = kept
        audited = (data.get("privacy") or {}).get("audit_tables")
        if audited:  # a side audited because its entity is (the split adds it) goes back with the entity
            merged = {e.get("name") for e in entities if e.get("private_of") in by_name}
            data["privacy"]["audit_tables"] = [t for t in audited
                                               if not (t in merged and by_name[t]["private_of"] in audited)]
        return data

    def entity(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.name == name), None)

    def events(self) -> list[Event]:
        """The resolved taxonomy: core events, events derived from entities, then custom ones."""
        out = [Event(**e.model_dump(), source=EventSource.core) for e in canonical_taxonomy().events]
        if self.analytics.derive_entity_events:
            for ent in self.entities:
                if not ent.events:
                    continue
                for verb, command in (("created", "insert"), ("updated", "update"), ("deleted", "delete")):
                    # Rows no client may write change only by the backend, which records their events too.
                    out.append(Event(
                        name=object_name(ent.singular, suffix=verb), category=EventCategory.core_feature,
                        description=f"A row of {ent.name} was {verb}.", source=EventSource.entity,
                        entity=ent.name, properties=[object_name(ent.singular, suffix="id")],
                        server_only=not ent.clients_run(command),
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


def private_name(e: Entity) -> str:
    return object_name(e.name, suffix="private")


def _split_private_fields(bp: Blueprint, problems: list) -> tuple[list[int], list[dict[str, list[int]]]]:
    """Column privacy: an organization or service entity's pii fields move to <entity>_private, one row per
    row, whose grants (model/meaning.py) admit only the readers the entity's pii_read names. A blueprint that
    already holds the split (the one this tool returns) passes through unchanged. Returns, for each entity of the
    split model, the position of the entity it comes from as written, and where each of its query patterns, unique
    keys and checks stood in that entity's lists (the lists divided between the sides; none when undivided)."""
    out: list[Entity] = []
    origin: list[int] = []
    kept: list[dict[str, list[int]]] = []
    names = {e.name for e in bp.entities}
    for i, e in enumerate(bp.entities):
        out.append(e)
        origin.append(i)
        kept.append({})
        pii = [f for f in e.fields if f.pii]
        if e.private_of is not None or not pii or e.scope is Scope.user:
            continue  # a user-scope row is private to its author already
        if e.scope is Scope.global_:
            problems.append((f"entities[{i}].fields", f"{e.name} is global: every signed-in user reads it, so its "
                             f"pii fields ({', '.join(f.name for f in pii)}) could not be private.",
                             "keep personal data in an organization entity, or drop pii: true"))
            continue
        name = private_name(e)
        if name in names:
            problems.append((f"entities[{i}].fields", f"'{name}' would hold {e.name}'s pii fields but is an entity "
                             "already.", f"rename that entity; {name} is generated"))
            continue
        ref = object_name(e.singular, suffix="id")
        if any(f.name == ref for f in pii):
            problems.append((f"entities[{i}].fields", f"'{ref}' names the reference {name} needs.",
                             "rename that pii field"))
            continue
        link = Field(name=ref, type=FieldType.reference, references=e.name, nullable=False, unique=True,
                     on_delete="cascade", description=f"The {e.singular} this personal data belongs to.")
        # Keys, patterns and checks over personal data move with it; one that mixes both sides cannot.
        moved = {f.name for f in pii}
        common = {"organization_id", "created_at", "updated_at"}

        def side_of(cols: list[str]) -> str:
            named = set(cols) - common
            return "private" if named and named <= moved else "mixed" if named & moved else "public"
        parts = {"query_patterns": e.query_patterns, "unique_together": e.unique_together, "checks": e.checks}
        sides = {key: [side_of([c.column, c.other] if key == "checks" else list(c)) for c in items]
                 for key, items in parts.items()}
        for key, items in parts.items():
            for j, (c, where) in enumerate(zip(items, sides[key])):
                if where == "mixed" and key == "checks":
                    problems.append((f"entities[{i}].checks[{j}]", f"compares a pii field (kept in {name}) with "
                                     "another column.", "compare pii fields only with pii fields"))
                elif where == "mixed":
                    problems.append((f"entities[{i}].{key}[{j}]", f"{list(c)} mixes pii fields (kept in {name}) "
                                     "with other columns.", "list pii fields and other columns separately"))
        # key -> for each item, whether it moves to the private side: a check that mixes both sides does (and is
        # refused above), a mixed pattern or key stays (refused too)
        moves = {key: [where != "public" if key == "checks" else where == "private" for where in found]
                 for key, found in sides.items()}
        split = {key: ([c for c, m in zip(items, moves[key]) if m], [c for c, m in zip(items, moves[key]) if not m])
                 for key, items in parts.items()}
        for k, r in enumerate(e.requires):
            if side_of([r.when.column, *r.filled, *r.empty]) != "public":
                personal = sorted(set([r.when.column, *r.filled, *r.empty]) & moved)
                problems.append((f"entities[{i}].requires[{k}]", f"uses pii fields {personal} (kept in {name}).",
                                 "state the rule over non-personal fields"))
        for k, t in enumerate(e.transitions):
            if t.column in moved:
                problems.append((f"entities[{i}].transitions[{k}].column", f"'{t.column}' is personal data (pii: "
                                 f"true), kept in {name}.", "give the states a field that is not pii"))
        for k, x in enumerate(e.exclusions):
            if side_of([*x.keys, *x.range]) != "public":
                problems.append((f"entities[{i}].exclusions[{k}]", f"uses pii fields (kept in {name}).",
                                 "exclude over non-personal columns"))
        side = Entity(name=name, scope=e.scope, owner_column=e.owner_column if e.scope is not Scope.service else None,
                      fields=[link, *pii], private_of=e.name, events=False,
                      query_patterns=split["query_patterns"][0], unique_together=split["unique_together"][0],
                      checks=split["checks"][0],
                      description=f"Personal data of {e.name} ({', '.join(f.name for f in pii)}): readable only "
                                  "by its pii readers.")
        kept[-1] = {key: [k for k, m in enumerate(moved_items) if not m] for key, moved_items in moves.items()}
        e.fields = [f for f in e.fields if not f.pii]
        e.query_patterns, e.unique_together = split["query_patterns"][1], split["unique_together"][1]
        e.checks = split["checks"][1]
        out.append(side)
        origin.append(i)
        kept.append({key: [k for k, m in enumerate(moved_items) if m] for key, moved_items in moves.items()})
        names.add(name)
    bp.entities = out
    # An audited entity's personal data is audited with it: a note's text or a patient's birth date rewritten in
    # <entity>_private would otherwise change with no entry at all.
    audited = bp.privacy.audit_tables
    for side in [x for x in out if x.private_of in audited and x.name not in audited]:
        audited.insert(audited.index(side.private_of) + 1, side.name)
    return origin, kept


_AT_ENTITY = re.compile(r"^entities\[(\d+)\](?:\.fields\[(\d+)\]|\.(query_patterns|unique_together|checks)\[(\d+)\])?")


def _written_path(bp: Blueprint, origin: list[int], kept: list[dict[str, list[int]]], written: list[list[str]],
                  path: str) -> str:
    """A problem's path in the blueprint as written: once pii fields move to `<entity>_private` (inserted after
    their entity), the model's entity and field positions are no longer the user's (`origin`: the written
    position of each model entity; `written`: each written entity's field names). A private side's problem
    names its entity; a field, its place among the fields as written; a query pattern, unique key or check, its
    place in its list as written (`kept`)."""
    m = _AT_ENTITY.match(path)
    if m is None or int(m.group(1)) >= len(origin):
        return path
    k = int(m.group(1))
    i = origin[k]
    out = f"entities[{i}]"
    if m.group(2) is not None:
        j, fields = int(m.group(2)), bp.entities[k].fields
        field = fields[j].name if j < len(fields) else None
        out += f".fields[{written[i].index(field)}]" if field in written[i] else ".fields"
    elif m.group(3) is not None:
        key, j = m.group(3), int(m.group(4))
        places = kept[k].get(key)
        out += f".{key}[{places[j] if places is not None and j < len(places) else j}]"
    return out + path[m.end():]


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
            elif f.name in SYSTEM_COLUMNS:
                problems.append((path, f"'{f.name}' is a PostgreSQL system column of every table: create table "
                                 "refuses a column of that name (42701).", f"rename it (e.g. {e.singular}_{f.name})"))
            if f.name in names:
                problems.append((path, f"'{f.name}' repeats entities[{i}].fields[{names[f.name]}].",
                                 "give every field a distinct name"))
            names.setdefault(f.name, j)


# Every table has these (red team 25: a field named xmin was accepted and the migration failed).
SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})  # (oid is a plain name since 12)


def _emptied(f: Field, then: str) -> str:
    """How to let a restricting reference be emptied instead: drop its NOT NULL, or its declared restrict (red team
    14: a nullable field was told to drop nullable: false)."""
    return f"drop nullable: false ({then})" if not f.nullable else f"drop on_delete: restrict ({then})"


def _check_references(bp: Blueprint, problems: list) -> None:
    known = {e.name: e for e in bp.entities}
    gone = _gone_with_accounts(bp)
    for i, e in enumerate(bp.entities):
        for j, f in enumerate(e.fields):
            written = e.private_of or e.name  # personal data: the entity the user wrote it in
            if f.references in gone and f.effective_on_delete == "restrict" and _clients_write(e):
                problems.append((f"entities[{i}].fields[{j}]", f"'{f.name}' of {written} requires a row of "
                                 f"{f.references}, whose rows go with their user's account: a row of {written} naming "
                                 "one would stop that account's deletion, and anyone who may write the row could so "
                                 "block a stranger's.",
                                 "declare on_delete: cascade (the row goes too), or " + _emptied(f, "the reference is "
                                                                                                 "emptied")))
            if f.references == AUTH_USERS and f.effective_on_delete == "restrict" and f.name != e.owner_column \
                    and _clients_write(e):
                problems.append((f"entities[{i}].fields[{j}]", f"'{f.name}' of {written} would keep the account it "
                                 "names from being deleted while the row exists, and clients write it: anyone who may "
                                 "write the row could name a stranger and stop their account's deletion.",
                                 _emptied(f, "the column is emptied when the account is deleted") + ", or declare "
                                 "on_delete: cascade (the row goes with the account)"))
            if not f.is_reference or f.references == AUTH_USERS:
                continue
            path = f"entities[{i}].fields[{j}].references"
            if f.references == MEMBERS:
                roles = [r.name for r in bp.tenancy.roles]
                if not e.is_tenant:
                    problems.append((path, f"global entity '{e.name}' has no organisation whose members to reference.",
                                     "reference auth.users, or make the entity tenant-scoped"))
                for r in f.member_roles or []:
                    if r not in roles:
                        problems.append((f"entities[{i}].fields[{j}].member_roles", f"'{r}' is not a role of this "
                                         "tenancy.", f"use some of {roles}"))
                continue
            target = known.get(f.references or "")
            if target is None:
                choices = sorted(known) + [AUTH_USERS, MEMBERS]
                problems.append((path, f"{preview(f.references)} is not an entity of this blueprint.",
                                 choose(f.references, choices)))
            elif not e.is_tenant and target.is_tenant:
                problems.append((path, f"global entity '{e.name}' cannot reference tenant entity '{target.name}': "
                                 "reference data would point into one organisation.",
                                 "make the referencing entity tenant-scoped or drop the reference"))
            elif target.scope is Scope.user and e.scope is not Scope.user:
                problems.append((path, f"'{e.name}' ({e.scope.value} scope) references user-private '{target.name}': "
                                 "other members could not see what the row points to.",
                                 f"make '{e.name}' user-scoped too, or '{target.name}' organization-scoped"))


def _gone_with_accounts(bp: Blueprint) -> set[str]:
    """Entities whose rows a deleted account takes along: private to their author (scope user), cascading from a
    user or member column (memberships go with the account), or cascading from such a row."""
    gone = {e.name for e in bp.entities if e.scope is Scope.user or any(
        f.references in (AUTH_USERS, MEMBERS) and f.effective_on_delete == "cascade" for f in e.fields)}
    grew = True
    while grew:
        grew = False
        for e in bp.entities:
            if e.name not in gone and any(f.references in gone and f.effective_on_delete == "cascade" for f in e.fields):
                gone.add(e.name)
                grew = True
    return gone


def _clients_write(e: Entity) -> bool:
    """Whether a client may insert or update rows of `e`."""
    return e.clients_run("insert") or e.clients_run("update")


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
        for cmd in COMMANDS:
            spec = e.access.spec(cmd)
            path = f"entities[{i}].access.{cmd}"
            if spec is None:
                continue
            if cmd != "select" and not e.client_writable:
                problems.append((path, f"scope '{e.scope.value}' is written by the service role only.",
                                 "remove the override or use scope organization/user"))
            elif isinstance(spec, list):
                problems += _grant_problems(bp, e, cmd, spec, path)
            elif spec not in roles:
                problems.append((path, f"'{spec}' is not a role of this tenancy.", choose(spec, roles)))
            elif not e.is_tenant:
                problems.append((path, "global entities are readable by every signed-in user.",
                                 "remove the override, or give a list of grants such as [{public: true}]"))
        _check_comparisons(e, i, problems)
        _check_requirements(e, i, problems)
        _check_transitions(e, i, problems)
        _check_pii_read(bp, e, i, problems)
        _check_restore(bp, e, i, problems)
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
                    problems.append((path, f"'{col}' is not a column of {e.name}.",
                                     choose(col, sorted(cols))))
            if len(set(pattern)) != len(pattern):
                problems.append((path, "a column repeats.", "list each column once"))


def _condition_columns(bp: Blueprint, e: Entity, i: int) -> list[tuple[str, str, str]]:
    """(entity, column, path) of every column a grant condition of entity `e` (at entities[i]) reads: an
    assignee, a parent, a where column, each hop of a linked chain (on the entities it walks through)."""
    out = []
    specs = [(f"entities[{i}].access.{cmd}", e.access.spec(cmd)) for cmd in COMMANDS]
    specs.append((f"entities[{i}].pii_read", e.pii_read))
    for path, spec in specs:
        for k, g in enumerate(spec if isinstance(spec, list) else []):
            at = f"{path}[{k}]"
            for col, key in ((g.assigned, "assigned"), (g.under, "under"), (g.visible, "visible"),
                             (g.where.column if g.where is not None else None, "where.column")):
                if col:
                    out.append((e.name, col, f"{at}.{key}"))
            current = e
            for j, col in enumerate(g.linked or []):
                out.append((current.name, col, f"{at}.linked[{j}]"))
                f = current.field(col)
                current = bp.entity(f.references) if f is not None and f.references else None
                if current is None:
                    break
    return out


def _check_assignees(bp: Blueprint, problems: list) -> None:
    """`assigned: c` or `under: ref` on a delete grant holds only while nobody can bring a row into it: a caller who
    may update the row outside that condition (another update grant) sets c to themselves, or moves the row under a
    parent they may update (red team 10), then deletes what the grant meant for the assignee, or for the parent's
    editors, alone (the audit's BP065 reads the assignee's case in the SQL the same way). Harmless when the update
    grant itself says the same condition (before and after, the row meets it for the caller), when nobody it admits
    meets the delete grant's roles, when they read no row but those the condition gives them (an update reaches
    only rows its caller reads), or when a delete grant admits them to those rows anyway. Restoring reads the
    delete grants by default; a restore list may say neither. Reading needs no such rule: an update's new row must
    stay readable to its caller, so nobody takes a row they could not read. A `where` is the row's state, which
    the update grants (and `transitions`) say who may change: a delete grant reads it when the delete runs (A28)."""
    from .meaning import command_grants, set_on_insert_columns  # meaning reads a validated Blueprint
    from .words import describe_grants
    links = set_on_insert_columns(bp)  # (a stamped row's parent is set on insert only too)
    for i, e in enumerate(bp.entities):
        spec = e.access.spec("delete")
        if e.private_of is not None or not e.is_tenant or not isinstance(spec, list):
            continue
        deleters, readers = command_grants(bp, e, "delete"), command_grants(bp, e, "select")
        for k, g in enumerate(spec):
            for key in ("assigned", "under"):
                col = getattr(g, key)
                if not col or col in links.get(e.name, set()):  # a linked or stamped column is set on insert only
                    continue
                # an editor of every parent has every row under a parent they may update already (every parent as
                # the policies read it: one hidden from them, or archived, they may not update)
                # (a row with no parent is under none: a nullable column settles nothing, red team 12)
                settled = _reach_every_row(bp, bp.entity(e.field(col).references), "update") \
                    if key == "under" and not e.field(col).nullable else set()
                for u in command_grants(bp, e, "update"):
                    taker = _taker(bp, key, g, u, deleters, readers, settled)
                    if taker is None:
                        continue
                    who = describe_grants(bp, e, [taker], "update")
                    if key == "assigned":
                        how = f"set {col} to themselves, then delete them as their assignee"
                        fix = "an assignee updates their rows and cannot take others'"
                    else:
                        how = f"move them under a parent they may update ({col}), then delete them there"
                        fix = "they update rows under parents they may update, and move them only between those"
                        how += _unseen_parents(bp, e, col, set(taker.roles or []))
                    # (a default or a role name is no grant the user wrote: say how to write it)
                    grant = "that update grant" if isinstance(e.access.spec("update"), list) else \
                        f"the update grants of {e.name}, written as a list ({{min_role: ..., {key}: {col}}})"
                    problems.append((f"entities[{i}].access.delete[{k}].{key}",
                                     f"{who} may update rows of {e.name} and {how}: the condition would not hold.",
                                     f"add {key}: {col} to {grant} ({fix}), let the same callers delete "
                                     f"without {key}, or drop {key} here"))
                    break


def _check_cascade_moves(bp: Blueprint, problems: list) -> None:
    """A reference that cascades puts its rows in the hands of whoever may remove the row it names: a caller who may
    point it at a row they may remove (a project they made, their own membership, a member they may remove, their
    own account) and then remove that row deletes, for good, every row they may update there (red team 32 F1: a
    member moved every task under a project of their own and deleted it; tasks, soft-deleted and deleted by admins
    only, were gone, not archived). Refused unless the delete grants give those callers the rows anyway and the
    entity is not soft-deleted (a client's delete archives it; a cascade does not), or they may delete every parent
    row (each row is under one of theirs already). Rows a caller holds already (`assigned` to that column) and
    references clients set on insert only (linked, stamped, a private side's own row) move nowhere. A linked,
    signed-in or public grant may admit a member of any role (a member may name themselves, A09: red team 33 F1),
    and a personal-data side's references move like its row's (red team 33 F3)."""
    from .meaning import command_grants, covers, member_roles, set_on_insert_columns
    from .words import describe_grants
    fixed = set_on_insert_columns(bp)
    everyone = {r.name for r in bp.tenancy.roles}
    # Who may delete the organisation, every row with it: a move gives them nothing (by default the primary owner
    # alone, who is no role: co-owners may not, red team 34 F1).
    wholesale = set(bp.tenancy.holders(Capability.delete_organization)) \
        if bp.tenancy.organization_deleted_by == "capability" else set()
    gone = _gone_with_accounts(bp)
    memo: dict[str, tuple[set[str], bool]] = {}

    def who(g: Grant) -> tuple[set[str], bool]:
        """The roles a grant may admit, and whether users who are no members may: a linked, signed-in or public
        grant admits anyone it names or lets in, members of any role among them."""
        mine = member_roles(bp, g)
        return (set(mine), False) if mine is not None else (everyone, True)

    def removers(f: Field, trail: frozenset[str]) -> tuple[set[str], bool]:
        """Who may remove a row `f` names (or one that row cascades from): the roles, and whether non-members."""
        if f.references == AUTH_USERS:
            return everyone, True  # every user deletes their own account
        if f.references == MEMBERS:
            # Whoever may write the column names a member who then leaves (their own second account, a colleague:
            # red team 34 F3; `member_roles` limits who is named, not who names), or whom a manager removes.
            return everyone, False
        p = bp.entity(f.references)
        if p is None or p.name in trail:
            return set(), False
        if p.name in memo:
            return memo[p.name]
        roles, others = chain(p, trail | {p.name})
        for g in [] if p.soft_delete else command_grants(bp, p, "delete"):  # a client's delete archives
            mine, outside = who(g)
            roles, others = roles | mine, others or outside
        found = roles, others
        if not trail:  # (within a cycle a row's answer stops at the trail: red team 34 F5)
            memo[p.name] = found
        return found

    def chain(p: Entity, trail: frozenset[str]) -> tuple[set[str], bool]:
        """Who may remove a row `p` cascades from."""
        roles, others = set(), False
        for g in p.fields:
            if g.references and g.effective_on_delete == "cascade":
                more = removers(g, trail)
                roles, others = roles | more[0], others or more[1]
        return roles, others

    def deletes_what_it_updates(parent: Entity | None, u: Grant) -> bool:
        """`u` moves rows only between parents its callers may update: harmless where each parent they may update
        they may delete too, taking its rows with it anyway (red team 34 FR1)."""
        if parent is None or parent.soft_delete:
            return False
        mine = who(u)[0]
        return all(any(covers(bp, d, g) for d in command_grants(bp, parent, "delete"))
                   for g in command_grants(bp, parent, "update") if who(g)[0] & mine or who(g)[1])

    def both(u: Grant, r: Grant, roles: set[str], others: bool) -> list[Grant]:
        """The callers and rows `u` and `r` both admit among `roles` (and non-members when `others`), as grants
        `covers` reads (one per `where` when both have one); [] when they admit nobody alike."""
        (mine, u_out), (theirs, r_out) = who(u), who(r)
        names = [n for n in (x.name for x in bp.tenancy.roles) if n in mine and n in theirs and n in roles]
        if not names and not (u_out and r_out and others):
            return []
        if not (u.is_member_grant and r.is_member_grant):
            return [u, r]  # read apart
        joined = Grant(roles=names, own=u.own or r.own, assigned=u.assigned or r.assigned, under=u.under or r.under,
                       visible=u.visible or r.visible)
        wheres = [w for w in (u.where, r.where if r.where != u.where else None) if w is not None]
        return [joined.narrowed(where=w) for w in wheres] or [joined]

    for i, e in enumerate(bp.entities):
        row = bp.entity(e.private_of) if e.private_of else e
        if e.scope is not Scope.organization or row is None:
            continue  # a user's own rows are theirs
        soft = row.soft_delete  # a private side's row is kept with its archived row (A23)
        updaters, deleters = command_grants(bp, e, "update"), command_grants(bp, e, "delete")
        readers = command_grants(bp, e, "select")
        for j, f in enumerate(e.fields):
            if not f.references or f.effective_on_delete != "cascade" or f.server_set \
                    or f.name in fixed.get(e.name, set()) or (e.private_of and j == 0):
                continue
            parent = bp.entity(f.references)
            roles, others = removers(f, frozenset())
            # Who deletes every parent row has every row under one already (deleting it takes them: A24): a move
            # gives them nothing more.
            # (a row with no parent is under none of theirs: a nullable column settles nothing, red team 34 F2)
            if not f.nullable:
                roles = roles - _reach_every_row(bp, parent, "delete")
            roles = roles - wholesale
            # An update reaches the rows its caller reads: a taker updates rows by some update grant that some
            # select grant lets them read; rows already theirs through this column (assigned) are no take, and a
            # delete grant admitting them to those rows gives them the rows anyway (unless a client's delete only
            # archives them).
            takers = [(u, r) for u in updaters for r in readers if u.assigned != f.name and r.assigned != f.name
                      and not (u.under == f.name and not f.nullable and deletes_what_it_updates(parent, u))
                      and (ways := both(u, r, roles, others))
                      and (soft or not any(covers(bp, d, w) for d in deleters for w in ways))]
            if not takers:
                continue
            taker = takers[0][0]
            text = describe_grants(bp, e, [taker], "update")
            if f.references == MEMBERS:
                how, keep = "a member who then leaves (themselves, a second account of theirs, a colleague) or " \
                    "whom they remove", "nobody leaves or is removed while rows name them"
            elif f.references == AUTH_USERS:
                how, keep = "themselves, then delete their account", None  # (a restrict is refused: _check_references)
            else:
                how = f"a {f.references} row they may remove (one they may delete, or one under such a row)"
                keep = None if f.references in gone else "such a row is not deleted while rows name it"
            empty = "declare on_delete: set null" if f.nullable else "make it nullable with on_delete: set null"
            keep = None if soft else keep  # (archived rows nobody deletes would pin it: _check_pins)
            fix = (f"declare on_delete: restrict ({keep}), or " if keep else "") + f"{empty} (the rows stay, emptied)"
            chained = chain(parent, frozenset({parent.name})) if parent else (set(), False)
            mine, outside = who(taker)
            if parent and not parent.soft_delete and not (mine & chained[0] or outside and chained[1]):
                fix += f", or soft_delete: true on {parent.name} (a client's delete then archives it: nothing cascades)"
            fix += "; or let only callers who may remove no such row update it" if soft else \
                f"; or let those callers delete the rows of {e.name} they may update"
            lost = "for good, where a client's delete only archives them" if soft else \
                "though their delete grants do not give them those rows"
            problems.append((f"entities[{i}].fields[{j}].on_delete",
                             f"'{f.name}' cascades: {text} may update rows of {e.name} and point it at {how}, which "
                             f"deletes those rows {lost}.", fix))


def _unseen_parents(bp: Blueprint, e: Entity, col: str, roles: set[str]) -> str:
    """Why callers whose grants update every parent row have not every row under one of theirs, as the policies
    read it (a takeover's problem): parents hidden from them, archived ones, rows with no parent."""
    parent = bp.entity(e.field(col).references)
    roles &= _every_row_roles(bp, parent, "update")
    if not roles:
        return ""
    # A role reading every row through `visible` sees every parent (review: it was told its grants hid some).
    readers = _every_row_roles(bp, parent, "select") | _visible_everywhere(bp, parent, "select")
    hidden = [why for why, out in (("those its select grants hide from them", roles - readers),
                                   ("archived ones", roles - _reach_every_row(bp, parent, "update")
                                    if parent.soft_delete else set())) if out]
    if hidden:
        return (f" (they update {parent.name} rows, but not {' nor '.join(hidden)}: a row under one of those is not "
                "theirs)")
    return f" (they update every {parent.name} row, but a row with no {col} is under none of theirs)"


def _every_row_roles(bp: Blueprint, e: Entity | None, command: str) -> set[str]:
    """The roles a member grant of `command` admits to every row of `e` (no own, assigned, where, under, visible)."""
    from .meaning import command_grants
    return _unconditional_roles(bp, command_grants(bp, e, command) if e is not None else [])


def _unconditional_roles(bp: Blueprint, grants: list[Grant], but: str | None = None) -> set[str]:
    """The roles member grants admit to every row: no own, assigned, where, under, visible or linked (`but`: save
    that one condition)."""
    from .meaning import member_roles
    return {r for g in grants if g.is_member_grant and not any(
                getattr(g, c) for c in ("own", "assigned", "where", "under", "visible", "linked") if c != but)
            for r in member_roles(bp, g) or []}


def _clients_delete(bp: Blueprint, e: Entity | None, seen: set[str] | None = None) -> bool:
    """Whether a client's action may delete a row of `e` for good: a delete grant (a soft-deleted entity's delete
    archives), or a cascade from a member or an account, which clients always remove, or from a row a client may
    delete (red team 13: tasks nobody deletes went with their project, and a hidden bookmark stopped that). Review:
    a reference to a row no client deletes holds nothing back from anyone. (`seen`: each entity is asked once.)"""
    from .meaning import command_grants
    seen = set() if seen is None else seen
    if e is None or e.name in seen:
        return False
    seen.add(e.name)
    if not e.soft_delete and command_grants(bp, e, "delete"):
        return True
    return any(f.effective_on_delete == "cascade" and (f.references == MEMBERS or f.is_user_column or
                                                       _clients_delete(bp, bp.entity(f.references or ""), seen))
               for f in e.fields if f.is_reference)


def _reach_every_row(bp: Blueprint, e: Entity | None, command: str) -> set[str]:
    """The roles the generated policies let run `command` on every row of `e`, archived ones included (red team 11:
    the grants alone said more). An update or a delete reaches only rows its caller reads (the select predicate is
    ANDed in); an archived row, only its restorers (A24), and so does a private side's row of an archived row (A23);
    a soft-deleted entity's delete archives, which frees nothing. Remembered while `remembered_grants` is on."""
    from .meaning import _remember
    if e is None:
        return set()
    return set(_remember((id(bp), id(e), "every row", command), (bp, e), lambda: _reach(bp, e, command)))


def _reach(bp: Blueprint, e: Entity, command: str) -> frozenset[str]:
    from .meaning import restore_grants
    if command == "delete" and e.soft_delete:
        return frozenset()
    rows = _every_row_roles(bp, e, command) | _visible_everywhere(bp, e, command)
    if command != "select":
        rows &= _reach_every_row(bp, e, "select")
    archived = e if e.soft_delete else bp.entity(e.private_of) if e.private_of else None
    if archived is not None and archived.soft_delete:
        rows &= _unconditional_roles(bp, restore_grants(bp, archived))
    if e.private_of and command == "select":  # personal data is read with its row (red team 12)
        rows &= _reach_every_row(bp, bp.entity(e.private_of), "select")
    return frozenset(rows)


def _visible_everywhere(bp: Blueprint, e: Entity, command: str) -> set[str]:
    """The roles a `visible` grant over a required reference gives every row of `e`: those that read every parent
    row (red team 12)."""
    from .meaning import command_grants
    rows: set[str] = set()
    for g in command_grants(bp, e, command):
        f = e.field(g.visible) if g.visible else None
        if f is not None and not f.nullable:
            rows |= _unconditional_roles(bp, [g], but="visible") & _reach_every_row(bp, bp.entity(f.references),
                                                                                    "select")
    return rows


def _deletes_for_good(bp: Blueprint) -> dict[str, set[str]]:
    """For each entity, the roles that may delete every row of it for good once the rows holding them back are gone:
    a reference that restricts, required or not, wants its rows deleted first by the same role (clinical notes
    nobody deletes keep their appointment, red team 12; personal data also goes with its row, red team 14), and a
    cascade takes its rows along, which their own holders may stop (red team 13: procedures of an appointment, held
    by notes). The largest answer the equations allow, worked out for every entity at once from who references whom
    (review: one entity at a time was cubic, and a cycle's placeholder leaked into answers that then depended on the
    entities' order)."""
    everyone = frozenset(r.name for r in bp.tenancy.roles)
    holders: dict[str, list[tuple[Entity, Field]]] = {}
    for x in bp.entities:
        for f in x.fields:
            if f.references and f.effective_on_delete in ("restrict", "cascade"):
                holders.setdefault(f.references, []).append((x, f))
    # (entity, whether its rows go by a cascade) -> roles; starts at each one's own rights and only shrinks
    value = {(e.name, cascade): set(everyone if cascade else _reach_every_row(bp, e, "delete"))
             for e in bp.entities for cascade in (False, True)}
    changed = True
    while changed:
        changed = False
        for (name, cascade), roles in value.items():
            for x, f in holders.get(name, []):
                gone = value[(x.name, f.effective_on_delete == "cascade")]
                if x.private_of and f.effective_on_delete == "restrict":  # personal data goes with its row
                    gone = gone | value.get((x.private_of, False), set())
                if roles - gone:
                    roles &= gone
                    changed = True
    return {name: roles for (name, cascade), roles in value.items() if not cascade}


def _taker(bp: Blueprint, key: str, g: Grant, u: Grant, deleters: list[Grant], readers: list[Grant],
           settled: set[str]) -> Grant | None:
    """The callers and rows of update grant `u` who could bring a row into delete grant `g`'s condition `key`
    (assigned: naming themselves; under: moving it under a parent they may update) from rows they read outside it,
    that no delete grant admits anyway, as a grant (its roles cut to those `g` admits); None when there are
    none. `settled`: roles every row meets the condition for already (editors of every parent)."""
    from .meaning import covers, member_roles
    if getattr(u, key) == getattr(g, key):
        return None
    if not u.is_member_grant or not g.is_member_grant:  # a linked user may be a member too: no role rules them out
        return None if any(covers(bp, x, u) for x in deleters) else u

    def reads_others(role: str) -> bool:  # a select grant admitting the role to rows outside the condition
        return any(getattr(x, key) != getattr(g, key) and
                   (not x.is_member_grant or role in (member_roles(bp, x) or [])) for x in readers)
    # A member reference's member_roles are not read: the audit cannot see them in the SQL's trigger, and a
    # design that leans on them reads as a takeover there (BP065); the fix says the same to both.
    roles = [r for r in member_roles(bp, u) or [] if r in (member_roles(bp, g) or []) and reads_others(r)
             and r not in settled
             and not any(covers(bp, x, u.narrowed(min_role=None, capability=None, roles=[r])) for x in deleters)]
    return u.narrowed(min_role=None, capability=None, roles=roles) if roles else None


def _check_pins(bp: Blueprint, problems: list) -> None:
    """A required reference that restricts (L04) holds its target while a row names it. A member named there cannot
    be removed, leave or delete their account, so someone in the organisation must be able to change or delete
    every such row (a member grant that reads every row and updates or deletes it, not an archive): otherwise any
    writer pins a colleague's membership, or their own against the managers, with a row no manager can clear (red
    team 10: a private shoutout naming a colleague). A row of the organisation's (a project) held by another row is
    the design's retention (an appointment with clinical notes stays), but only while someone in the organisation
    reads every row that holds it: a private bookmark would stop the project's deletion where nobody could see
    why. "Every row": a member grant with no own, assigned, where, under, visible or linked, as the policies read
    it (_reach_every_row: an archived row is its restorers' alone). Personal data holding such a reference is
    read the same way on <entity>_private (red team 11: a pii reference pinned a colleague where only its author
    could see it); deleting its row for good, where the row is not soft-deleted, clears it too."""
    from .meaning import link_columns  # meaning reads a validated Blueprint
    links = link_columns(bp)
    for_good: dict[str, set[str]] | None = None
    for i, e in enumerate(bp.entities):
        if not e.is_tenant or not _clients_write(bp.entity(e.private_of) or e if e.private_of else e):
            continue
        pins = [(j, f) for j, f in enumerate(e.fields) if f.effective_on_delete == "restrict" and f.is_reference
                and f.name != (e.fields[0].name if e.private_of else None)
                and (f.references == MEMBERS or ((p := bp.entity(f.references or "")) is not None and p.is_tenant))]
        if not pins:
            continue

        # Updates and deletes reach only rows their caller reads: the same roles must read and clear every row.
        readers = _reach_every_row(bp, e, "select")
        for_good = _deletes_for_good(bp) if for_good is None else for_good
        deleters = set(for_good.get(e.name, set()))
        if e.private_of:  # the row's deletion takes its personal data with it
            deleters |= for_good.get(e.private_of, set())
        updaters = _reach_every_row(bp, e, "update")
        erasers = readers & _reach_every_row(bp, e, "delete")  # before what holds rows back (deleters)
        row = bp.entity(e.private_of) if e.private_of else e
        kept = f" (personal data, kept in {e.name})" if e.private_of else ""
        hidden = ("; an archived row, its restorers only" if row.soft_delete else "") + \
            ("; its personal data, the readers pii_read names" if e.private_of else "")
        rights = ["read" + (" (named in pii_read)" if e.private_of else "")] + (["restore"] if row.soft_delete else [])
        see = " and ".join(rights)
        clear = ", ".join(rights) + " and update (or delete)"
        for j, f in pins:
            # Relinking frees the member only where another may be named: not a linked column (set on insert only),
            # nor one in a unique key (every other member may have their row), nor one only some roles may fill
            # unless the owner's role is among them (the primary owner is always there; red team 12)
            # (one row per member: a key of the column alone; with another column, the updater moves that too)
            unique = f.unique or any(set(cols) - {"organization_id"} == {f.name} for cols in e.unique_together)
            narrowed = f.member_roles and bp.tenancy.roles[0].name not in f.member_roles
            linked = f.name in links.get(e.name, set())
            # Clearing a nullable column frees the member too (a client may clear a link as well), unless a kind
            # rule wants it filled in some state (s31 fit d: a dispatcher clears a driver who leaves).
            clears = f.nullable and not any(f.name in r.filled for r in row.requires)
            relinks = updaters if clears or not (linked or unique or narrowed) else set()
            if f.references == MEMBERS and not (readers & (deleters | relinks)):
                # why the roles that read and may update or delete every row free nobody (else: nobody may)
                why = [text for text, holds in (
                    ("requires keeps it filled in some state, so clearing it is refused there",
                     f.nullable and not clears),
                    ("it is set on insert only (linked)", linked), ("each member has one such row at most", unique),
                    (f"only {', '.join(f.member_roles or [])} may be named there", narrowed),
                    ("rows holding its rows back are deleted by nobody who reads them", erasers - deleters)) if holds]
                able = readers & updaters | erasers
                reason = ("its grants reach own, assigned or matching rows only, or its delete archives" + hidden
                          if not able else
                          "none of it frees the member: " + "; ".join(why) if why else "its rows are held back")
                # Where some role reads and changes every row already, say what would make that free the member
                # (review: the general fix asked for what the design had).
                frees = [text for text, holds in (
                    (f"add {bp.tenancy.roles[0].name} to member_roles (the primary owner can always be named instead)",
                     narrowed), (f"let that role delete every row of {row.name}",
                                 (unique or linked) and not erasers),
                    ("let that role delete the rows holding its rows back", erasers - deleters))
                    if holds] if able else \
                    [f"let one role {clear} every row of {row.name}"]
                problems.append((f"entities[{i}].fields[{j}].on_delete",
                                 f"'{row.name}.{f.name}'{kept} restricts: the member it names cannot be removed, leave "
                                 "or delete their account while such a row exists, and nobody in the organisation may "
                                 f"see and change or delete every such row ({reason}): whoever writes one pins a "
                                 "membership.",
                                 "declare on_delete: cascade (the row goes with the membership)"
                                 + ("" if f.nullable and not clears else  # requires keeps it filled: set null fails
                                    " or drop on_delete: restrict (set null)" if f.nullable else
                                    " or make the field nullable (set null)") + "".join(f", or {x}" for x in frees)))
            elif f.references != MEMBERS and not readers and _clients_delete(bp, bp.entity(f.references)):
                problems.append((f"entities[{i}].fields[{j}].on_delete",
                                 f"'{row.name}.{f.name}'{kept} restricts: the {f.references} row it names cannot be "
                                 "deleted while such a row exists, and nobody in the organisation sees every such row"
                                 + (f" ({hidden[2:]})" if hidden else "") + ": whoever writes one stops that deletion "
                                 "where no one can see why.",
                                 "declare on_delete: cascade (the row goes with it) or make the field nullable (set "
                                 f"null), or let one role {see} every row of {row.name}"))


def _check_server_set(bp: Blueprint, problems: list) -> None:
    """A server_set field decides nothing a client's write must choose: no grant condition reads it (a client could
    never move a row in or out), no state moves, kind rule, comparison, exclusion or unique key holds it (a client
    could not write the value the rule asks for)."""
    held: dict[tuple[str, str], str] = {}  # (entity, column) -> the first place that needs clients to write it
    for i, e in enumerate(bp.entities):
        for entity, col, path in _condition_columns(bp, e, i):
            held.setdefault((entity, col), path)
        for k, t in enumerate(e.transitions):
            held.setdefault((e.name, t.column), f"entities[{i}].transitions[{k}].column")
        for k, r in enumerate(e.requires):
            for col in (r.when.column, *r.filled, *r.empty):
                held.setdefault((e.name, col), f"entities[{i}].requires[{k}]")
        for k, c in enumerate(e.checks):
            for col in (c.column, c.other):
                held.setdefault((e.name, col), f"entities[{i}].checks[{k}]")
        for k, x in enumerate(e.exclusions):
            for col in (*x.keys, *x.range):
                held.setdefault((e.name, col), f"entities[{i}].exclusions[{k}]")
        for k, cols in enumerate(e.unique_together):
            for col in cols:
                held.setdefault((e.name, col), f"entities[{i}].unique_together[{k}]")
    for i, e in enumerate(bp.entities):
        for j, f in enumerate(e.fields):
            if not f.server_set:
                continue
            where = held.get((e.name, f.name)) or (f"entities[{i}].fields[{j}].unique" if f.unique else None)
            if where is not None:
                problems.append((where, f"'{e.name}.{f.name}' is server_set: clients never write it, so they "
                                 "could not give the value this needs.",
                                 f"drop server_set from {f.name}, or leave it out here"))


def _check_movable(bp: Blueprint, problems: list) -> None:
    """`movable` opts a reference out of being set on insert only, which only an entity with server_set fields
    asks of its references (docs/lifecycle.md L13); elsewhere clients move rows anyway, and the flag would say
    nothing."""
    for i, e in enumerate(bp.entities):
        if any(f.server_set for f in e.fields):
            continue
        for j, f in enumerate(e.fields):
            if f.movable:
                problems.append((f"entities[{i}].fields[{j}].movable",
                                 f"'{e.name}.{f.name}' is movable, but {e.name} has no server_set field: clients "
                                 "already point its references at other rows, so there is nothing to opt out of.",
                                 f"remove movable from {f.name}"))


def _check_dead_parents(bp: Blueprint, problems: list) -> None:
    """A member grant narrowed by `under` (or `visible`) admits its roles only on rows under a parent they may update
    (read): where none of its roles may, it admits nobody, and the design reads as if they could (s31 fit d: an
    interviewer's feedback `under` an interview only recruiters update; reviewers' reviews under applications only
    officers decide). A parent some linked, signed-in or public grant reaches is left alone: a member may be
    that user too."""
    from .meaning import command_grants, member_roles  # meaning reads a validated Blueprint
    ranked = [r.name for r in bp.tenancy.roles]
    for i, e in enumerate(bp.entities):
        if e.private_of or e.scope is not Scope.organization:
            continue
        for cmd in ("select", "insert", "update", "delete"):
            spec = e.access.spec(cmd)
            for k, g in enumerate(spec if isinstance(spec, list) else []):
                key = "under" if g.under else "visible" if g.visible else None
                f = e.field(getattr(g, key)) if key and g.is_member_grant else None
                parent = bp.entity(f.references) if f is not None and f.references else None
                if parent is None:
                    continue
                verb, parent_cmd = ("update", "update") if key == "under" else ("read", "select")
                grants = command_grants(bp, parent, parent_cmd)
                if not all(x.is_member_grant for x in grants):
                    continue
                mine = member_roles(bp, g) or []
                theirs = {r for x in grants for r in member_roles(bp, x) or []}
                if set(mine) & theirs:
                    continue
                named = [r for r in ranked if r in theirs]
                fix = (f"give {', '.join(mine)} {'an update' if key == 'under' else 'a select'} grant on {parent.name} "
                       f"(narrowed as they should reach it, e.g. by assigned or own), name roles that {verb} it, or "
                       f"drop {key}" + (" (a reference a client sets names only a row they may read, A27)"
                                        if key == "under" and cmd == "insert" else ""))
                problems.append((f"entities[{i}].access.{cmd}[{k}].{key}",
                                 f"no role this grant admits ({', '.join(mine)}) may {verb} any row of {parent.name} "
                                 f"({parent.name}'s {parent_cmd} grants admit "
                                 + (', '.join(named) if named else "only the service role")
                                 + f"): {key} {f.name} leaves the grant admitting nobody, for every role it names "
                                 "the condition would not hold.", fix))


def _check_movable_links(bp: Blueprint, problems: list) -> None:
    """A column a `linked` grant reads is set on insert only whatever the field says (keep_links, A09/A10):
    `movable` there would promise a move no client can make."""
    from .meaning import link_columns  # meaning reads a validated Blueprint
    links = link_columns(bp)
    for i, e in enumerate(bp.entities):
        for j, f in enumerate(e.fields):
            if f.movable and f.name in links.get(e.name, set()):
                problems.append((f"entities[{i}].fields[{j}].movable",
                                 f"'{e.name}.{f.name}' is movable, but a linked grant reads it: whom it names "
                                 "reaches the row, so clients set it on insert only anyway (docs/access.md A09).",
                                 f"remove movable from {f.name}, or leave {f.name} out of the linked chains"))


def _check_caller_defaults(bp: Blueprint, problems: list) -> None:
    """A field whose default is the signed-in user (auth_uid) says who wrote the row only while no client writes
    it: a client who may would name another user (re-attribute the row, or write as someone else). The audit's
    BP060 reads the SQL the same way."""
    for i, e in enumerate(bp.entities):
        if not (e.clients_run("insert") or e.clients_run("update")):
            continue
        for j, f in enumerate(e.fields):
            if f.default_expression is DefaultExpression.auth_uid and not f.server_set:
                problems.append((f"entities[{i}].fields[{j}].default_expression",
                                 f"'{e.name}.{f.name}' defaults to the signed-in user, but clients may write it: "
                                 "anyone could name another user in it.",
                                 "add server_set: true (the default then records who inserted the row, and no "
                                 "client changes it), make it the entity's owner_column (the row's author), or "
                                 "drop default_expression where clients choose the user (an assignee)"))


_WHERE_TYPES = (FieldType.boolean, FieldType.enum, FieldType.text, FieldType.integer, FieldType.bigint)


def _grant_problems(bp: Blueprint, e: Entity, cmd: str, grants: list[Grant], path: str) -> list[tuple[str, str, str]]:
    """Every way a list of grants has no safe meaning on this entity, with the field and the fix."""
    out: list[tuple[str, str, str]] = []
    roles = [r.name for r in bp.tenancy.roles]
    if e.scope is Scope.user:
        return [(path, "scope 'user' already limits every command to the row's author.",
                 "use scope organization with grants that say own: true, or a role name")]
    everyone = any(g.public and g.where is None and g.visible is None for g in grants)
    if e.is_tenant and grants and not everyone and not any(g.is_member_grant for g in grants):
        # The fix names this tenancy's roles, and for a write the write capability: {min_role: viewer} named a
        # role a tenancy may not have, and {capability: read} on an update gave every reader the write.
        need = Capability.read if cmd == "select" else Capability.write
        least = bp.tenancy.min_role(need) or bp.tenancy.owner_role
        out.append((path, "no grant names members: the organisation's own members would be left out (and a "
                    "policy that never checks membership is what the audit warns about).",
                    f"add a member grant too, e.g. {{min_role: {least.name}}} (the least role holding {need.value}), "
                    f"{{capability: {need.value}}} or {{roles: [{bp.tenancy.owner_role.name}]}}"))
    for k, g in enumerate(grants):
        at = f"{path}[{k}]"
        if g.min_role is not None and g.min_role not in roles:
            out.append((f"{at}.min_role", f"'{g.min_role}' is not a role of this tenancy.", choose(g.min_role, roles)))
        for r in g.roles or []:
            if r not in roles:
                out.append((f"{at}.roles", f"'{r}' is not a role of this tenancy.", choose(r, roles)))
        if g.capability is not None and g.capability not in bp.tenancy.capability_names():
            out.append((f"{at}.capability", f"'{g.capability}' is not a capability of this tenancy.",
                        choose(g.capability, bp.tenancy.capability_names())
                        + " (or declare it in tenancy.capabilities)"))
        elif g.capability is not None and not bp.tenancy.holders(g.capability):
            out.append((f"{at}.capability", f"no role holds '{g.capability}', so the grant admits nobody.",
                        "add it to a role's capabilities or remove the grant"))
        if (g.public or g.signed_in) and cmd != "select":
            out.append((at, f"{g.who} grants are read-only.", "use them under access.select only"))
        elif g.signed_in and e.is_tenant and g.where is None and g.visible is None:
            # (to authenticated using (true): what the audit's BP027 warns about in hand-written SQL)
            out.append((at, "a signed_in grant with nothing to narrow it would let every signed-in user read every "
                        "organisation's rows.", "narrow it with where (e.g. listed = true) or visible, or use "
                        "{public: true} if every row is public"))
        if not e.is_tenant and g.who not in ("public", "signed_in"):
            out.append((at, "global entities belong to no organisation, so member and linked grants mean nothing.",
                        "use {signed_in: true} or {public: true}"))
        if g.own and not e.owner_column:
            out.append((f"{at}.own", f"'{e.name}' has no owner column.", "set owner_column or remove own"))
        moved = [(f"{at}.{key}", why) for col, key in ((g.assigned, "assigned"),
                                                      (g.where.column if g.where is not None else None, "where.column"),
                                                      ((g.linked or [None])[0], "linked[0]"))
                 if (why := _moved_to_private(bp, e, col))]
        if moved:
            out += [(where, why, "remove pii: true from the field, or grant on another column") for where, why in moved]
            continue
        if g.assigned is not None:
            f = e.field(g.assigned)
            if f is None or not f.is_user_column:
                out.append((f"{at}.assigned", f"'{g.assigned}' is not a user column of {e.name}.",
                            "name a field of type reference to organization_members (or auth.users)"))
        if g.where is not None:
            out += _where_problems(e, g, f"{at}.where")
        if g.linked is not None:
            out += _linked_problems(bp, e, g.linked, f"{at}.linked")
            out += _writer_link_problems(bp, e, cmd, g.linked, f"{at}.linked")
        if g.under is not None:
            out += _under_problems(bp, e, g.under, f"{at}.under")
        if g.visible is not None:
            out += _visible_problems(bp, e, g, cmd, f"{at}.visible")
    if e.is_tenant and cmd == "select":
        out += _where_covers_all(e, grants, path)
    return out


def _where_covers_all(e: Entity, grants: list[Grant], path: str) -> list[tuple[str, str, str]]:
    """The bare signed_in grant (refused above) spelled as a where: its values, with those of the other signed_in
    and public grants on the column, are every value a boolean, enum or bounded integer may hold (red team 21 F4:
    `shared in [true, false]` let every signed-in user read every organisation's rows; NULL aside, red team 23;
    integers, red team 25)."""
    listed: dict[str, set[str]] = {}
    for g in grants:
        if (g.signed_in or g.public) and g.where is not None and g.visible is None:
            listed.setdefault(g.where.column, set()).update(str(v).lower() for v in g.where.values)
    out = []
    for column, values in listed.items():
        signed_in = [k for k, g in enumerate(grants) if g.signed_in and g.where is not None and g.visible is None
                     and g.where.column == column]
        public = [k for k, g in enumerate(grants) if g.public and g.where is not None and g.visible is None
                  and g.where.column == column]
        if signed_in and _lists_every_value(e, column, values):
            out.append((f"{path}[{signed_in[0]}].where", f"the signed_in and public grants' where on '{column}' lists "
                        f"every value it can hold, so every signed-in user would read every organisation's rows.",
                        "list only the values every signed-in user may read (a where admitting every row "
                        "narrows nothing), or use {public: true} if every row is public"))
        elif public and _lists_every_value(e, column, values):
            # Said as {public: true}, the same rows; spelled as a where, a condition the audit rightly reads as
            # admitting every row to non-members (BP079): the fuzz found the two readings apart (session 31).
            out.append((f"{path}[{public[0]}].where", f"the public grants' where on '{column}' lists every value it "
                        "can hold, so everyone, signed in or not, would read every organisation's rows.",
                        "list only the values anyone may read (a where admitting every row narrows nothing), or "
                        "use {public: true} without a where if every row is public"))
    if not out:
        linked = _linked_columns_covered(e, listed)
        open_to = [k for k, g in enumerate(grants) if (g.signed_in or g.public) and g.where is not None
                   and g.visible is None and g.where.column in (linked or ())]
        if linked and open_to:
            who = "every signed-in user" if any(grants[k].signed_in for k in open_to) else "everyone, signed in or not,"
            out.append((f"{path}[{open_to[0]}].where", f"the signed_in and public grants' wheres on {sorted(linked)} "
                        "(columns the entity's checks compare) together admit every row a client can write, so "
                        f"{who} would read every organisation's rows.",
                        "list only the values every signed-in user may read, or use {public: true} if every row "
                        "is public"))
    return out


def _linked_columns_covered(e: Entity, listed: dict[str, set[str]]) -> set[str] | None:
    """Columns the entity's comparisons link (bounded NOT NULL integers) whose listed values, column by column,
    admit every combination of values a row can hold, NULL aside (red team 28: `a <> b` over 0..1 with `where a =
    0` and `where b = 0` leaves no row out); None when no such group is covered. Small groups only (4,096 rows)."""
    bounds = integer_bounds(e)
    pairs = [(c.column, c.op, c.other) for c in e.checks if c.column in bounds and c.other in bounds
             and not e.field(c.column).nullable and not e.field(c.other).nullable]
    group: dict[str, str] = {name: name for name in bounds}

    def root(x: str) -> str:
        while group[x] != x:
            x = group[x]
        return x
    for a, _, b in pairs:
        group[root(a)] = root(b)
    members: dict[str, list[str]] = {}
    for name in bounds:
        members.setdefault(root(name), []).append(name)
    holds = {"lt": lambda x, y: x < y, "le": lambda x, y: x <= y, "gt": lambda x, y: x > y,
             "ge": lambda x, y: x >= y, "ne": lambda x, y: x != y}
    for cols in members.values():
        if len(cols) < 2 or not set(cols) & set(listed):
            continue
        ranges = []
        for c in cols:
            low, high, excluded = bounds[c]
            if low is None or high is None:
                break
            ranges.append([n for n in range(low, high + 1) if n not in excluded])
        if len(ranges) < len(cols) or math.prod(len(r) for r in ranges) > 4096:
            continue
        rules = [(cols.index(a), holds[op], cols.index(b)) for a, op, b in pairs if a in cols]
        rows = [row for row in itertools.product(*ranges) if all(f(row[i], row[j]) for i, f, j in rules)]
        if rows and all(any(str(row[i]) in listed.get(c, set()) for i, c in enumerate(cols)) for row in rows):
            return set(cols) & set(listed)
    return None


def _narrows_nothing(e: Entity, where: Match | None, grants: list[Grant] = ()) -> bool:
    """No where, or one that, with the other signed_in and public grants' where on its column (`grants`), lists
    every value its boolean, enum or bounded integer column can hold (red team 22: beside visible over a global
    parent, or on the parent's public grant; red team 23: values split across grants, and a nullable column, which
    its default fills on every row a client writes)."""
    if where is None:
        return True
    listed: dict[str, set[str]] = {where.column: {str(v).lower() for v in where.values}}
    for x in grants:
        if (x.signed_in or x.public) and x.where is not None:
            listed.setdefault(x.where.column, set()).update(str(v).lower() for v in x.where.values)
    return _lists_every_value(e, where.column, listed[where.column]) or \
        where.column in (_linked_columns_covered(e, listed) or ())


def _lists_every_value(e: Entity, column: str, values: set[str]) -> bool:
    """`values` (as text, lower case) are every value the column can hold on a row a client writes, NULL aside: a
    boolean's two, an enum's (those its transitions let a client's row reach), or each integer its bounds allow,
    the field's check narrowed by the entity's comparisons with other columns (red team 25: `flag in [0, 1]` with
    `check: {min: 0, max: 1}` let every signed-in user read every organisation's rows, as `shared in [true, false]`
    had; red team 27: `shared <= one` with `one` held to 1, and a state every client row starts and stays in)."""
    f = e.field(column)
    if f is None:
        return False
    if f.type is FieldType.boolean:
        domain = {"true", "false"}
    elif f.type is FieldType.enum:
        domain = {v.lower() for v in _reachable_states(e, column, f.values or [])}
    elif f.type in (FieldType.integer, FieldType.bigint):
        bounds = integer_bounds(e).get(column)
        if bounds is None or bounds[0] is None or bounds[1] is None:
            return False
        low, high, excluded = bounds
        if high - low + 1 - len(excluded) > len(values):  # more integers than listed values (or no range at all)
            return False
        domain = {str(n) for n in range(low, high + 1) if n not in excluded}
    else:
        return False
    return bool(domain) and domain <= values


def _reachable_states(e: Entity, column: str, values: list[str]) -> list[str]:
    """The values of an enum a client's row may hold: its transitions' initial states and where their moves lead
    (every value when the column has no transitions, or they list no initial state)."""
    rule = next((t for t in e.transitions if t.column == column), None)
    if rule is None or not rule.initial:
        return values
    seen, todo = set(rule.initial), list(rule.initial)
    while todo:
        for nxt in rule.moves.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return [v for v in values if v in seen]


def integer_bounds(e: Entity) -> dict[str, tuple[int | None, int | None, set[int]]]:
    """column -> (least, greatest, values left out) of each integer field: its check, narrowed by the entity's
    comparisons between NOT NULL integer fields (a NULL passes a comparison), until nothing changes."""
    ints = {f.name: f for f in e.fields if f.type in (FieldType.integer, FieldType.bigint)}
    low: dict[str, int | None] = {}
    high: dict[str, int | None] = {}
    excluded: dict[str, set[int]] = {name: set() for name in ints}
    for name, f in ints.items():
        low[name] = math.ceil(f.check.min) if f.check is not None and f.check.min is not None else None
        high[name] = math.floor(f.check.max) if f.check is not None and f.check.max is not None else None

    def at_most(name: str, value: int | None) -> bool:
        if value is None or (high[name] is not None and high[name] <= value):
            return False
        high[name] = value
        return True

    def at_least(name: str, value: int | None) -> bool:
        if value is None or (low[name] is not None and low[name] >= value):
            return False
        low[name] = value
        return True

    def shift(value: int | None, by: int) -> int | None:
        return None if value is None else value + by
    pairs = [(c.column, c.op, c.other) for c in e.checks if c.column in ints and c.other in ints
             and not ints[c.column].nullable and not ints[c.other].nullable]
    for _ in range(2 * len(pairs) + 2):
        changed = False
        for a, op, b in pairs:
            if op in ("le", "lt"):  # a <= b (a < b): a below b's greatest, b above a's least
                step = 0 if op == "le" else 1
                changed |= at_most(a, shift(high[b], -step)) | at_least(b, shift(low[a], step))
            elif op in ("ge", "gt"):
                step = 0 if op == "ge" else 1
                changed |= at_least(a, shift(low[b], step)) | at_most(b, shift(high[a], -step))
            elif op == "ne":  # a <> b: the value a column held to one value holds is left out of the other's
                for x, y in ((a, b), (b, a)):
                    if low[y] is not None and low[y] == high[y] and low[y] not in excluded[x]:
                        excluded[x].add(low[y])
                        changed = True
        if not changed:
            break
    return {name: (low[name], high[name], excluded[name]) for name in ints}


def _parent_named(bp: Blueprint, e: Entity, ref: str, at: str) -> tuple[Entity | None, list[tuple[str, str, str]]]:
    """The entity a reference field of `e` names (`under`, `visible`), or None and the problem with the fix."""
    f = e.field(ref)
    parent = bp.entity(f.references) if f is not None and f.references else None
    if parent is None or parent.name == e.name or f.is_user_column:
        refs = [x.name for x in e.fields if x.is_reference and bp.entity(x.references or "") is not None
                and x.references != e.name]
        return None, [(at, f"'{ref}' is not a reference from {e.name} to another entity.",
                       f"use one of {refs}" if refs else "add a reference field to the parent entity")]
    return parent, []


def _visible_problems(bp: Blueprint, e: Entity, g: Grant, cmd: str, at: str) -> list[tuple[str, str, str]]:
    """`visible` (select only) names a reference to another entity, which the grant's readers may select from
    (anon needs a public grant on it), and whose own select grants need no parent of their own."""
    if cmd != "select":
        # A founder's review "on an application the reviewer can see" followed the old fix to under, which asks for
        # a parent the writer may update: a grant reviewers never meet, accepted in silence (s31 fit d).
        named = ("; an insert needs no visible: a reference a client sets names only a row they may read (A27), "
                 "so a new row lands only under a parent its writer sees") if cmd == "insert" else ""
        return [(at, "visible narrows what a reader sees; writes have under (a parent the caller may update: "
                 "stronger than reading it)" + named + ".",
                 ("use visible under access.select only: drop it from this insert grant (the parent's select "
                  "grants decide already), or use under where the writer must also be able to update the parent")
                 if cmd == "insert" else
                 "use visible under access.select only, or under where the writer must be able to update the parent")]
    parent, problems = _parent_named(bp, e, g.visible, at)
    if parent is None:
        return problems
    spec = parent.access.spec("select")
    grants = spec if isinstance(spec, list) else []
    if any(x.visible for x in grants):
        return [(at, f"{parent.name}'s own select grants use visible: one level of parents only.",
                 "narrow the parent's select grants by where instead")]
    if (cycle := _cycle_through(bp, e, parent, at)):
        return cycle
    if g.public and not any(x.public for x in grants):
        return [(at, f"anon reads no {parent.name} row, so no row of {e.name} would pass (and anon would be "
                     f"refused the table).", f"give {parent.name} a {{public: true, where: ...}} select grant, or "
                                              "use signed_in here")]
    # Red team 18: over a parent every signed-in user reads whole (reference data), visible narrows nothing but
    # rows without a parent: the bare signed_in grant refused in _grant_problems.
    everyone = spec is None and not parent.is_tenant or \
        any((x.signed_in or x.public) and _narrows_nothing(parent, x.where, grants) for x in grants)
    own = e.access.spec("select")
    if not (g.signed_in and _narrows_nothing(e, g.where, own if isinstance(own, list) else []) and e.is_tenant):
        return []
    if everyone:
        return [(at, f"every signed-in user reads every {parent.name} row, so visible narrows nothing: every "
                     f"signed-in user would read every organisation's rows of {e.name} that name one.",
                 "narrow it with where (e.g. listed = true), or make it visible over a parent not every signed-in "
                 "user reads; {public: true} if every row is public")]
    # Red team 19: a global parent's where narrows which of its rows count, never which organisations (no
    # organisation key ties a row to a parent of its own, as it does a team parent's): a retired category hidden
    # still left every organisation's documents in the others to every signed-in user.
    if not parent.is_tenant:
        return [(at, f"{parent.name} belongs to no organisation: its grants narrow which of its rows count, never "
                     f"whose: every signed-in user would read every organisation's rows of {e.name} that name one "
                     f"they read.", f"narrow it with where on a column of {e.name} (e.g. shared = true), or make it "
                                    f"visible over a team entity's rows; {{public: true}} if every row is public")]
    return []


def _under_problems(bp: Blueprint, e: Entity, under: str, at: str) -> list[tuple[str, str, str]]:
    """`under` names a reference to another tenant entity whose update grants need no parent of their own."""
    parent, problems = _parent_named(bp, e, under, at)
    if parent is None:
        return problems
    if not parent.is_tenant:
        return [(at, f"{parent.name} belongs to no organisation: nobody updates its rows but the service role.",
                 "name a reference to a tenant entity")]
    spec = parent.access.spec("update")
    if isinstance(spec, list) and any(g.under for g in spec):
        return [(at, f"{parent.name}'s own update grants use under: one level of parents only.",
                 "narrow the parent's update grants by own, assigned or where instead")]
    return _cycle_through(bp, e, parent, at)


def _cycle_through(bp: Blueprint, e: Entity, parent: Entity, at: str) -> list[tuple[str, str, str]]:
    """A parent whose own rules (select, update and restore grants with under or visible) lead back to `e`: its
    policies, restated in e's or read under RLS, read e's table again (PostgreSQL refuses with 42P17, infinite
    recursion) or the generator restates without end (drawn by the random fuzz once entities got parents)."""
    seen, todo = {parent.name}, [parent]
    while todo:
        x = todo.pop()
        for g in _parent_grants(bp, x):
            ref = x.field(g.under or g.visible or "")
            nxt = bp.entity(ref.references) if ref is not None and ref.references else None
            if nxt is None:
                continue
            if nxt.name == e.name:
                return [(at, f"{parent.name}'s own grants lead back to {e.name} (under or visible): its policies "
                             f"would read {e.name} again, a cycle.",
                         f"narrow {parent.name}'s grants by own, assigned or where instead of under or visible")]
            if nxt.name not in seen:
                seen.add(nxt.name)
                todo.append(nxt)
    return []


def _parent_grants(bp: Blueprint, x: Entity) -> list[Grant]:
    """x's select and update grants, and its restorers (restore list, else delete grants) when soft-deleted, as
    written: those with under or visible read another entity."""
    specs = [x.access.spec("select"), x.access.spec("update")]
    if x.soft_delete:
        specs.append(x.restore if x.restore is not None else x.access.spec("delete"))
    return [g for spec in specs if isinstance(spec, list) for g in spec
            if isinstance(g, Grant) and (g.under or g.visible)]


def _check_restore(bp: Blueprint, e: Entity, i: int, problems: list) -> None:
    spec, path = e.restore, f"entities[{i}].restore"
    if spec is None:
        return
    if not e.soft_delete:
        problems.append((path, f"{e.name} is not soft-deleted, so nothing is ever archived to restore.",
                         "set soft_delete: true or remove restore"))
        return
    if not e.is_tenant:
        problems.append((path, "global rows belong to no organisation: only the service role restores them.",
                         "remove restore"))
        return
    if e.scope is Scope.service:
        problems.append((path, "scope 'service' rows are written by the service role alone: only it restores them.",
                         "remove restore, or use scope organization so members may delete and restore"))
        return
    if isinstance(spec, str):
        roles = [r.name for r in bp.tenancy.roles]
        if spec not in roles:
            problems.append((path, f"'{spec}' is not a role of this tenancy.", choose(spec, roles)))
        return
    for k, g in enumerate(spec):
        if not g.is_member_grant or g.where is not None or g.assigned is not None or g.under is not None or \
                g.visible is not None:
            problems.append((f"{path}[{k}]", "restoring is for members: name min_role, roles or capability "
                             "(optionally own).", "use a member grant such as {capability: restore_projects}"))
    problems += [p for p in _grant_problems(bp, e, "delete", spec, path) if not p[1].startswith("no grant names")
                 and "scope 'user'" not in p[1]]


def _check_pii_read(bp: Blueprint, e: Entity, i: int, problems: list) -> None:
    spec, path = e.pii_read, f"entities[{i}].pii_read"
    side = bp.entity(private_name(e))
    if spec is None:
        select = e.access.spec("select")
        linked = [g for g in select if g.linked] if isinstance(select, list) else []
        if side is not None and side.private_of == e.name and not e.owner_column and linked:
            # The default readers (the row's author, and the users its select grants link to) would be linked
            # users alone: a policy that never checks membership, and the organisation left out of its own data.
            problems.append((f"entities[{i}]", f"{e.name}'s personal data would be read by linked users only (it "
                             "has no author column, and by default the author and the linked users read it).",
                             "say who reads it: pii_read with a member grant too, e.g. "
                             "[{min_role: admin}, {linked: [" + ", ".join(linked[0].linked) + "]}]"))
        return
    if side is None or side.private_of != e.name:
        why = ("scope 'user' rows are private to their author already" if e.scope is Scope.user
               else f"{e.name} has no pii fields")
        problems.append((path, f"{why}, so pii_read has nothing to decide.", "remove pii_read"))
        return
    if isinstance(spec, str):
        roles = [r.name for r in bp.tenancy.roles]
        if spec not in roles:
            problems.append((path, f"'{spec}' is not a role of this tenancy.", choose(spec, roles)))
        return
    for k, g in enumerate(spec):
        if g.where is not None or g.assigned is not None or g.under is not None or g.visible is not None or \
                g.public or g.signed_in:
            problems.append((f"{path}[{k}]", "personal data is read by people, not by row conditions: where, "
                             "assigned, under, visible, public and signed_in do not apply.",
                             "use own, linked, min_role, roles or capability"
                             + (" (drop " + ", ".join(x for x in ("where", "assigned", "under", "visible")
                                                       if getattr(g, x))
                                + ": a pii reader reaches personal data only on rows they may also read, so the "
                                "row conditions of the select grants still hold)"
                                if g.is_member_grant and not (g.public or g.signed_in) else "")))
    problems += _grant_problems(bp, e, "select", spec, path)


def _where_problems(e: Entity, g: Grant, at: str) -> list[tuple[str, str, str]]:
    return _match_problems(e, g.where, at)


def _match_problems(e: Entity, w: Match, at: str) -> list[tuple[str, str, str]]:
    """A column condition (a grant's `where`, a requirement's `when`): a field of a matchable type, values
    that fit it."""
    f = e.field(w.column)
    usable = [x.name for x in e.fields if x.type in _WHERE_TYPES]
    if f is None or f.type not in _WHERE_TYPES:
        return [(f"{at}.column", f"'{w.column}' is not a boolean, enum, text or integer field of {e.name}.",
                 f"use one of {usable}" if usable else "add such a field (e.g. published boolean)")]
    out = []
    for v in w.values:
        fits = {FieldType.boolean: isinstance(v, bool),
                FieldType.enum: isinstance(v, str) and v in (f.values or []),
                FieldType.text: isinstance(v, str),
                FieldType.integer: isinstance(v, int) and not isinstance(v, bool),
                FieldType.bigint: isinstance(v, int) and not isinstance(v, bool)}[f.type]
        if not fits:
            hint = f"one of {f.values}" if f.type is FieldType.enum else f"a {f.type.value} value"
            out.append((at, f"{v!r} does not fit {w.column} ({f.type.value}).", f"use {hint}"))
    return out


def _moved_to_private(bp: Blueprint, e: Entity, col: str | None) -> str | None:
    """Why a grant cannot read `col`: it is personal data, kept in the entity's private side (A23)."""
    side = next((x for x in bp.entities if x.private_of == e.name), None) if col else None
    if side is None or side.field(col) is None:
        return None
    return f"'{col}' is personal data (pii: true), kept in {side.name}, where no grant of {e.name} can read it."


def _writer_link_problems(bp: Blueprint, e: Entity, cmd: str, chain: list[str],
                          at: str) -> list[tuple[str, str, str]]:
    """A chain ending at a column the writer's id fills (`linked: [created_by]`, `linked: [project_id, created_by]`)
    of an entity members write rows of, in a grant that is not the insert of that same row: whoever wrote a row as
    a member is still its writer after they leave, and the grant keeps them in (evasion round 8 e16, red team 17
    for chains; audit BP091). Every insert list of an organisation's entity names members (_grant_problems), so
    linked users inserting beside them change nothing (red team 18: a member who filed a ticket kept its notes)."""
    end = e
    for col in chain[:-1]:
        f = end.field(col)
        end = bp.entity(f.references) if f is not None and f.references else None
        if end is None:
            return []  # not a chain to another entity: _linked_problems says why
    col = chain[-1]
    if (cmd == "insert" and end is e) or end.scope is not Scope.organization:
        return []  # the writer of the new row is the caller, or of a service row the server: no membership ends
    f = end.field(col)
    inserts = end.access.spec("insert")
    grants = inserts if isinstance(inserts, list) else []
    # A user column a member insert grant assigns to the caller holds the writer's id on every row members write
    # through it, like created_by (red team 19: members filed requests for themselves, linked: [requester_id]); a
    # member reference goes with the membership (A19).
    pinned = f is not None and f.references_auth_users and any(g.is_member_grant and g.assigned == col
                                                               for g in grants)
    if not (col == end.owner_column or (f is not None and f.default_expression is DefaultExpression.auth_uid)
            or pinned):
        return []
    whose = "the row" if end is e else f"the {end.name} row the chain ends at"
    how = " (a member insert grant assigns it to them)" if pinned and col != end.owner_column else ""
    fix = (f"grant it to members: {{min_role: ..., assigned: {col}}} (the user it names, while a member)"
           if end is e else f"grant it to members: visible: {chain[0]} (rows under a {end.name} row they read)") \
        if how else "use own: true (the writer, while a member)"
    return [(f"{at}[{len(chain) - 1}]", f"'{col}' holds the id of whoever wrote {whose}{how}, and members write "
             f"rows of {end.name}{' (linked users too)' if any(g.linked for g in grants) else ''}: the grant would "
             f"let a member who leaves the organisation {({'select': 'read', 'insert': 'add'}).get(cmd, cmd)} "
             f"{'every row they wrote' if end is e else f'rows of {e.name} under every row they wrote'}, as long as "
             "it lives.",
             f"{fix}; or link a user field naming whom the row is for (e.g. [customer_id, user_id], the chain the "
             "linked users' insert grant names)")]


def _linked_problems(bp: Blueprint, e: Entity, chain: list[str], at: str) -> list[tuple[str, str, str]]:
    current = e
    for k, col in enumerate(chain):
        last = k == len(chain) - 1
        f = current.field(col)
        user_col = col == current.owner_column or (f is not None and f.is_user_column)
        if last:
            if not user_col:
                return [(f"{at}[{k}]", f"'{col}' is not a user column of {current.name}: a chain ends at the user "
                         "it links.", "end the chain at a field referencing auth.users (e.g. user_id)")]
            return []
        if f is None or not f.is_reference or f.is_user_column or bp.entity(f.references) is None:
            return [(f"{at}[{k}]", f"'{col}' is not a reference from {current.name} to another entity.",
                     "each column but the last must reference an entity (e.g. patient_id)")]
        current = bp.entity(f.references)
        if not current.is_tenant:
            return [(f"{at}[{k}]", f"the chain leaves the organisation at global '{current.name}'.",
                     "link through tenant entities only")]
    return []


def _check_requirements(e: Entity, i: int, problems: list) -> None:
    """`requires`: the condition is a matchable field; filled and empty name optional fields of the entity, other
    than the condition's, each once."""
    fields = {f.name: f for f in e.fields}
    for k, r in enumerate(e.requires):
        at = f"entities[{i}].requires[{k}]"
        if any(path == at or path.startswith(at + ".") for path, *_ in problems):
            continue  # already refused (a rule over pii fields), numbered as written
        problems += _match_problems(e, r.when, f"{at}.when")
        if not r.filled and not r.empty:
            problems.append((at, "names no field to fill or leave empty.", "add filled: [...] or empty: [...]"))
        seen: set[str] = set()
        for key in ("filled", "empty"):
            for name in getattr(r, key):
                f = fields.get(name)
                if f is None:
                    problems.append((f"{at}.{key}", f"'{name}' is not a field of {e.name}.", choose(name, list(fields))))
                elif name == r.when.column:
                    problems.append((f"{at}.{key}", f"'{name}' is the condition's own column.",
                                     "name other fields"))
                elif not f.nullable:
                    problems.append((f"{at}.{key}", f"'{name}' is never empty (nullable: false): the rule "
                                     + ("would always hold." if key == "filled" else "could never hold."),
                                     f"make {name} nullable, or leave it out"))
                elif key == "filled" and f.is_reference and f.effective_on_delete == "set null":
                    problems.append((f"{at}.{key}", f"'{name}' is emptied when the row it references is deleted "
                                     "(on_delete: set null), which the rule would refuse: the delete would fail.",
                                     f"give {name} on_delete: cascade or restrict"
                                     + (" (a member named then stays until someone who reads every such row "
                                        "changes or deletes it, docs/lifecycle.md L04)"
                                        if f.references == MEMBERS else "")
                                     + ", or leave it out of this rule"))
                elif name in seen:
                    problems.append((f"{at}.{key}", f"'{name}' is named twice.", "name each field once"))
                seen.add(name)
    # Two rules asking opposite things of one field: a row both hold for could never be written.
    for k, r in enumerate(e.requires):
        for j, other in enumerate(e.requires[:k]):
            clash = sorted((set(r.filled) & set(other.empty)) | (set(r.empty) & set(other.filled)))
            same_column = r.when.column == other.when.column
            shared = sorted(set(map(str, r.when.values)) & set(map(str, other.when.values)))
            if clash and (not same_column or shared):
                both = f"{r.when.column} is one of {shared}" if same_column else \
                    f"{other.when.column} and {r.when.column} both match"
                problems.append((f"entities[{i}].requires[{k}]", f"asks the opposite of requires[{j}] for {clash}: a "
                                 f"row where {both} could never be written.",
                                 "make the conditions exclusive (one column, different values) or drop one"))


def _check_transitions(e: Entity, i: int, problems: list) -> None:
    """`transitions`: a non-null enum field of the entity, once; every state named is one of its values; the
    default is a value a client may insert with; some client writes the entity (else nothing is bound)."""
    seen: set[str] = set()
    for k, t in enumerate(e.transitions):
        at = f"entities[{i}].transitions[{k}]"
        if any(path == f"{at}.column" for path, *_ in problems):
            continue  # already refused (personal data)
        f = e.field(t.column)
        enums = [x.name for x in e.fields if x.type is FieldType.enum]
        if f is None or f.type is not FieldType.enum:
            problems.append((f"{at}.column", f"'{t.column}' is not an enum field of {e.name}.",
                             f"use one of {enums}" if enums else "add an enum field (e.g. status)"))
            continue
        if f.nullable:
            problems.append((f"{at}.column", f"'{t.column}' may be empty: a row without a state has no moves.",
                             f"make {t.column} nullable: false (with a default)"))
        if t.column in seen:
            problems.append((f"{at}.column", f"'{t.column}' has its moves listed twice.", "merge them into one entry"))
        seen.add(t.column)
        if not e.client_writable:
            problems.append((at, f"scope '{e.scope.value}' is written by the service role only, which no move binds.",
                             "remove transitions, or use scope organization/user"))
        values = list(f.values or [])
        named = [(f"{at}.initial", v) for v in t.initial]
        for state, targets in t.moves.items():
            named.append((f"{at}.moves", state))
            named += [(f"{at}.moves.{state}", v) for v in targets]
            if state in targets:
                problems.append((f"{at}.moves.{state}", f"'{state}' moves to itself: an unchanged value always "
                                 "passes.", f"leave {state} out of its own list"))
            if len(set(targets)) != len(targets):
                problems.append((f"{at}.moves.{state}", "a value repeats.", "list each value once"))
        for path, v in named:
            if v not in values:
                problems.append((path, f"'{v}' is not a value of {e.name}.{t.column}.", choose(v, values)))
        if t.initial and f.default is not None and str(f.default) not in t.initial:
            problems.append((f"{at}.initial", f"the default '{f.default}' is not among the values a client may "
                             "insert with: a client leaving it out would always be refused.",
                             f"add {f.default} to initial, or change the default"))


def _check_comparisons(e: Entity, i: int, problems: list) -> None:
    fields = {f.name: f for f in e.fields}
    ordered = (FieldType.integer, FieldType.bigint, FieldType.numeric, FieldType.date, FieldType.timestamptz)
    for k, cmp in enumerate(e.checks):
        at = f"entities[{i}].checks[{k}]"
        a, b = fields.get(cmp.column), fields.get(cmp.other)
        if a is None or b is None:
            missing = cmp.column if a is None else cmp.other
            problems.append((at, f"'{missing}' is not a field of {e.name}.", f"use one of {sorted(fields)}"))
        elif cmp.column == cmp.other:
            problems.append((at, "a column compared with itself.", "compare two different columns"))
        elif a.type != b.type or a.type not in ordered:
            problems.append((at, f"'{cmp.column}' ({a.type.value}) and '{cmp.other}' ({b.type.value}) cannot be "
                             "ordered against each other.", "compare two columns of one type among "
                             + ", ".join(t.value for t in ordered)))
    ranged = (FieldType.integer, FieldType.bigint, FieldType.numeric, FieldType.date, FieldType.timestamptz)
    for k, ex in enumerate(e.exclusions):
        at = f"entities[{i}].exclusions[{k}]"
        if not e.is_tenant:
            problems.append((at, "exclusions are per organisation.", "use a tenant-scoped entity"))
        start, end = fields.get(ex.range[0]), fields.get(ex.range[1])
        if start is None or end is None or start.type != end.type or start.type not in ranged:
            problems.append((f"{at}.range", f"{list(ex.range)} must be two fields of one type among "
                             + ", ".join(t.value for t in ranged) + ".", "name the start and end fields"))
        # Suggested keys are those the checks below and the server_set rule accept (red team 20: the list named a
        # range column and a server_set field, each refused in turn).
        keyable = [n for n, f in fields.items() if f.type not in (FieldType.jsonb, FieldType.enum)
                   and n not in ex.range and not f.server_set]
        for key in ex.keys:
            if key not in fields and key == e.owner_column:
                problems.append((f"{at}.keys", f"'{key}' is the author column of {e.name}, which the blueprint "
                                 "does not declare: exclusions key on declared fields.",
                                 "declare a user field (e.g. {name: member_id, type: reference, references: "
                                 "organization_members}) and give it on insert with assigned: member_id"))
            elif key not in fields:
                problems.append((f"{at}.keys", f"'{key}' is not a field of {e.name}.", choose(key, keyable)))
            elif fields[key].type in (FieldType.jsonb, FieldType.enum):
                problems.append((f"{at}.keys", f"'{key}' ({fields[key].type.value}) cannot be compared inside an "
                                 "exclusion (btree_gist has no operator class for it).", choose(key, keyable)))
        if len(set(ex.keys)) != len(ex.keys) or set(ex.keys) & set(ex.range):
            problems.append((f"{at}.keys", "a column repeats (or is also in the range).", "list each column once"))


def _check_storage(bp: Blueprint, problems: list) -> None:
    roles = [r.name for r in bp.tenancy.roles]
    seen: set[str] = set()
    for i, b in enumerate(bp.storage):
        if b.name in seen:
            problems.append((f"storage[{i}].name", f"bucket '{b.name}' is declared twice.", "give every bucket a distinct name"))
        seen.add(b.name)
        for cmd in COMMANDS:
            spec = b.access.spec(cmd)
            path = f"storage[{i}].access.{cmd}"
            if isinstance(spec, str) and spec not in roles:
                problems.append((path, f"'{spec}' is not a role of this tenancy.", choose(spec, roles)))
            for k, g in enumerate(spec if isinstance(spec, list) else []):
                at = f"{path}[{k}]"
                if g.who in ("linked", "signed_in") or g.assigned or g.where is not None or g.under or g.visible:
                    problems.append((at, "bucket grants name members (min_role, roles, capability), optionally own, "
                                     "or public for downloads.",
                                     "remove linked, signed_in, assigned, where, under and visible"))
                if g.public and cmd != "select":
                    problems.append((at, "public grants are read-only.", "use them under access.select only"))
                if g.min_role is not None and g.min_role not in roles:
                    problems.append((f"{at}.min_role", f"'{g.min_role}' is not a role of this tenancy.",
                                     choose(g.min_role, roles)))
                for r in g.roles or []:
                    if r not in roles:
                        problems.append((f"{at}.roles", f"'{r}' is not a role of this tenancy.", choose(r, roles)))
                if g.capability is not None and not bp.tenancy.holders(g.capability):
                    problems.append((f"{at}.capability", f"no role holds '{g.capability}'.",
                                     choose(g.capability, bp.tenancy.capability_names())))


def _check_privacy(bp: Blueprint, problems: list) -> None:
    tenant = {e.name for e in bp.entities if e.is_tenant}
    allowed = sorted(tenant) + list(AUDITABLE_CORE)
    if not bp.tenancy.team_organizations:
        allowed = [t for t in allowed if t != "invitations"]
    for k, t in enumerate(bp.privacy.audit_tables):
        if t not in allowed:
            problems.append((f"privacy.audit_tables[{k}]", f"'{t}' cannot be audited (audit rows belong to an organisation).",
                             choose(t, allowed)))
        elif (e := bp.entity(t)) is not None and e.scope is Scope.user:
            problems.append((f"privacy.audit_tables[{k}]", f"'{t}' rows are private to their author (scope: user) and go "
                             "with their account; audit copies would outlive both.",
                             f"remove '{t}' from audit_tables"))
    if len(set(bp.privacy.audit_tables)) != len(bp.privacy.audit_tables):
        problems.append(("privacy.audit_tables", "a table repeats.", "list each table once"))
    if len(set(bp.privacy.consent_flags)) != len(bp.privacy.consent_flags):
        problems.append(("privacy.consent_flags", "a flag repeats.", "list each flag once"))
    for k, flag in enumerate(bp.privacy.consent_flags):
        if flag in ("id", "full_name", "avatar_url", "time_zone", "created_at", "updated_at"):
            problems.append((f"privacy.consent_flags[{k}]", f"'{flag}' is already a column of profiles.",
                             "name consent flags consent_for_<purpose>"))


def _check_restore_names(bp: Blueprint, problems: list) -> None:
    """Two soft-deleted entities whose singular names meet (`boxes`, `boxs`) would share one restore_<singular>()
    function, the second replacing the first (red team 16: archived boxes rows could never be restored)."""
    from .meaning import restore_grants
    from .names import verb_name
    seen: dict[str, str] = {}
    for i, e in enumerate(bp.entities):
        if not (e.soft_delete and e.scope in (Scope.organization, Scope.user) and restore_grants(bp, e)):
            continue
        name = verb_name("restore", e.singular)
        if name in seen:
            problems.append((f"entities[{i}].name", f"its restore function would be {name}(), which already "
                             f"restores {seen[name]} rows (the two singular names are the same).",
                             "rename one of the two entities"))
        seen.setdefault(name, e.name)


def _check_events(bp: Blueprint, problems: list) -> None:
    # Compared as the events check and log-event compare them: `e_mail` is `email`; log-event refuses its own keys
    # too (`username`), so an event declaring one could never be logged.
    pii = {pii_form(k) for k in [*bp.pii_keys(), *EVENT_PII_KEYS]}
    entity_index = {e.name: i for i, e in enumerate(bp.entities)}
    names = [e.name for e in bp.entities]
    repeated = {n for n in names if names.count(n) > 1}  # already reported by _check_names
    custom = iter(range(len(bp.analytics.events)))
    seen: dict[str, str] = {}
    flagged: set[tuple[str, str]] = set()
    for ev in bp.events():
        if ev.entity in repeated:
            continue
        if ev.source is EventSource.core:
            where = "analytics"
        elif ev.source is EventSource.entity:
            where = f"entities[{entity_index[ev.entity]}]"
        else:
            where = f"analytics.events[{next(custom)}]"
        if ev.name in seen:
            problems.append((f"{where}.name" if ev.source is EventSource.custom else where,
                             f"event '{ev.name}' is already defined ({seen[ev.name]}).",
                             "rename the entity or set its events: false" if ev.source is EventSource.entity
                             else "rename the event or remove the duplicate"))
        seen.setdefault(ev.name, ev.source.value if ev.source is not EventSource.entity else f"by entity {ev.entity}")
        for j, key in enumerate(ev.properties):
            if pii_form(key) not in pii:
                continue
            field = next((f"entities[{k}].fields[{m}].pii" for k, x in enumerate(bp.entities)
                          for m, f in enumerate(x.fields) if f.pii and pii_form(f.name) == pii_form(key)), None)
            if ev.source is EventSource.entity and field is not None:
                # A pii field's name is refused in every event's properties: one that another entity's own events
                # carry (a pii reference named project_id, beside projects' events) is the field's problem, once.
                at = field
                if (at, ev.entity) not in flagged:
                    flagged.add((at, ev.entity))
                    problems.append((at, f"'{key}' is personal data here, so every event refuses a property of "
                                     f"that name, and the events of {ev.entity} carry one.",
                                     f"rename the field (e.g. about_{key}), or set events: false on {ev.entity}"))
                continue
            problems.append((f"{where}.properties[{j}]" if ev.source is EventSource.custom else where,
                             f"'{key}' is personal data or a secret: log-event refuses it in every event's properties.",
                             "reference the user by user_id instead of copying PII into events"))


def parse_blueprint(data: Any, source: str | None = None, root: str = "") -> Blueprint:
    """Validate raw data into a Blueprint; every problem names its field path and fix.

    `source` names a file (`blueprints/x.yaml: entities[0].name`), `root` the argument the data
    came in (`blueprint.entities[0].name`).
    """
    if isinstance(data, Blueprint):
        return data
    if not isinstance(data, dict):
        raise InvalidBlueprint([(root or "blueprint", f"expected an object; got {preview(data)}.",
                                 "pass an object with at least app.name and app.slug (see blueprint://schema)")],
                               source)
    try:
        return Blueprint.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc, root, Blueprint)
    except InvalidBlueprint as exc:  # the cross-field checks, raised as is through pydantic
        problems = [(join(root, path), msg, fix) for path, msg, fix in exc.problems]
    raise InvalidBlueprint([(path or root or "blueprint", msg, fix) for path, msg, fix in problems], source)
