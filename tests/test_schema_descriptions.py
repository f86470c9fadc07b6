"""The blueprint JSON Schema (blueprint://schema) explains itself: a model writing a blueprint reads
a description on every property and the meaning of every enum value."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from blueprint_mcp.model import Blueprint, canonical_taxonomy

SCHEMA = Blueprint.model_json_schema()
DEFS = SCHEMA.get("$defs", {})


def target(node: dict) -> dict:
    return DEFS[node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node


def subschemas(node: dict) -> Iterator[tuple[str, dict]]:
    """The schemas directly inside `node` other than its properties, by JSON Schema keyword."""
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            yield key, node[key]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(node.get(key, [])):
            yield f"{key}[{i}]", sub


def properties(node: dict, path: str) -> Iterator[tuple[str, dict]]:
    """Every property of `node` and of the objects inside it, at any depth, with a readable path."""
    for name, prop in node.get("properties", {}).items():
        yield f"{path}.{name}", prop
        yield from properties(prop, f"{path}.{name}")
    for key, sub in subschemas(node):
        yield from properties(sub, f"{path}.{key}")


def all_properties() -> Iterator[tuple[str, dict]]:
    for owner, node in [("Blueprint", SCHEMA), *DEFS.items()]:
        yield from properties(node, owner)


def inline_enums(node: dict) -> Iterator[list]:
    """The values of each enum or const written in `node` itself (a `$ref`'d enum is checked as a def)."""
    if "enum" in node:
        yield node["enum"]
    if "const" in node:
        yield [node["const"]]
    for _, sub in subschemas(node):
        yield from inline_enums(sub)


def enums() -> Iterator[tuple[str, list, str]]:
    """(where, values, the description that must explain them) for every enum and const of the schema."""
    for name, node in DEFS.items():
        if "enum" in node:
            yield name, node["enum"], node.get("description", "")
    for where, prop in all_properties():
        for values in inline_enums(prop):
            yield where, values, prop.get("description", "")


def unexplained(values: list, description: str) -> list:
    """Values not written as `value: meaning` in the description."""
    return [v for v in values if not re.search(rf"(?<![\w-]){re.escape(str(v))}:", description)]


def test_the_walk_sees_the_whole_schema():
    props = dict(all_properties())
    assert {"Blueprint.app", "Field.on_delete", "Comparison.op", "Tenancy.tenant_key"} <= set(props)
    assert {"FieldType", "Scope", "EventCategory", "DefaultExpression", "Field.on_delete",
            "Comparison.op", "Tenancy.organization_deleted_by", "Blueprint.version"} <= {w for w, _, _ in enums()}


def test_every_property_has_a_description():
    missing = [where for where, prop in all_properties()
               if not prop.get("description", "").strip() and not target(prop).get("description", "").strip()]
    assert missing == []


@pytest.mark.parametrize("where, values, description", [pytest.param(*e, id=e[0]) for e in enums()])
def test_every_enum_value_is_explained(where, values, description):
    assert unexplained(values, description) == []


def test_event_categories_mean_what_the_taxonomy_says():
    text = DEFS["EventCategory"]["description"].lower()
    assert [k.value for k, meaning in canonical_taxonomy().categories.items()
            if f"{k.value}: {meaning.rstrip('.').lower()}" not in text] == []
