"""The generated edge functions: the same set in the spec's table, config.toml and supabase/functions/; every
function type-checks with `deno check` against the generated types and supabase-js from the npm registry, and
log-event's validation passes `deno test` (tests/deno/)."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

from blueprint_mcp.cli import main
from blueprint_mcp.files import MANIFEST
from blueprint_mcp.model import Blueprint, edge_functions, parse_blueprint
from blueprint_mcp.model.edge import event_links, event_pii_keys
from blueprint_mcp.model.meaning import command_grants
from blueprint_mcp.templates import load_blueprint_file
from blueprint_mcp.tools import migration_files

from jstools import deno

# One worker installs the npm tools (Deno, Mermaid) once (`--dist loadgroup`), not one per worker.
pytestmark = pytest.mark.xdist_group("js")

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted((ROOT / "blueprints").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))
VALIDATE_TEST = ROOT / "tests" / "deno" / "log_event_validate_test.ts"
ALL = ("invite-member", "accept-invitation", "change-member-role", "log-event", "track-session")


def _variant(bp: Blueprint, teams: bool = True, analytics: bool = True, sessions: bool = True) -> Blueprint:
    out = bp.model_copy(deep=True)
    out.tenancy.team_organizations, out.analytics.enabled, out.analytics.sessions = teams, analytics, sessions
    return out


def _blueprints() -> dict[str, Blueprint]:
    """Every template and example, and habit-tracker without teams, analytics or sessions."""
    out = {path.stem: load_blueprint_file(path) for path in APPS}
    habits = out["habit-tracker"]
    out |= {"habits-no-teams": _variant(habits, teams=False), "habits-no-analytics": _variant(habits, analytics=False),
            "habits-no-sessions": _variant(habits, sessions=False),
            "habits-neither": _variant(habits, teams=False, analytics=False)}
    return out


BLUEPRINTS = _blueprints()


def _spec_table(spec: str) -> list[str]:
    """The functions named in the spec's edge-function table (section 6)."""
    section = spec[spec.index("## 6. "):spec.index("## 7. ")]
    if "| edge function |" not in section:
        return []
    table = section.split("| edge function | who calls it | what it does |\n|---|---|---|\n", 1)[1].split("\n\n")[0]
    return re.findall(r"^\| `([a-z-]+)` \|", table, re.M)


def _written(files: dict[str, str]) -> list[str]:
    return [rel.split("/")[2] for rel in files if re.fullmatch(r"supabase/functions/[a-z-]+/index\.ts", rel)]


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_spec_config_and_files_name_the_same_functions(name):
    bp = BLUEPRINTS[name]
    files = migration_files(bp)
    analytics = {"log-event": bp.analytics.enabled, "track-session": bp.analytics.enabled and bp.analytics.sessions}
    expected = [f for f in ALL if analytics.get(f, bp.tenancy.team_organizations)]
    config = tomllib.loads(files["supabase/config.toml"]).get("functions", {})
    assert list(edge_functions(bp)) == expected
    assert _written(files) == expected
    assert list(config) == expected
    assert _spec_table(files[f"docs/engineering/SUPABASE-{bp.app.slug}.md"]) == expected
    for fn, section in config.items():
        assert section == {"enabled": True, "verify_jwt": True, "entrypoint": f"./functions/{fn}/index.ts"}
    shared = "supabase/functions/_shared/http.ts"
    assert (shared in files) == bool(expected)


def test_a_blueprint_without_teams_or_analytics_says_so_and_writes_no_function():
    files = migration_files(BLUEPRINTS["habits-neither"])
    assert not [rel for rel in files if rel.startswith("supabase/functions/")]
    assert "This blueprint has no edge functions (no team organisations, no analytics)." in files[
        "docs/engineering/SUPABASE-habit-tracker.md"]


