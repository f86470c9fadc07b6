"""`blueprint-mcp serve` in a subprocess on a free loopback port, for tests against the real HTTP transports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_DIR = Path(__file__).resolve().parents[1] / "server"


def env(**extra: str) -> dict[str, str]:
    """The environment of a child `python -m blueprint_mcp`, importing this checkout, without a token."""
    base = {k: v for k, v in os.environ.items() if k != "BLUEPRINT_MCP_TOKEN"}
    path = os.pathsep.join(filter(None, [str(SERVER_DIR), os.environ.get("PYTHONPATH")]))
    return {**base, "PYTHONPATH": path, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(transport: str, *args: str, extra_env: dict[str, str] | None = None) -> Iterator[int]:
    """The server until it accepts connections; stopped on exit, asserting it wrote nothing to stdout."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "blueprint_mcp", "serve", "--transport", transport, "--port", str(port), *args],
        env=env(**(extra_env or {})), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"server did not listen on {port} within 20 s") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stdout = proc.stdout.read()
        proc.stdout.close()
        proc.stderr.close()
        # The HTTP transports own no stdout: every log line belongs on stderr.
        assert stdout == b""
