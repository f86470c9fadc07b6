"""Rules over a markdown spec document: every template section present, the security checklist done."""

from __future__ import annotations

from ...model.schema import Location
from ..findings import Level
from ..registry import rule
from ..spec import SPEC_SECTIONS, SpecDoc, section_present


@rule("BP039", "spec_section_missing", Level.WARN, ("SPEC",), target="spec",
      summary="The spec lacks one of the nine sections of the template.",
      why="Each section is a decision someone must make before the SQL exists (tenancy, RLS, privacy...); "
          "a missing section is a decision nobody made.",
      bad="A spec without `## 7. Privacy & Personalization`.",
      fix="Add the section (blueprint://template has all nine), even if it says \"none\" and why.")
def spec_section_missing(r, doc: SpecDoc):
    for i, name in enumerate(SPEC_SECTIONS, start=1):
        if not section_present(doc, name):
            yield r.finding(f"The spec has no section \"{i}. {name}\".", name,
                            location=Location(file=doc.file, line=1, column=1))


@rule("BP040", "spec_checklist_unchecked", Level.INFO, ("SPEC", "SECURITY"), target="spec",
      summary="An unchecked item in the spec's security checklist.",
      why="An unchecked item is a promise not yet kept. Generated specs leave the two app-side items (secrets, "
          "service role only in edge functions) unchecked on purpose: only the app's code can keep them.",
      bad="- [ ] Service role used only in Edge Functions",
      fix="Do the work, then check the item ([x]); leave it unchecked until then.")
def spec_checklist_unchecked(r, doc: SpecDoc):
    for item in doc.checklist:
        if not item.checked:
            yield r.finding("Security checklist item is not checked.", item.text,
                            location=Location(file=doc.file, line=item.line, column=item.column))