@pytest.mark.parametrize("name", [n for n, bp in BLUEPRINTS.items() if bp.analytics.enabled])
def test_log_event_embeds_the_blueprints_taxonomy_and_pii_keys(name):
    bp = BLUEPRINTS[name]
    text = migration_files(bp)["supabase/functions/log-event/validate.ts"]
    events = re.findall(r'^  \["([a-z0-9_]+)", \{ category: "([a-z_]+)", properties: (\[[^\]]*\]), '
                        r'server: (true|false) \}\],$', text, re.M)
    assert [(n, c, json.loads(p), json.loads(s)) for n, c, p, s in events] == [
        (e.name, e.category.value, e.properties, e.server_only) for e in bp.events()]
    pii = text.split("export const PII_KEYS: ReadonlySet<string> = new Set<string>([\n", 1)[1].split("])", 1)[0]
    assert [json.loads(line.strip().rstrip(",")) for line in pii.splitlines()] == event_pii_keys(bp)
    assert set(bp.pii_keys()) | set(bp.privacy.pii_keys) <= set(event_pii_keys(bp))
    assert ('"session_id"' in text.split("export const BODY_FIELDS", 1)[1].split("\n")[0]) is bp.analytics.sessions


def test_render_writes_the_functions_and_records_them(tmp_path):
    out = tmp_path / "app"
    assert main(["render", "b2b-saas", "--out", str(out), "--timestamp", "20250101000000"]) == 0
    functions = sorted(p.relative_to(out).as_posix() for p in (out / "supabase" / "functions").rglob("*.ts"))
    assert functions == ["supabase/functions/_shared/http.ts", "supabase/functions/_shared/organisation.ts",
                         "supabase/functions/accept-invitation/index.ts",
                         "supabase/functions/change-member-role/index.ts", "supabase/functions/invite-member/index.ts",
                         "supabase/functions/log-event/index.ts", "supabase/functions/log-event/validate.ts",
                         "supabase/functions/track-session/index.ts"]
    recorded = json.loads((out / MANIFEST).read_text())["files"]
    assert set(functions) <= set(recorded)


def _project(root: Path, bp: Blueprint) -> None:
    """The files of a render the functions import: the functions and the types."""
    for rel, text in migration_files(bp).items():
        if rel.startswith("supabase/functions/") or rel == "supabase/types/database.types.ts":
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)


def _ts_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.ts"))


