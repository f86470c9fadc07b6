"""What the HTTP transports accept: Host and Origin checks against DNS rebinding, an optional bearer token.

One ASGI middleware in front of the whole MCP app, so a refused request reaches no route and no tool.
A browser page on another site can make a victim's browser send requests to a loopback server
(DNS rebinding: `evil.example` resolves to 127.0.0.1), but it cannot choose the Host header, nor hide its
Origin; a token in `Authorization` is something such a page can never know.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .model import BlueprintError

TOKEN_ENV = "BLUEPRINT_MCP_TOKEN"
# The names a loopback server is reached by, whichever loopback address it binds.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# RFC 6750's b64token: what an Authorization: Bearer value may hold. At least 16 characters, since a
# network-exposed server would otherwise be one short guess away.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{16,512}=*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
HTTP_DEFAULT_PORT = 80


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    ip = _ip(host)
    return host.lower() == "localhost" if ip is None else ip.is_loopback


def is_wildcard(host: str) -> bool:
    """0.0.0.0 or ::, every interface: a bind address, never a name a client should address."""
    ip = _ip(host)
    return ip is not None and ip.is_unspecified


def bind_address(host: str) -> str:
    """What the socket binds: IPv6 literals without their URL brackets."""
    return host.strip("[]")


def url_host(host: str, field: str = "--host") -> str:
    """The host as it appears in a URL and in a Host header: lower case, IPv6 in brackets."""
    ip = _ip(host)
    if ip is not None:
        return f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    name = host.lower().rstrip(".")
    if not _HOSTNAME.fullmatch(name):
        raise BlueprintError(f"{host!r} is neither an IP address nor a host name", field=field,
                             fix="pass a name like mcp.example.internal or an address like 192.168.1.10 "
                                 "(no scheme, no port)")
    return name


def check_token(token: str) -> str:
    if not _TOKEN.fullmatch(token):
        raise BlueprintError("a bearer token is 16 to 512 characters from A-Z a-z 0-9 - . _ ~ + / (RFC 6750)",
                             field=f"--token or {TOKEN_ENV}",
                             fix="use python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return token


@dataclass(frozen=True)
class HttpPolicy:
    """Exactly which Host and Origin values, and which token, an HTTP transport accepts."""

    hosts: frozenset[str]
    origins: frozenset[str]
    token: str | None = None


def policy_for(host: str, port: int, token: str | None = None, extra_hosts: Iterable[str] = ()) -> HttpPolicy:
    """The bound host:port; the loopback names too when the server listens on loopback; then extra names.

    A wildcard bind (0.0.0.0, ::) is reachable through loopback, but its other names are unknown here,
    so they come from `extra_hosts` (--allowed-host). "0.0.0.0" itself is never accepted: browsers have
    sent requests to it that land on the local machine. An extra name is also accepted without a port
    (and from an https:// origin): the form a TLS-terminating proxy in front of the server forwards.
    """
    names = [] if is_wildcard(host) else [url_host(host)]
    if is_loopback(host) or is_wildcard(host):
        names += LOOPBACK_NAMES
    extra = [url_host(h, "--allowed-host") for h in extra_hosts]
    # A Host header carries the port unless it is the scheme's default.
    hosts = [f"{n}:{port}" for n in names + extra] + (names if port == HTTP_DEFAULT_PORT else []) + extra
    origins = [f"http://{h}" for h in hosts] + [f"https://{n}" for n in extra]
    return HttpPolicy(hosts=frozenset(hosts), origins=frozenset(origins),
                      token=check_token(token) if token is not None else None)


@dataclass(frozen=True)
class Refusal:
    status: int
    text: str
    headers: tuple[tuple[str, str], ...] = ()


WRONG_HOST = Refusal(421, "Host header not accepted: this server answers only requests addressed to its own "
                          "address (see --allowed-host)\n")
WRONG_ORIGIN = Refusal(403, "Origin not accepted: requests from web pages of other sites are refused\n")
WRONG_TOKEN = Refusal(401, "missing or wrong bearer token: send Authorization: Bearer <token>\n",
                      (("WWW-Authenticate", 'Bearer realm="blueprint-mcp"'),))


def refusal(policy: HttpPolicy, headers: Headers) -> Refusal | None:
    """Why a request is refused (Host first, then Origin, then the token), or None to let it through."""
    host = headers.getlist("host")
    if len(host) != 1 or host[0].lower() not in policy.hosts:
        return WRONG_HOST
    origin = headers.getlist("origin")
    # No Origin: not a browser's cross-site request (editors and SDK clients send none). "null" is a
    # sandboxed or file:// page: refused like any other foreign origin.
    if len(origin) > 1 or (origin and origin[0].lower() not in policy.origins):
        return WRONG_ORIGIN
    if policy.token is not None and not _token_matches(headers.getlist("authorization"), policy.token):
        return WRONG_TOKEN
    return None


def _token_matches(values: list[str], token: str) -> bool:
    if len(values) != 1:
        return False
    scheme, _, given = values[0].partition(" ")
    # Compared in constant time: how long a wrong guess takes says nothing about the token.
    same = hmac.compare_digest(given.strip().encode("latin-1"), token.encode("ascii"))
    return scheme.lower() == "bearer" and same


class HttpGuard:
    """ASGI middleware: every HTTP request passes `refusal` before the app sees it; no websockets."""

    def __init__(self, app: ASGIApp, policy: HttpPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            # No MCP transport uses websockets; closing before accepting answers 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        why = refusal(self.policy, Headers(scope=scope))
        if why is not None:
            await PlainTextResponse(why.text, why.status, headers=dict(why.headers))(scope, receive, send)
            return
        await self.app(scope, receive, send)
