"""Markdown spec -> a small model (headings, security checklist) the spec rules read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The nine sections of the spec template (spec/templates/blank.md), by their leading words.
SPEC_SECTIONS = ("Tenancy Model", "Core Schema", "Domain Schema", "Analytics Schema", "RLS Policies",
                 "Edge Functions + Triggers", "Privacy & Personalization", "Migrations", "Security Checklist")
CHECKLIST = "Security Checklist"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM = re.compile(r"^(\s*)[-*+]\s+\[([ xX])\]\s+(.*\S)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    line: int


@dataclass(frozen=True)
class Item:
    checked: bool
    text: str
    line: int
    column: int


@dataclass
class SpecDoc:
    file: str
    headings: list[Heading] = field(default_factory=list)
    checklist: list[Item] = field(default_factory=list)  # items under the Security Checklist heading


def normalize(heading: str) -> str:
    """`## 3. Domain Schema (App-Specific)` -> "domain schema"."""
    text = re.sub(r"\([^)]*\)", "", heading)
    text = re.sub(r"^\s*\d+[.)]\s*", "", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def section_present(doc: SpecDoc, name: str) -> bool:
    want = normalize(name)
    return any(normalize(h.text).startswith(want) for h in doc.headings)


def parse_spec(text: str, file: str) -> SpecDoc:
    doc = SpecDoc(file=file)
    fenced, checklist_level = False, None
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = _HEADING.match(line)
        if m:
            heading = Heading(len(m.group(1)), m.group(2), number)
            doc.headings.append(heading)
            if checklist_level is not None and heading.level <= checklist_level:
                checklist_level = None
            if normalize(heading.text).startswith(normalize(CHECKLIST)):
                checklist_level = heading.level
            continue
        item = _ITEM.match(line)
        if item and checklist_level is not None:
            doc.checklist.append(Item(item.group(2) != " ", item.group(3), number, len(item.group(1)) + 1))
    return doc
