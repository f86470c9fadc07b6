"""What the HTTP transports accept: the policy per bind address, the guard in process, a real server."""

from __future__ import annotations

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from serving import serving

from blueprint_mcp.http_security import HttpGuard, check_token, policy_for
from blueprint_mcp.model import BlueprintError

TOKEN = "s3cret-token-for-tests-0123456789"
LOOPBACK_8000 = {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "test", "version": "0"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}
# A complete sessionless (2026-07-28) tool call: served as is when the guard lets it through.
TOOL_CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
    "name": "generate_rls", "arguments": {"template": "habit-tracker", "tables": ["habits"], "include": ["summary"]},
    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientCapabilities": {}}}}
TOOL_CALL_HEADERS = {**ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                     "Mcp-Name": "generate_rls"}


# --- the policy per bind address ------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "::1", "[::1]"])
def test_a_loopback_bind_accepts_exactly_the_loopback_names_at_its_port(host):
    policy = policy_for(host, 8000)
    assert policy.hosts == LOOPBACK_8000
    assert policy.origins == {f"http://{h}" for h in LOOPBACK_8000}
    assert policy.token is None


def test_another_loopback_address_is_accepted_besides_the_loopback_names():
    assert policy_for("127.0.0.2", 8000).hosts == LOOPBACK_8000 | {"127.0.0.2:8000"}


def test_a_specific_address_accepts_only_itself_and_the_allowed_hosts():
    policy = policy_for("192.168.1.10", 8000, token=TOKEN, extra_hosts=["MCP.example.internal"])
    assert policy.hosts == {"192.168.1.10:8000", "mcp.example.internal:8000", "mcp.example.internal"}
    assert policy.origins == {"http://192.168.1.10:8000", "http://mcp.example.internal:8000",
                              "http://mcp.example.internal", "https://mcp.example.internal"}
    assert policy.token == TOKEN


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_wildcard_bind_accepts_loopback_and_the_allowed_hosts_but_never_the_wildcard(host):
    policy = policy_for(host, 8000, token=TOKEN, extra_hosts=["10.0.0.5", "fe80::1"])
    assert policy.hosts == LOOPBACK_8000 | {"10.0.0.5:8000", "[fe80::1]:8000", "10.0.0.5", "[fe80::1]"}
    assert not {"0.0.0.0:8000", "[::]:8000"} & policy.hosts


def test_port_80_also_accepts_the_host_header_without_a_port():
    assert policy_for("127.0.0.1", 80).hosts == {"127.0.0.1:80", "localhost:80", "[::1]:80",
                                                  "127.0.0.1", "localhost", "[::1]"}


@pytest.mark.parametrize("name", ["http://evil.example", "evil.example:80", "under_score.example", "", "a b"])
def test_an_allowed_host_that_is_not_a_bare_name_or_address_is_refused_naming_the_option(name):
    with pytest.raises(BlueprintError, match="^--allowed-host: "):
        policy_for("127.0.0.1", 8000, extra_hosts=[name])


@pytest.mark.parametrize("token", ["short", "x" * 15, "has space in it 0123456789", "ünïcode-0123456789abc",
                                   "x" * 513])
def test_a_weak_or_malformed_token_is_refused_with_the_fix(token):
    with pytest.raises(BlueprintError, match="token_urlsafe"):
        check_token(token)


# --- the guard, in process ------------------------------------------------------------------------

class Recorder:
    """The app behind the guard: answers 200 and records that it was reached."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.calls.append(scope["type"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"reached"})


async def _ask(guard: HttpGuard, headers: list[tuple[str, str]], kind: str = "http") -> tuple[int, dict, bytes]:
    """One request through the guard with exactly these headers: (status, response headers, body)."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": kind, "method": "POST", "path": "/mcp", "raw_path": b"/mcp", "query_string": b"",
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
             "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
             "asgi": {"version": "3.0"}, "http_version": "1.1", "root_path": ""}
    await guard(scope, receive, send)
    if kind != "http":
        return sent[0].get("code", 0), {}, b""
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


