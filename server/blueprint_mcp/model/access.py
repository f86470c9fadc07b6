"""Grants: who may run a command on an entity's rows, and which rows.

A command's grants combine by OR. A grant names who (exactly one of `min_role`, `roles`,
`capability`, `linked`, `signed_in`, `public`) and may narrow the rows (`own`, `assigned`,
`where`, `under`, `visible`; these combine by AND). The shorthand forms (scope, a minimum role per command,
`own_rows_only`) are defined here in terms of grants, once: the SQL generator and the verifier's
oracle each read these grants their own way. docs/access.md is the table of meanings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from .base import Ident, Model

Command = Literal["select", "insert", "update", "delete"]
COMMANDS: tuple[Command, ...] = ("select", "insert", "update", "delete")
Scalar = str | int | bool


class Match(Model):
    """A row condition on one column: equal to a value, or to one of several (never free SQL)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: Ident = Field(description="A boolean, enum, text or integer column of the entity (e.g. status).")
    equals: Scalar | None = Field(None, description="The value the column must hold (e.g. true, 'published').")
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1, max_length=50,
                                     description="Values the column may hold (instead of equals).")

    @model_validator(mode="after")
    def _one_form(self) -> "Match":
        if (self.equals is None) == (self.in_ is None):
            raise ValueError(f"the condition on '{self.column}' needs exactly one of equals (a value) or in (a list)")
        return self

    @property
    def values(self) -> list[Scalar]:
        return [self.equals] if self.equals is not None else list(self.in_ or [])


WHO_FIELDS = ("min_role", "roles", "capability", "linked", "signed_in", "public")


class Grant(Model):
    """One way to be allowed a command: who, and optionally which rows. Grants of a command are OR-ed."""

    min_role: Ident | None = Field(
        None, description="Members holding this role or a more privileged one (roles are listed most privileged first).")
    roles: list[Ident] | None = Field(
        None, min_length=1, max_length=20, description="Members holding exactly one of these roles (no ranking).")
    capability: Ident | None = Field(
        None, description="Members whose role holds this capability (built-in or declared in tenancy.capabilities).")
    linked: list[Ident] | None = Field(
        None, min_length=1, max_length=4,
        description="Portal users, members or not: a chain of reference columns ending at a user column. "
                    "[user_id]: the row's user_id is the caller. [patient_id, user_id]: the patient the row "
                    "references has user_id = the caller.")
    signed_in: bool = Field(False, description="Every signed-in user (select only), optionally narrowed by where.")
    public: bool = Field(False, description="Everyone, signed in or not (anon too; select only), usually with where.")
    own: bool = Field(False, description="Only rows whose owner column (e.g. created_by) is the caller.")
    assigned: Ident | None = Field(
        None, description="Only rows whose user column (a member reference such as dentist_id) is the caller.")
    where: Match | None = Field(None, description="Only rows whose column matches (e.g. status = 'published').")
    under: Ident | None = Field(
        None, description="Only rows under a parent row the caller may update, named by this reference field "
                          "(entry_id): the revisions, comments or attachments of what the caller may edit.")
    visible: Ident | None = Field(
        None, description="select only: only rows whose parent row, named by this reference field (article_id), "
                          "the caller may read too: the comments of a published article, not of a retracted one.")

    @model_validator(mode="after")
    def _one_who(self) -> "Grant":
        given = [f for f in WHO_FIELDS if getattr(self, f) not in (None, False)]
        if len(given) != 1:
            raise ValueError(f"a grant names who with exactly one of {', '.join(WHO_FIELDS)}; "
                             + (f"got {', '.join(given)}" if given else "got none"))
        if (self.public or self.signed_in) and (self.own or self.assigned or self.under):
            raise ValueError("public and signed_in grants cannot be narrowed by own, assigned or under "
                             "(a reader who is not a member has no rows of their own, nor edits any); drop "
                             f"{', '.join(f for f in ('own', 'assigned', 'under') if getattr(self, f))}: on an "
                             "entity, where narrows such a grant to matching rows; on a bucket, {public: true} "
                             "serves every file and takes nothing else")
        return self

    @property
    def who(self) -> str:
        # Identity tests: `in (None, False)` compares with ==, which costs a model's __eq__ on every field.
        return next(f for f in WHO_FIELDS if (v := getattr(self, f)) is not None and v is not False)

    @property
    def is_member_grant(self) -> bool:
        return self.who in ("min_role", "roles", "capability")

    def narrowed(self, **changes: object) -> "Grant":
        return self.model_copy(update=changes)


GrantSpec = Ident | list[Grant] | None


class CapabilityDef(Model):
    """An app-defined capability (e.g. view_clinical_notes); roles list it in their capabilities."""

    name: Ident = Field(description="Capability name, named by roles and grants (e.g. view_clinical_notes).")
    description: str = Field("", max_length=500, description="What holding it allows; for readers of the blueprint.")
