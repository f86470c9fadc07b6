"""`supabase/functions/`: the blueprint's edge functions (Deno, supabase-js v2 typed with the generated types)."""

from __future__ import annotations

import json

from ..model import Blueprint, edge_functions
from ..model import edge
from ..model.blueprint import ROLE_TYPE
from ..model.limits import EVENT_PROPERTIES
from ..model.privacy import EVENT_PII_WORDS
from ..sql.tables import CLIENT_TYPES
from .types import _env

SHARED = "supabase/functions/_shared/http.ts"
# Who may act in an organisation's analytics: shared by log-event and track-session.
ORGANISATION = "supabase/functions/_shared/organisation.ts"
# Besides index.ts, the files a function's folder holds.
MODULES = {"log-event": ("validate.ts",)}


def _rows(items: list[str]) -> str:
    """A TypeScript array, one item (already TypeScript) a line, as `deno fmt` lays it out."""
    return "[\n" + "".join(f"  {i},\n" for i in items) + "]"


def _context(bp: Blueprint) -> dict:
    events = [f"[{json.dumps(e.name)}, {{ category: {json.dumps(e.category.value)}, "
              f"properties: {json.dumps(list(e.properties))}, server: {json.dumps(e.server_only)} }}]"
              for e in bp.events()]
    body = ["organization_id", "event_name", "properties"] + (["session_id"] if bp.analytics.sessions else [])
    links = edge.event_links(bp)
    return {
        "role_type": ROLE_TYPE, "default_role": bp.tenancy.default_member_role.name,
        "sessions": bp.analytics.sessions, "events": _rows(events),
        "pii_keys": _rows([json.dumps(k) for k in edge.event_pii_keys(bp)]),
        "pii_words": _rows([json.dumps(w) for w in EVENT_PII_WORDS]),
        "max_bytes": edge.EVENT_PROPERTIES_BYTES,
        "max_keys": EVENT_PROPERTIES, "max_depth": edge.EVENT_PROPERTIES_DEPTH, "body_fields": json.dumps(body),
        "links": links, "link_names": " or ".join(edge.link_columns(links)),
        "client_types": list(CLIENT_TYPES), "max_user_agent": edge.SESSION_USER_AGENT,
    }


def function_files(bp: Blueprint) -> dict[str, str]:
    """Relative path -> text of every edge function file: one folder per function, and their shared module."""
    names = edge_functions(bp)
    if not names:
        return {}
    ctx = _context(bp)
    env = _env()
    out = {SHARED: env.get_template("functions/_shared/http.ts.j2").render(**ctx)}
    if bp.analytics.enabled:
        out[ORGANISATION] = env.get_template("functions/_shared/organisation.ts.j2").render(**ctx)
    for name in names:
        for module in ("index.ts", *MODULES.get(name, ())):
            out[f"supabase/functions/{name}/{module}"] = env.get_template(f"functions/{name}/{module}.j2").render(**ctx)
    return out
