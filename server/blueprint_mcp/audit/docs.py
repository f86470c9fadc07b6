"""docs/rules.md, generated from the registry: `python -m blueprint_mcp.audit.docs > docs/rules.md`."""

from __future__ import annotations

from . import RULES
from .registry import Rule

_TARGETS = {"schema": "SQL", "spec": "spec (markdown)", "suppressions": "SQL comments"}
_FENCE = {"schema": "sql", "spec": "markdown", "suppressions": "sql"}

HEADER = """\
# Audit rules

Generated from the rule registry (`blueprint_mcp.audit.docs`); do not edit by hand. Regenerate with
`python -m blueprint_mcp.audit.docs > docs/rules.md` (a test fails when this file is stale).

`blueprint-mcp audit` and the `audit_spec` tool read SQL (a snippet, a migration, a folder of migrations
applied in file-name order), blueprints (through the SQL they render) and markdown specs. SQL is parsed
with PostgreSQL's own grammar into the same schema model the generator builds; every rule below reads
that model. Ids are permanent. Where a rule is one of Supabase's database-advisor lints it carries
Supabase's name and level, so findings match what the dashboard reports after deployment.

Levels: ERROR (a hole or a broken migration), WARN (a risk or a measured slowdown), INFO (worth knowing).
`--fail-on error|warn` picks the level that makes the CLI exit 1.

Silence a finding for one statement with a comment in or just before it, naming the rule and why:
`-- blueprint: ignore BP008 rows are written by the service role only`. A suppression without a reason,
or naming an unknown rule, silences nothing and is reported (BP038).

"Exposed" means in a schema PostgREST serves (`public`, `graphql_public`, or what
`alter database ... set pgrst.db_schemas` says; for a project folder, `[api] schemas` of its
`supabase/config.toml`) and reachable by anon or authenticated (Supabase's legacy
default privileges grant every new table and function in public to them until the SQL revokes it; a table
in another schema is granted nothing unless the SQL grants it; `alter default privileges` is followed).

The platform's lints follow Supabase's linter (splinter): identity, level, categories, summary and remediation
come from one definition (`blueprint_mcp.audit.platform`) that the catalogue queries of `verify` share; objects
in the platform's own schemas (auth, storage, realtime, pgmq, extensions, vault, graphql...) are never reported;
policy lints read only tables with RLS enabled. The GraphQL exposure lints need pg_graphql: created by the SQL,
or assumed with `audit --assume-platform` (`assume_platform` on `audit_spec`) until the SQL drops it.
"""


def _row(r: Rule) -> str:
    return (f"| [{r.id}](#{r.id.lower()}-{r.name}) | `{r.name}` | {r.level.value} | "
            f"{', '.join(r.categories)} | {_TARGETS[r.target]} | {r.platform or ''} |")


def _section(r: Rule) -> str:
    platform = f" · **Supabase lint** {r.platform}" if r.platform else ""
    return (f"## {r.id} {r.name}\n\n"
            f"**Level** {r.level.value} · **Categories** {', '.join(r.categories)} · **Reads** {_TARGETS[r.target]}"
            f"{platform}\n\n"
            f"{r.summary}\n\n"
            f"**Why it is bad.** {r.why}\n\n"
            f"**Example**\n\n```{_FENCE[r.target]}\n{r.bad}\n```\n\n"
            f"**Use instead.** {r.fix}\n")


def rules_markdown() -> str:
    rules = [RULES[k] for k in sorted(RULES)]
    table = ["| id | name | level | categories | reads | Supabase lint |", "|---|---|---|---|---|---|"]
    table += [_row(r) for r in rules]
    return HEADER + "\n" + "\n".join(table) + "\n\n" + "\n".join(_section(r) for r in rules)


if __name__ == "__main__":
    print(rules_markdown(), end="")
