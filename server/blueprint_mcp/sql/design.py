"""Blueprint -> physical schema: the one place that orders every builder."""

from __future__ import annotations

from ..model import Blueprint
from ..model.meaning import remembered_grants
from ..model.schema import Extension, Schema, Table
from .grants import apply_grants
from .ident import object_name
from .metrics import metrics_objects, metrics_schedule
from .access import access_functions
from .rls import apply_rls, helper_function
from .storage import storage_buckets, storage_policies
from .tables import all_tables, entity_enums, role_enum
from .lifecycle import api_functions, auth_triggers
from .triggers import apply_triggers


def distinct_relation_names(tables: list[Table], views: list[str]) -> None:
    """Indexes, and the keys that create one, share a namespace with the tables and views of their
    schema: rename the later of two that would clash (a + b_c and a_b + c, or an entity named like
    another table's index)."""
    taken = {t.name for t in tables} | set(views)
    for t in tables:
        for obj in [k for k in t.constraints if k.kind in ("primary key", "unique", "exclude")] + t.indexes:
            if obj.name in taken:
                obj.name = object_name(t.name, *obj.columns, suffix=obj.name.rsplit("_", 1)[-1], taken=taken)
            taken.add(obj.name)


def build_schema(bp: Blueprint) -> Schema:
    """The whole physical design of a blueprint, deterministic for the same input."""
    with remembered_grants():
        return _build_schema(bp)


def _build_schema(bp: Blueprint) -> Schema:
    tables = all_tables(bp)
    apply_rls(bp, tables)
    # A private side row belongs to one row for good: its reference is set on insert only.
    apply_grants(tables, {e.name: e.owner_column for e in bp.entities if e.owner_column},
                 {e.name: {e.fields[0].name} for e in bp.entities if e.private_of},
                 {e.name: {f.name for f in e.fields if f.server_set} for e in bp.entities})
    functions = [helper_function(bp)] + access_functions(bp) + apply_triggers(bp, tables) + api_functions(bp)
    views = []
    if bp.analytics.enabled and bp.analytics.daily_metrics:
        views, metric_functions = metrics_objects(bp)
        functions += metric_functions
    distinct_relation_names(tables, [v.name for v in views if v.schema_name == "public"])
    needs_gist = any(k.kind == "exclude" for t in tables for k in t.constraints)
    return Schema(
        # btree_gist: equality on uuid/text keys inside a gist exclusion constraint.
        extensions=[Extension(name="btree_gist", schema_name="extensions")] if needs_gist else [],
        schemas=["private"],
        buckets=storage_buckets(bp),
        storage_policies=storage_policies(bp),
        enums=[role_enum(bp)] + entity_enums(bp),
        tables=tables,
        functions=functions,
        views=views,
        auth_triggers=auth_triggers(bp),
        drop_graphql=not bp.api.graphql,
        cron_jobs=[metrics_schedule()] if views else [],
    )
