"""supabase/types/database.types.ts and supabase/config.toml: generated without a database; the types type-check
with `deno check` (Deno from the npm registry) and say what a client may and must send."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from blueprint_mcp.project import config_toml, database_types
from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.templates import load_blueprint_file, load_template

from jstools import deno

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted((ROOT / "blueprints").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))

# One worker installs the npm tools (Deno, Mermaid) once (`--dist loadgroup`), not one per worker.
pytestmark = pytest.mark.xdist_group("js")

USAGE = """\
import type { Database, Tables, TablesInsert, Enums } from "./blueprints/habit-tracker.types.ts"
import { Constants } from "./blueprints/habit-tracker.types.ts"

const habit: TablesInsert<"habits"> = { organization_id: "o", name: "Read" }
// @ts-expect-error name is NOT NULL without a default: an insert must send it
const nameless: TablesInsert<"habits"> = { organization_id: "o" }
const row: Tables<"habits"> = {} as Tables<"habits">
const description: string | null = row.description
const role: Enums<"member_role"> = Constants.public.Enums.member_role[0]
// @ts-expect-error not a role
const wrong: Enums<"member_role"> = "superuser"
type Invite = Database["public"]["Functions"]["create_invitation"]
const args: Invite["Args"] = { target_organization_id: "o", invitee_email: "a@example.com", invitee_role: "member" }
const token: Invite["Returns"] = "secret"
export { args, description, habit, nameless, role, token, wrong }
"""


def test_types_and_config_shapes():
    bp = load_template("habit-tracker")
    text = database_types(build_schema(bp))
    assert "export type Database = {\n  public: {\n    Tables: {\n      profiles: {\n        Row: {" in text
    assert "    Views: {\n      daily_org_metrics: {\n        Row: {\n          organization_id: string | null\n" \
           "          day: string | null\n" in text
    assert '      member_role: "viewer" | "member" | "admin" | "owner"\n' in text
    config = tomllib.loads(config_toml(bp))
    assert config["api"]["schemas"] == ["public"] and config["db"]["seed"]["sql_paths"] == ["./seed.sql"]
    assert config["auth"]["email"]["enable_confirmations"] is True


def test_every_types_file_type_checks_with_deno(js_tools, tmp_path):
    files = []
    for path in APPS:
        f = tmp_path / path.parent.name / f"{path.stem}.types.ts"  # a template and an example may share a name
        f.parent.mkdir(exist_ok=True)
        f.write_text(database_types(build_schema(load_blueprint_file(path))))
        files.append(str(f.relative_to(tmp_path)))
    (tmp_path / "usage.ts").write_text(USAGE)
    out = deno(js_tools, "check", "--quiet", *files, "usage.ts", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