HOST = ("Host", "127.0.0.1:8000")
BEARER = ("Authorization", f"Bearer {TOKEN}")
GUARD_CASES = [
    # (headers, status): Host first (421), then Origin (403), then the token (401).
    pytest.param([("Host", "evil.example:8000"), BEARER], 421, id="foreign host"),
    pytest.param([("Host", "127.0.0.1:9999"), BEARER], 421, id="loopback at another port"),
    pytest.param([("Host", "0.0.0.0:8000"), BEARER], 421, id="the wildcard address"),
    pytest.param([BEARER], 421, id="no host"),
    pytest.param([HOST, ("Host", "evil.example"), BEARER], 421, id="two hosts"),
    pytest.param([HOST, ("Origin", "http://evil.example"), BEARER], 403, id="foreign origin"),
    pytest.param([HOST, ("Origin", "null"), BEARER], 403, id="null origin"),
    pytest.param([HOST, ("Origin", "https://localhost:8000"), BEARER], 403, id="https origin"),
    pytest.param([HOST, ("Origin", "http://localhost:8001"), BEARER], 403, id="other port"),
    pytest.param([HOST, ("Origin", "http://localhost:8000"), ("Origin", "http://x"), BEARER], 403, id="two origins"),
    pytest.param([("Host", "evil.example:8000"), ("Origin", "http://evil.example")], 421, id="host before origin"),
    pytest.param([("Host", "evil.example:8000")], 421, id="host before token"),
    pytest.param([HOST, ("Origin", "http://evil.example")], 403, id="origin before token"),
    pytest.param([HOST], 401, id="no token"),
    pytest.param([HOST, ("Authorization", "Bearer wrong-token-0123456789")], 401, id="wrong token"),
    pytest.param([HOST, ("Authorization", f"Bearer {TOKEN}x")], 401, id="token with a suffix"),
    pytest.param([HOST, ("Authorization", f"Bearer {TOKEN[:-1]}")], 401, id="token prefix"),
    pytest.param([HOST, ("Authorization", f"Basic {TOKEN}")], 401, id="basic scheme"),
    pytest.param([HOST, ("Authorization", TOKEN)], 401, id="token without scheme"),
    pytest.param([HOST, BEARER, ("Authorization", "Bearer x")], 401, id="two authorizations"),
    pytest.param([HOST, BEARER], 200, id="right token"),
    pytest.param([HOST, ("Authorization", f"bearer {TOKEN}")], 200, id="scheme in lower case"),
    pytest.param([("Host", "LOCALHOST:8000"), BEARER], 200, id="host in upper case"),
    pytest.param([("Host", "[::1]:8000"), ("Origin", "http://localhost:8000"), BEARER], 200, id="allowed origin"),
]


@pytest.mark.parametrize(("headers", "status"), GUARD_CASES)
async def test_guard_lets_through_only_the_right_host_origin_and_token(headers, status):
    app = Recorder()
    got, response_headers, body = await _ask(HttpGuard(app, policy_for("127.0.0.1", 8000, token=TOKEN)), headers)
    assert got == status
    assert app.calls == (["http"] if status == 200 else [])
    if status == 401:
        assert response_headers["www-authenticate"] == 'Bearer realm="blueprint-mcp"'
    if status != 200:
        assert TOKEN.encode() not in body


async def test_guard_without_a_token_checks_host_and_origin_only():
    app = Recorder()
    guard = HttpGuard(app, policy_for("127.0.0.1", 8000))
    assert (await _ask(guard, [HOST]))[0] == 200
    assert (await _ask(guard, [HOST, ("Origin", "http://evil.example")]))[0] == 403
    assert app.calls == ["http"]


async def test_guard_passes_lifespan_through_and_closes_websockets_unread():
    app = Recorder()
    guard = HttpGuard(app, policy_for("127.0.0.1", 8000))

    async def nothing():
        return {}

    sent = []

    async def send(message):
        sent.append(message)

    await guard({"type": "lifespan"}, nothing, send)
    assert (await _ask(guard, [HOST], kind="websocket"))[0] == 1008
    assert app.calls == ["lifespan"]


# --- a real server --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def http_port():
    with serving("streamable-http", extra_env={"BLUEPRINT_MCP_TOKEN": TOKEN}) as port:
        yield port


@pytest.fixture(scope="module")
def sse_port():
    with serving("sse", "--token", TOKEN) as port:
        yield port


def _post(port: int, body: dict, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers, timeout=30)


