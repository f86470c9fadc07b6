"""SQL histories for the audit's tests."""

from __future__ import annotations

from blueprint_mcp.audit.parser import WORKER_MIN_CHARS


def long_history() -> tuple[str, int]:
    """(SQL just over the size that starts the parse worker, how many tables it creates): each table with RLS
    and a policy calling auth.uid() per row, so the audit has findings to report on every one."""
    statements, n = [], 0
    while sum(map(len, statements)) < WORKER_MIN_CHARS + 1000:
        statements += [f"create table public.t{n} (id int primary key, organization_id uuid);",
                       f"alter table public.t{n} enable row level security;",
                       f"create policy p{n} on public.t{n} using (organization_id = auth.uid());"]
        n += 1
    return "\n".join(statements) + "\n", n
