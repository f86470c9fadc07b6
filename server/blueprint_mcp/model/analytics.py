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
    """What an event is about.
    auth: sign-up, sign-in and account lifecycle; onboarding: first-run steps until the user reaches value;
    setup: configuration of the workspace or organisation; core_feature: the product's main actions;
    engagement: streaks, milestones and return visits; collaboration: invitations, membership and sharing;
    navigation: screens and pages viewed; billing: plans, trials and payments."""

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
    """An analytics event: what happened, in which category, with which property keys."""

    name: Ident = Field(description="Object then past-tense verb, snake case (e.g. habit_completed).")
    category: EventCategory
    description: Text = Field("", max_length=DESCRIPTION_CHARS,
                              description="What happened, one sentence; shown in the spec's event taxonomy.")
    properties: list[Ident] = Field(default_factory=list, max_length=EVENT_PROPERTIES,
                                    description="Expected keys of `properties` (no PII).")
    server_only: bool = Field(False, description=(
        "A fact only the backend knows (a payment, a signup, an order placed): written by the service role "
        "(a webhook, an RPC, an edge function of yours), never by clients. log-event refuses it, so no member "
        "forges what funnels and revenue metrics count."))


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
    sessions: bool = Field(True, description="A sessions table (one row per client session, service role "
                                             "writes, users read their own) that events.session_id references.")
    feature_flags: bool = Field(True, description=(
        "feature_flags (rollout flags every signed-in user reads) and feature_flag_assignments (a variant per "
        "organisation or per user); the service role writes both."))
    daily_metrics: bool = Field(True, description="Per-organisation daily metrics (private materialized view).")
    derive_entity_events: bool = Field(True, description="Add <entity>_created/_updated/_deleted events.")
    events: list[EventDef] = Field(default_factory=list, max_length=EVENTS,
                                   description="App-specific events beyond the core taxonomy.")