def _sse_status(port: int, headers: dict[str, str]) -> int:
    """The status of GET /sse, without reading the event stream (served, it never ends)."""
    with httpx.stream("GET", f"http://127.0.0.1:{port}/sse", headers=headers, timeout=30) as response:
        return response.status_code


def test_a_foreign_host_is_refused_with_421_and_the_tool_call_never_runs(http_port):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    refused = _post(http_port, TOOL_CALL, {**TOOL_CALL_HEADERS, **auth, "Host": f"evil.example:{http_port}"})
    served = _post(http_port, TOOL_CALL, {**TOOL_CALL_HEADERS, **auth})
    assert refused.status_code == 421
    assert refused.text.startswith("Host header not accepted")
    assert served.status_code == 200
    assert served.json()["result"]["structuredContent"]["policies"][0]["table"] == "habits"


def test_a_foreign_origin_is_refused_with_403(http_port):
    response = _post(http_port, INITIALIZE, {**ACCEPT, "Authorization": f"Bearer {TOKEN}",
                                             "Origin": "http://evil.example"})
    assert response.status_code == 403
    assert response.text.startswith("Origin not accepted")


def test_an_allowed_origin_is_served(http_port):
    response = _post(http_port, INITIALIZE, {**ACCEPT, "Authorization": f"Bearer {TOKEN}",
                                             "Origin": f"http://localhost:{http_port}"})
    assert response.status_code == 200
    assert '"serverInfo":{"name":"blueprint-mcp"' in response.text


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789"])
def test_streamable_http_without_the_right_token_is_401(http_port, authorization):
    headers = {**TOOL_CALL_HEADERS, **({"Authorization": authorization} if authorization else {})}
    response = _post(http_port, TOOL_CALL, headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="blueprint-mcp"'


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789"])
def test_sse_without_the_right_token_is_401_on_both_endpoints(sse_port, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    message = httpx.post(f"http://127.0.0.1:{sse_port}/messages/?session_id=0", json=INITIALIZE, headers=headers,
                         timeout=30)
    assert (_sse_status(sse_port, headers), message.status_code) == (401, 401)


def test_sse_refuses_a_foreign_host_and_a_foreign_origin(sse_port):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert _sse_status(sse_port, {**auth, "Host": "evil.example"}) == 421
    assert _sse_status(sse_port, {**auth, "Origin": "http://evil.example"}) == 403
    assert _sse_status(sse_port, auth) == 200


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_sdk_client_with_the_token_calls_a_tool_over_streamable_http(http_port, mode):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        async with Client(streamable_http_client(f"http://127.0.0.1:{http_port}/mcp", http_client=http),
                          mode=mode) as c:
            result = await c.call_tool("generate_rls", {"template": "habit-tracker", "tables": ["habits"]})
    assert result.is_error is False
    assert {p["table"] for p in result.structured_content["policies"]} == {"habits"}


async def test_the_sdk_client_with_the_token_calls_a_tool_over_sse(sse_port):
    transport = sse_client(f"http://127.0.0.1:{sse_port}/sse", headers={"Authorization": f"Bearer {TOKEN}"})
    async with Client(transport, mode="legacy") as c:
        result = await c.call_tool("generate_rls", {"template": "habit-tracker", "tables": ["habits"]})
    assert result.is_error is False
    assert {p["table"] for p in result.structured_content["policies"]} == {"habits"}


def test_a_wildcard_bind_serves_loopback_and_allowed_names_and_refuses_the_rest():
    auth = {**ACCEPT, "Authorization": f"Bearer {TOKEN}"}
    with serving("streamable-http", "--host", "0.0.0.0", "--allow-remote", "--allowed-host", "mcp.test",
                 extra_env={"BLUEPRINT_MCP_TOKEN": TOKEN}) as port:
        status = {host: _post(port, INITIALIZE, {**auth, "Host": f"{host}:{port}"}).status_code
                  for host in ("127.0.0.1", "localhost", "mcp.test", "0.0.0.0", "evil.example")}
        without_token = _post(port, INITIALIZE, {**ACCEPT, "Host": f"mcp.test:{port}"}).status_code
    assert status == {"127.0.0.1": 200, "localhost": 200, "mcp.test": 200, "0.0.0.0": 421, "evil.example": 421}
    assert without_token == 401