def test_every_function_type_checks_and_lints_with_deno(deno_npm, tmp_path):
    projects = BLUEPRINTS | LOGGING  # the fixtures too: their links write lookups no template has (visible)
    for name, bp in projects.items():
        _project(tmp_path / name, bp)
    files = _ts_files(tmp_path)
    functions = sum(len(edge_functions(bp)) for bp in projects.values())
    assert len([f for f in files if f.endswith("/index.ts")]) == functions
    # One invocation for every project: supabase-js comes from the session's Deno cache.
    checked = deno(deno_npm, "check", "--quiet", *files, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr[-4000:]
    linted = deno(deno_npm, "lint", "--quiet", *[f for f in files if "/functions/" in f], cwd=tmp_path)
    assert linted.returncode == 0, linted.stdout[-4000:] + linted.stderr[-2000:]


def test_log_event_validation_passes_deno_test_for_every_blueprint(deno_npm, tmp_path):
    tests = []
    for name, bp in BLUEPRINTS.items():
        if not bp.analytics.enabled:
            continue
        _project(tmp_path / name, bp)
        folder = tmp_path / name / "supabase" / "functions" / "log-event"
        shutil.copy(VALIDATE_TEST, folder / "validate_test.ts")
        tests.append((folder / "validate_test.ts").relative_to(tmp_path).as_posix())
    ran = deno(deno_npm, "test", "--quiet", *tests, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    assert f"ok | {13 * len(tests)} passed | 0 failed" in ran.stdout


def test_deno_catches_a_wrong_rpc_call_and_a_validator_letting_pii_through(deno_npm, tmp_path):
    _project(tmp_path, BLUEPRINTS["b2b-saas"])
    functions = tmp_path / "supabase" / "functions"
    invite = functions / "invite-member" / "index.ts"
    invite.write_text(invite.read_text().replace("invitee_role: role", "invitee_role: 42"))
    checked = deno(deno_npm, "check", "--quiet", invite.relative_to(tmp_path).as_posix(), cwd=tmp_path)
    assert checked.returncode != 0 and "TS2322" in checked.stderr, checked.stderr[-2000:]
    validate = functions / "log-event" / "validate.ts"
    validate.write_text(validate.read_text().replace("if (PII_FORMS.has(form(key)))", "if (false)"))
    shutil.copy(VALIDATE_TEST, validate.with_name("validate_test.ts"))
    ran = deno(deno_npm, "test", "--quiet", "supabase/functions/log-event/validate_test.ts", cwd=tmp_path)
    assert ran.returncode != 0
    assert "personal-data keys are refused, at any depth => " in ran.stdout, ran.stdout[-3000:]


def test_functions_answer_cors_method_and_missing_token_themselves_and_hide_failures(deno_npm, tmp_path):
    """Each function served by Deno.serve, as the edge runtime does; Auth at a URL fetch refuses (port 9), so
    nothing here reaches a database."""
    bp = BLUEPRINTS["b2b-saas"]
    _project(tmp_path, bp)
    shutil.copy(ROOT / "tests" / "deno" / "serve_harness.ts", tmp_path / "serve_harness.ts")
    names = list(edge_functions(bp))
    ran = deno(deno_npm, "run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", "--allow-read", "serve_harness.ts",
               *names, cwd=tmp_path, env={"SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_ANON_KEY": "anon-key",
                                          "ALLOWED_ORIGINS": "https://app.example.com, https://admin.example.com"})
    assert ran.returncode == 0, ran.stderr[-3000:]
    answers = {(a["function"], a["label"]): a for a in map(json.loads, ran.stdout.splitlines())}
    assert {fn for fn, _ in answers} == set(names)
    for fn in names:
        def error(label: str) -> dict:
            return json.loads(answers[fn, label]["body"])["error"]

        preflight = answers[fn, "preflight"]
        assert preflight["status"] == 204 and preflight["body"] == ""
        assert preflight["headers"]["access-control-allow-origin"] == "https://app.example.com"
        assert preflight["headers"]["access-control-allow-methods"] == "POST, OPTIONS"
        assert preflight["headers"]["vary"] == "Origin"
        assert answers[fn, "preflight from elsewhere"]["headers"]["access-control-allow-origin"] != \
            "https://evil.example.net"
        assert (answers[fn, "get"]["status"], answers[fn, "get"]["headers"]["allow"]) == (405, "POST, OPTIONS")
        assert error("get") == {"code": "method_not_allowed", "message": "use POST", "field": None}
        for label in ("post without a token", "post with basic auth"):
            assert answers[fn, label]["status"] == 401 and error(label)["code"] == "unauthorized"
        # Auth unreachable is the server's problem, not the caller's: a 500 that says nothing more.
        down = answers[fn, "post while auth is unreachable"]
        assert down["status"] == 500
        assert error("post while auth is unreachable") == {"code": "internal", "message": "something went wrong",
                                                           "field": None}
        assert "127.0.0.1" not in down["body"] and "anon-key" not in ran.stdout


def test_a_body_without_content_length_is_cut_at_the_cap_not_read_whole(deno_npm, tmp_path):
    """Found by an independent attack: a chunked body has no Content-Length, so the cap was checked only after
    req.arrayBuffer() had read all of it (200 MB in memory for a 413). The body is now read as it arrives and
    the read stops past the cap; bodies under it are read whole."""
    _project(tmp_path, BLUEPRINTS["b2b-saas"])
    shutil.copy(ROOT / "tests" / "deno" / "body_cap_harness.ts", tmp_path / "body_cap_harness.ts")
    ran = deno(deno_npm, "run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", "--allow-read",
               "body_cap_harness.ts", "log-event", cwd=tmp_path, env={"SUPABASE_ANON_KEY": "anon-key"})
    assert ran.returncode == 0, ran.stderr[-3000:]
    answers = {a["label"]: a for a in map(json.loads, ran.stdout.splitlines())}
    big = answers["50 MB streamed"]
    assert big["status"] == 413 and big["body"]["error"]["code"] == "payload_too_large"
    assert big["pulled"] < 8 * 1024 * 1024  # the stream stopped early (socket buffers aside), not at 50 MB
    # read whole and parsed: the object reaches log-event's own validation, spaces alone are not JSON
    assert answers["an object in small chunks"]["body"]["error"]["code"] == "invalid_input"
    assert answers["16 KB of spaces then nothing"]["body"]["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_events_of_rows_no_client_writes_are_server_only(name):
    """Found by the review: order_placed was server_only, yet order_created and payment_created (rows only the
    service role writes) were still accepted from clients by log-event. A derived event is server_only exactly
    when no client grant exists for its command."""
    bp = BLUEPRINTS[name]
    commands = {"created": "insert", "updated": "update", "deleted": "delete"}
    derived = [e for e in bp.events() if e.entity]
    assert derived or not bp.analytics.derive_entity_events
    for e in derived:
        command = commands[e.name.rsplit("_", 1)[1]]
        assert e.server_only == (not command_grants(bp, bp.entity(e.entity), command)), e.name


def _logging_scenario(bp: Blueprint) -> tuple[dict, dict[str, str]]:
    """Tables and requests for function_harness.ts: a member, a user linked through each of the blueprint's
    link columns, a stranger and a user linked to another organisation log a client event in organisation A;
    with sessions, a linked user and a member name a session of their own, and another's."""
    org, other = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
    people = {"member": "00000000-0000-4000-8000-000000000001", "stranger": "00000000-0000-4000-8000-000000000002",
              "elsewhere": "00000000-0000-4000-8000-000000000003"}
    links = event_links(bp)
    for k, link in enumerate(links):
        people[_linked(k, link)] = f"00000000-0000-4000-8000-00000000010{k}"
    tables: dict[str, list[dict]] = {"organization_members": [
        {"organization_id": org, "user_id": people["member"], "role": bp.tenancy.default_member_role.name}]}
    for k, link in enumerate(links):
        admitted = {"archived_at": None} if link.live else {}
        admitted |= {link.where_column: link.where_values[0]} if link.where_column else {}
        admitted |= {link.visible: _parent(k, readable=True)} if link.parent else {}
        tables.setdefault(link.table, []).extend([
            {"id": f"00000000-0000-4000-8000-00000000020{k}", "organization_id": org, link.column:
             people[_linked(k, link)], **admitted},
            {"id": f"00000000-0000-4000-8000-00000000030{k}", "organization_id": other, link.column:
             people["elsewhere"], **admitted}])
        # Red team 20 F2: a row of this organisation naming them that the grant no longer admits links nobody: an
        # archived one, or one outside the grant's where.
        if link.live:
            people[f"archived {k}"] = f"00000000-0000-4000-8000-00000000040{k}"
            tables[link.table].append({"id": f"00000000-0000-4000-8000-00000000060{k}", "organization_id": org,
                                       link.column: people[f"archived {k}"], **admitted,
                                       "archived_at": "2026-01-01T00:00:00Z"})
        if link.where_column:
            people[f"outside {k}"] = f"00000000-0000-4000-8000-00000000070{k}"
            tables[link.table].append({"id": f"00000000-0000-4000-8000-00000000080{k}", "organization_id": org,
                                       link.column: people[f"outside {k}"], **admitted,
                                       link.where_column: _outside(link.where_values)})
        # Red team 21 F2: a grant with visible admits a row while its caller may read the row's parent (the
        # caller's own client reads it, under RLS): one every caller reads, one none does (a closed branch).
        if link.parent:
            people[f"hidden {k}"] = f"00000000-0000-4000-8000-00000000100{k}"
            tables[link.table].append({"id": f"00000000-0000-4000-8000-00000000110{k}", "organization_id": org,
                                       link.column: people[f"hidden {k}"], **admitted,
                                       link.visible: _parent(k, readable=False)})
            tables.setdefault(link.parent, []).extend([
                {"id": _parent(k, readable=True), "organization_id": org},
                {"id": _parent(k, readable=False), "organization_id": org, "_readers": []}])
    event = next(e.name for e in bp.events() if not e.server_only)
    requests = [{"label": who, "token": uid, "body": {"organization_id": org, "event_name": event}}
                for who, uid in people.items()]
    if bp.analytics.sessions:
        first = people[_linked(0, links[0])] if links else people["member"]
        tables["sessions"] = [{"id": "00000000-0000-4000-8000-000000000501", "organization_id": org, "user_id": first},
                              {"id": "00000000-0000-4000-8000-000000000502", "organization_id": org,
                               "user_id": people["stranger"]}]
        requests += [{"label": f"{label} session", "token": first,
                      "body": {"organization_id": org, "event_name": event, "session_id": sid}}
                     for label, sid in (("own", "00000000-0000-4000-8000-000000000501"),
                                        ("another's", "00000000-0000-4000-8000-000000000502"))]
    return {"tables": tables, "requests": requests}, people


def _linked(k: int, link) -> str:
    """The scenario's label for the user the k-th lookup links (a dot in it: a linked user)."""
    return f"{link.table}.{link.column}#{k}"


def _parent(k: int, readable: bool) -> str:
    """The id of the k-th lookup's parent row every caller may read, or the one nobody may."""
    return f"00000000-0000-4000-8000-0000000009{int(not readable)}{k}"


def _outside(values: tuple) -> object:
    """A value of the where column the grant does not admit."""
    return (not values[0]) if isinstance(values[0], bool) else -1 if isinstance(values[0], int) else "not-admitted"


def _lookup(link, org: str, uid: str) -> dict:
    """The query string of linkedTo's service-role lookup for `link`, as supabase-js writes it."""
    query = {"select": link.visible or "id", "organization_id": f"eq.{org}", link.column: f"eq.{uid}"}
    query |= {"archived_at": "is.null"} if link.live else {}
    query |= {link.where_column: "in.(" + ",".join(str(v).lower() if isinstance(v, bool) else str(v)
                                                    for v in link.where_values) + ")"} if link.where_column else {}
    return query if link.parent else query | {"limit": "1"}


def _tried(links: list, org: str, who: str, uid: str) -> list[tuple]:
    """(table, query, key) of the lookups linkedTo makes for `who`, until one links them: each link's by the
    service role, and, for a link with visible, the caller's own read of the parents of the rows it found."""
    out = []
    for k, link in enumerate(links):
        out.append((link.table, _lookup(link, org, uid), "service"))
        named = {_linked(k, link): True, f"hidden {k}": False}
        if link.parent and who in named:
            out.append((link.parent, {"select": "id", "id": f"in.({_parent(k, named[who])})", "limit": "1"},
                        "caller"))
        if who == _linked(k, link):
            break
    return out


LOGGING = {name: bp for name, bp in BLUEPRINTS.items() if bp.analytics.enabled} | {
    name: _variant(load_blueprint_file(ROOT / "tests" / "fixtures" / "blueprints" / f"{name}.yaml"))
    for name in ("access-lab", "archived-link", "visible-link")}


HARNESS = ROOT / "tests" / "deno" / "function_harness.ts"


def _served(deno_npm: Path, root: Path, bp: Blueprint, function: str, scenario: dict) -> dict[str, dict]:
    """Label -> {status, body, calls} of each of the scenario's requests to `function` (function_harness.ts)."""
    _project(root, bp)
    shutil.copy(HARNESS, root / HARNESS.name)
    ran = deno(deno_npm, "run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", "--allow-read", HARNESS.name,
               function, json.dumps(scenario), cwd=root)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return {a["label"]: a for a in map(json.loads, ran.stdout.splitlines())}


def test_log_event_takes_members_and_linked_users_and_nobody_else(deno_npm, tmp_path):
    """Found in the e-commerce template: shoppers are linked to their store through customers.user_id and never
    become members, so log-event refused every product_viewed and checkout_started the taxonomy defines for
    them. Each function runs in Deno against a stand-in for Auth and PostgREST (no Supabase stack runs here):
    members pass with their own client's lookup; a user named by one of the blueprint's link columns in a row of
    this organisation passes through a service-role lookup of exactly that; a stranger, or a user linked to
    another organisation, gets 403; a session must be the caller's own in this organisation."""
    for name, bp in LOGGING.items():
        scenario, people = _logging_scenario(bp)
        out = _served(deno_npm, tmp_path / name, bp, "log-event", scenario)
        links = event_links(bp)
        labels = [_linked(k, link) for k, link in enumerate(links)]
        for who, uid in people.items():
            answer = out[who]
            allowed = who == "member" or who in labels
            assert answer["status"] == (201 if allowed else 403), (name, who, answer)
            lookups = [c for c in answer["calls"] if c["method"] == "GET" and c["table"] != "organization_members"]
            assert [c["key"] for c in answer["calls"] if c["table"] == "organization_members"] == ["caller"]
            if who == "member":
                assert lookups == []
            else:  # every link column of this organisation, for this caller, by the service role, until one holds
                tried = [(c["table"], c["query"], c["key"]) for c in lookups]
                org = scenario["requests"][0]["body"]["organization_id"]
                assert tried == _tried(links, org, who, uid), (name, who)
            inserts = [c for c in answer["calls"] if c["method"] == "POST"]
            if allowed:
                assert [(c["table"], c["key"], c["body"]["user_id"]) for c in inserts] == [("events", "service", uid)]
            else:
                assert inserts == []
                assert answer["body"]["error"]["code"] == "forbidden"
                assert answer["body"]["error"]["field"] == "organization_id"
        if bp.analytics.sessions:
            assert out["own session"]["status"] == 201, (name, out["own session"])
            assert out["own session"]["calls"][-1]["body"]["session_id"].endswith("501")
            refused = out["another's session"]
            assert (refused["status"], refused["body"]["error"]["field"]) == (400, "session_id"), (name, refused)


def test_a_link_narrowed_by_visible_holds_only_while_the_caller_reads_the_parent(deno_npm, tmp_path):
    """Red team 21 F2: `{linked: [user_id], visible: branch_id}` lets a patient read their row while they may read
    its branch (signed-in users read open ones), but log-event and track-session linked them by any row naming
    them, so a portal user of a closed branch kept writing the clinic's analytics. The service role finds the
    rows' parents; the caller's own client (RLS: the harness shows the closed branch to nobody) must read one."""
    bp = LOGGING["visible-link"]
    scenario, people = _logging_scenario(bp)
    org = scenario["requests"][0]["body"]["organization_id"]
    portal = _linked(0, event_links(bp)[0])
    expected = {"member": 201, portal: 201, "hidden 0": 403, "stranger": 403}
    starts = [{"label": who, "token": people[who], "body": {"organization_id": org, "action": "start"}}
              for who in expected]
    for function, requests in (("log-event", scenario["requests"]), ("track-session", starts)):
        out = _served(deno_npm, tmp_path / function, bp, function, scenario | {"requests": requests})
        assert {who: out[who]["status"] for who in expected} == expected, function
        for who in (portal, "hidden 0"):
            [read] = [c for c in out[who]["calls"] if c["table"] == "branches"]
            assert read["key"] == "caller", (function, who, read)
        assert not [c for c in out["hidden 0"]["calls"] if c["method"] == "POST"], function


def test_visible_narrows_a_one_hop_link_and_an_unnarrowed_grant_widens_it():
    """A one-hop linked grant's visible (with its where) narrows the lookup to rows whose parent the caller reads;
    a longer chain's visible is on another row than the one naming the user, so it narrows nothing (as its where
    does not), and a grant of the same end without narrowing widens the lookup to every row naming them."""
    def links(portal: dict, *visits: dict) -> list[tuple]:
        data = yaml.safe_load((ROOT / "tests" / "fixtures" / "blueprints" / "visible-link.yaml").read_text())
        data["entities"][1]["access"]["select"][1] = portal
        data["entities"] += [{"name": "visits", "fields": [
            {"name": "patient_id", "type": "reference", "references": "patients"},
            {"name": "branch_id", "type": "reference", "references": "branches"}],
            "access": {"select": [{"min_role": "viewer"}, grant], "insert": [{"min_role": "admin"}]}}
            for grant in visits]
        bp = parse_blueprint(data)
        return [(x.table, x.column, x.where_column, x.visible, x.parent) for x in event_links(bp)]

    portal = {"linked": ["user_id"], "visible": "branch_id"}
    assert links(portal) == [("patients", "user_id", None, "branch_id", "branches")]
    assert links(portal | {"where": {"column": "label", "equals": "portal"}}) == [
        ("patients", "user_id", "label", "branch_id", "branches")]
    for wide in ({"linked": ["patient_id", "user_id"]}, {"linked": ["patient_id", "user_id"], "visible": "branch_id"}):
        assert links(portal, wide) == [("patients", "user_id", None, None, None)], wide


def test_a_pii_side_table_links_nobody_the_row_it_belongs_to_does_not():
    """Red team 22 F1: a pii field on the linked entity made a side table whose readers follow the chain a hop
    longer ([patients_id, user_id]), which the lookup read as un-narrowed: a deactivated patient, or one whose
    branch closed, kept logging events. A side table's readers read its row too (A23): it links nobody new."""
    data = yaml.safe_load((ROOT / "tests" / "fixtures" / "blueprints" / "visible-link.yaml").read_text())
    plain = [(x.table, x.column, x.where_column, x.visible) for x in event_links(parse_blueprint(data))]
    data["entities"][1]["fields"].append({"name": "diagnosis", "type": "text", "pii": True})
    bp = parse_blueprint(data)
    assert any(e.private_of == data["entities"][1]["name"] for e in bp.entities)
    assert [(x.table, x.column, x.where_column, x.visible) for x in event_links(bp)] == plain


SESSIONS = {name: bp for name, bp in LOGGING.items() if bp.analytics.sessions}


def test_track_session_starts_and_ends_only_the_callers_own_sessions(deno_npm, tmp_path):
    """Nothing wrote `sessions` (its comment said "an edge function of yours"), so log-event's session_id could
    never name one. track-session starts a session for the caller where they may log events (the database stamps
    started_at: a client cannot backdate one, and an unknown field such as started_at is refused) and ends one of
    their own open sessions, never before it started; anybody else's, or an ended one, is a 404."""
    org = "00000000-0000-4000-8000-00000000000a"
    mine, theirs, done = ("00000000-0000-4000-8000-00000000060" + k for k in "123")
    for name, bp in SESSIONS.items():
        scenario, people = _logging_scenario(bp)
        member, stranger = people["member"], people["stranger"]
        linked = [uid for who, uid in people.items() if "." in who]
        future = "2999-01-01T00:00:00.000Z"  # the database's clock ahead of the function's: ended_at waits for it
        scenario["tables"]["sessions"] = [
            {"id": mine, "organization_id": org, "user_id": member, "started_at": future, "ended_at": None},
            {"id": theirs, "organization_id": org, "user_id": stranger, "started_at": future, "ended_at": None},
            {"id": done, "organization_id": org, "user_id": member, "started_at": future, "ended_at": future}]

        def start(label: str, token: str, **extra) -> dict:
            return {"label": label, "token": token, "headers": {"User-Agent": "a" * 600},
                    "body": {"organization_id": org, "action": "start", **extra}}

        def end(label: str, session: str) -> dict:
            return {"label": label, "token": member, "body": {"organization_id": org, "action": "end", "session_id": session}}

        scenario["requests"] = [
            start("member starts", member, client_type="web"), start("stranger starts", stranger),
            start("backdated", member, started_at="2020-01-01T00:00:00Z"), start("fax", member, client_type="fax"),
            *[start(f"linked {k} starts", uid) for k, uid in enumerate(linked)],
            end("ends own", mine), end("ends another's", theirs), end("ends an ended one", done)]
        out = _served(deno_npm, tmp_path / name, bp, "track-session", scenario)

        started = out["member starts"]
        assert (started["status"], started["body"]) == (201, {"session_id": "11111111-1111-4111-8111-111111111111"})
        [insert] = [c for c in started["calls"] if c["method"] == "POST"]
        assert (insert["table"], insert["key"]) == ("sessions", "service")
        assert insert["body"] == {"organization_id": org, "user_id": member, "client_type": "web", "user_agent": "a" * 512}
        for k in range(len(linked)):
            assert out[f"linked {k} starts"]["status"] == 201, (name, out[f"linked {k} starts"])
            assert [c["body"]["user_id"] for c in out[f"linked {k} starts"]["calls"] if c["method"] == "POST"] == [linked[k]]
        assert out["stranger starts"]["status"] == 403
        for label, field in (("backdated", "started_at"), ("fax", "client_type")):
            assert (out[label]["status"], out[label]["body"]["error"]["field"]) == (400, field), (name, out[label])
        for label in ("stranger starts", "backdated", "fax", "ends another's", "ends an ended one"):
            assert not [c for c in out[label]["calls"] if c["method"] in ("POST", "PATCH")], (name, label)

        ended = out["ends own"]
        assert (ended["status"], ended["body"]) == (200, {"session_id": mine, "ended_at": future}), (name, ended)
        [patch] = [c for c in ended["calls"] if c["method"] == "PATCH"]
        assert (patch["key"], patch["body"]) == ("service", {"ended_at": future})
        assert patch["query"] == {"id": f"eq.{mine}", "user_id": f"eq.{member}", "ended_at": "is.null"}
        for label in ("ends another's", "ends an ended one"):
            assert (out[label]["status"], out[label]["body"]["error"]["field"]) == (404, "session_id"), (name, label)
