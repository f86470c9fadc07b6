"""Stateless streamable HTTP: any worker answers any request of a client, so workers scale out freely."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from serving import serving


class RoundRobin(httpx2.AsyncHTTPTransport):
    """A load balancer without session affinity: each request goes to the next server in turn."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__()
        self.ports, self.turn = ports, itertools.cycle(ports)
        self.served: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self.turn)
        self.served.append(port)
        request.url = request.url.copy_with(port=port)
        request.headers["Host"] = f"127.0.0.1:{port}"
        return await super().handle_async_request(request)


async def _workflow(url: str, http: httpx2.AsyncClient, mode: str) -> tuple[dict, str]:
    """A client's session: list, design, carry the blueprint forward, read a link: calls spread over servers."""
    async with Client(streamable_http_client(url, http_client=http), mode=mode) as c:
        assert [t.name for t in (await c.list_tools()).tools][0] == "design_tenancy"
        design = await c.call_tool("design_tenancy", {"app_name": "Book Club", "team_organizations": False})
        blueprint = design.structured_content["blueprint"]
        rls = await c.call_tool("generate_rls", {"blueprint": blueprint, "tables": ["organizations"]})
        sql = (await c.read_resource(rls.structured_content["resources"][0]["uri"])).contents[0].text
        audit = await c.call_tool("audit_spec", {"blueprint": blueprint})
    assert (design.is_error, rls.is_error, audit.is_error) == (False, False, False)
    return rls.structured_content, sql + str(audit.structured_content["ok"])


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_two_stateless_servers_answer_one_clients_calls_interchangeably(mode):
    with serving("streamable-http", "--stateless") as first, serving("streamable-http", "--stateless") as second:
        balancer = RoundRobin([first, second])
        async with httpx2.AsyncClient(transport=balancer, timeout=30) as http:
            rls, text = await _workflow(f"http://127.0.0.1:{first}/mcp", http, mode)
    # Every call, the handshake included, alternated between the two processes.
    assert len(balancer.served) >= 6
    assert balancer.served[:4] == [first, second, first, second]
    assert rls["design"].startswith("bp-")  # stored by one server, read back through the other
    assert text.count("create policy") == 3 and text.endswith("True")


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


async def test_serve_with_two_workers_runs_two_processes_that_answer_calls():
    with serving("streamable-http", "--stateless", "--workers", "2") as port:
        deadline = time.monotonic() + 20
        parent = next(int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
                      if _is_server(p, port))
        while len(_children(parent)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(parent)
        for _ in range(3):  # a fresh connection each time: the kernel hands each to either worker
            async with httpx2.AsyncClient(timeout=30) as http:
                rls, text = await _workflow(f"http://127.0.0.1:{port}/mcp", http, "auto")
    assert len(workers) >= 2
    assert text.count("create policy") == 3


def _is_server(cmdline: Path, port: int) -> bool:
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"--workers" in args and str(port).encode() in args and int(cmdline.parent.name) != os.getpid()


def test_workers_without_stateless_are_refused_in_one_line():
    out = subprocess.run([sys.executable, "-m", "blueprint_mcp", "serve", "--transport", "streamable-http", "--workers",
                          "2"], capture_output=True, text=True, timeout=30, env=__import__("serving").env())
    assert out.returncode == 2
    assert out.stderr == ("blueprint-mcp: error: --workers above 1 needs --stateless: a session kept by one worker "
                          "is unknown to the others\n")
