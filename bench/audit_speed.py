"""Audit generated folders of migrations (20,000 and 100,000 statements) and print how long each took.

    python bench/audit_speed.py [--statements 20000 100000] [--files 50] [--runs 3]

Half the tables follow the generator's pattern, half the article's (so rules have work to report).
Targets: 20,000 statements under 1 s, 100,000 under 5 s, cost growing linearly. Not run by the test suite.
Histories this long are parsed by a second process ahead of the reader (`audit.parser`): the times are
wall-clock, and the CPU of both processes is printed.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from blueprint_mcp.tools import audit_findings  # noqa: E402

HEADER = [
    "create schema if not exists private;",
    "create table public.organizations (id uuid primary key default gen_random_uuid(), name text not null);",
    """create table public.organization_members (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member',
  unique (organization_id, user_id)
);""",
    "alter table public.organization_members enable row level security;",
    """create function private.org_ids() returns setof uuid language sql stable security definer set search_path = ''
as $$ select m.organization_id from public.organization_members m where m.user_id = (select auth.uid()) $$;""",
    """create function private.set_updated_at() returns trigger language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end $$;""",
]


def good_table(n: int) -> list[str]:
    t = f"public.items_{n}"
    fast = "organization_id = any (array(select private.org_ids()))"
    return [
        f"""create table {t} (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  created_by uuid not null default auth.uid() references auth.users (id),
  name text not null check (char_length(name) <= 200),
  updated_at timestamptz not null default now()
);""",
        f"create index items_{n}_organization_id_idx on {t} (organization_id);",
        f"create index items_{n}_created_by_idx on {t} (created_by);",
        f"alter table {t} enable row level security;",
        f"revoke all on table {t} from anon, authenticated;",
        f"grant select, insert, update, delete on table {t} to authenticated;",
        f"create policy items_{n}_select on {t} for select to authenticated using ({fast});",
        f"create policy items_{n}_insert on {t} for insert to authenticated with check ({fast});",
        f"create policy items_{n}_update on {t} for update to authenticated using ({fast}) with check ({fast});",
        f"create policy items_{n}_delete on {t} for delete to authenticated using ({fast});",
        f"comment on table {t} is 'Generated item table {n}.';",
        f"create trigger items_{n}_updated_at before update on {t} for each row "
        "execute function private.set_updated_at();",
    ]


def article_table(n: int) -> list[str]:
    t = f"notes_{n}"
    slow = ("organization_id in (select organization_id from organization_members "
            "where user_id = auth.uid())")
    return [
        f"""create table {t} (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid references organizations (id),
  body text,
  updated_at timestamptz default now()
);""",
        f"create index idx_{t}_org on {t} (organization_id);",
        f"alter table {t} enable row level security;",
        f'create policy "see {n}" on {t} for select using ({slow});',
        f'create policy "add {n}" on {t} for insert with check ({slow});',
        f'create policy "edit {n}" on {t} for update using ({slow});',
        f'create policy "drop {n}" on {t} for delete using ({slow});',
        f"comment on table {t} is 'Article-style table {n}.';",
        f"comment on column {t}.body is 'Free text.';",
        f"grant select on {t} to authenticated;",
        f"insert into {t} (body) values ('seed');",
        "do $$ begin perform 1; end $$;",
    ]


def statements(total: int) -> list[str]:
    out, n = list(HEADER), 0
    while len(out) < total:
        out += good_table(n) if n % 2 == 0 else article_table(n)
        n += 1
    return out[:total]


TARGETS = {20_000: 1.0, 100_000: 5.0}  # seconds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_audit(total: int, files: int) -> tuple[int, int, float, float, float]:
    """(bytes, findings, wall seconds, CPU seconds here, CPU seconds of the parse worker) for one folder of
    `total` statements in `files` files."""
    stmts = statements(total)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "supabase" / "migrations"
        folder.mkdir(parents=True)
        per_file = -(-len(stmts) // files)
        for i in range(files):
            chunk = stmts[i * per_file:(i + 1) * per_file]
            if chunk:
                (folder / f"2025010100{i:04d}_part.sql").write_text("\n\n".join(chunk) + "\n", encoding="utf-8")
        size = sum(p.stat().st_size for p in folder.glob("*.sql"))
        start, cpu, worker = time.perf_counter(), time.process_time(), _children_cpu()
        found = audit_findings(paths=[Path(tmp)])
        return (size, len(found), time.perf_counter() - start, time.process_time() - cpu,
                _children_cpu() - worker)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, nargs="+", default=sorted(TARGETS))
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="audits per size; the median run is printed")
    args = parser.parse_args()
    rates = []
    for total in args.statements:
        # The machines are shared: one audit can land on a slow moment. The run with the median wall time.
        runs = sorted((time_audit(total, args.files) for _ in range(args.runs)), key=lambda run: run[2])
        size, found, elapsed, cpu, worker = runs[len(runs) // 2]
        target = TARGETS.get(total)
        verdict = "" if target is None else f" ({'under' if elapsed < target else 'OVER'} the {target:g} s target)"
        rates.append(elapsed / total * 1e6)
        spread = f"; runs {', '.join(f'{run[2]:.2f}' for run in runs)} s" if len(runs) > 1 else ""
        print(f"{total:,} statements in {args.files} files ({size / 1e6:.1f} MB): {found:,} findings "
              f"in {elapsed:.2f} s ({cpu:.2f} s CPU, and {worker:.2f} s in the parse worker), {rates[-1]:.0f} us per "
              f"statement{verdict}{spread}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
