"""Analytics: sessions, the event taxonomy, feature flags and daily organisation metrics."""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path

import yaml
from pydantic import Field

from .base import Ident, Model, Text
from .limits import DESCRIPTION_CHARS, EVENT_PROPERTIES, EVENTS

_TAXONOMY_FILE = Path(__file__).with_name("taxonomy.yaml")


class EventCategory(StrEnum):
    auth = "auth"
    onboarding = "onboarding"
    setup = "setup"
    core_feature = "core_feature"
    engagement = "engagement"
    collaboration = "collaboration"
    navigation = "navigation"
    billing = "billing"


class EventSource(StrEnum):
    core = "core"  # the canonical taxonomy
    entity = "entity"  # derived from an entity (habit_created)
    custom = "custom"  # declared by the blueprint


class EventDef(Model):
    name: Ident
    category: EventCategory
    description: Text = Field("", max_length=DESCRIPTION_CHARS)
    properties: list[Ident] = Field(default_factory=list, max_length=EVENT_PROPERTIES,
                                    description="Expected keys of `properties` (no PII).")


class Event(EventDef):
    """An event of the resolved taxonomy, with where it came from."""

    source: EventSource = EventSource.custom
    entity: str | None = None


class Taxonomy(Model):
    categories: dict[EventCategory, str]
    events: list[EventDef]


@cache
def canonical_taxonomy() -> Taxonomy:
    """The core taxonomy shipped with the package."""
    return Taxonomy.model_validate(yaml.safe_load(_TAXONOMY_FILE.read_text(encoding="utf-8")))


class Analytics(Model):
    """Which analytics tables to generate and the blueprint's own events."""

    enabled: bool = Field(True, description="Generate the analytics schema at all.")
    sessions: bool = True
    feature_flags: bool = True
    daily_metrics: bool = Field(True, description="Per-organisation daily metrics (private materialized view).")
    derive_entity_events: bool = Field(True, description="Add <entity>_created/_updated/_deleted events.")
    events: list[EventDef] = Field(default_factory=list, max_length=EVENTS,
                                   description="App-specific events beyond the core taxonomy.")
