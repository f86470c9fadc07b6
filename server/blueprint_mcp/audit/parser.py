"""Where the reader's parse trees come from: libpg_query in this process, or, for a long history on a
machine with a second core, a parse worker that runs ahead of the reader.

libpg_query holds the GIL, so threads cannot overlap it with reading; a process can. The worker hands
back libpg_query's JSON undecoded (decoding is where trees become Python objects, and unpickling trees
would cost what parsing does), so what crosses the pipe is text and the reader's work per statement drops
by the parse itself (about a tenth of an audit). Trees are the same either way: the JSON is decoded as
an in-process parse decodes it, and a statement the worker could not parse is parsed again here, which
raises what it always raised.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

import orjson
import pgparse

# The worker costs ~25 ms before its first answer (a fresh interpreter, then every statement read): measured
# here, it loses at 2,300 statements (260 KB: 126 vs 114 ms) and wins from about 4,000 (564 KB: 239 vs 264 ms).
WORKER_MIN_CHARS = 512 * 1024
_WORKER = Path(__file__).with_name("parse_worker.py")
_HEADER = struct.Struct(">cI")  # what parse_worker answers each statement with


_CAUGHT = threading.local()  # `parse` asks _Json to keep the JSON text it decodes, in this thread only


class _Json:
    """What pgparse decodes libpg_query's JSON with: orjson, in about half the standard library's time on
    the same text (decoding was 40% of parsing), with the standard library as the fallback for what orjson
    refuses. The other users of pgparse in the process (verify's guard) get the same trees."""

    @staticmethod
    def loads(text: str | bytes) -> object:
        if getattr(_CAUGHT, "on", False):
            _CAUGHT.text = text
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return json.loads(text)


pgparse.json = _Json  # pgparse looks its json module up at each call

# Statement text -> libpg_query's JSON for it, undecoded: a statement parsed before is decoded again (fresh trees
# the reader may change) without parsing, about 60% of a parse. The same statements come back: every blueprint
# renders the same core, and an agent audits a folder again after changing one migration. Bounded by entries,
# by statement size and by the JSON kept in all (the oldest go first); statements that do not parse are not
# kept (they raise again).
_PARSED: OrderedDict[str, str | bytes] = OrderedDict()
_PARSED_ENTRIES, _PARSED_MAX_CHARS, _PARSED_MAX_JSON = 8192, 32 * 1024, 16 * 1024 * 1024
_PARSED_LOCK = threading.Lock()
_parsed_json = 0  # the length of every JSON text kept


def parse(text: str) -> list[dict]:
    """One chunk of SQL -> its statements' raw parse trees; raises pgparse.PGQueryError on bad SQL."""
    if len(text) > _PARSED_MAX_CHARS:
        return pgparse.parse(text)
    with _PARSED_LOCK:
        known = _PARSED.get(text)
        if known is not None:
            _PARSED.move_to_end(text)
    if known is not None:
        return _Json.loads(known).get("stmts", [])  # what pgparse returns of the same JSON
    _CAUGHT.on, _CAUGHT.text = True, None
    try:
        trees = pgparse.parse(text)
    finally:
        _CAUGHT.on = False
    if _CAUGHT.text is not None:
        _keep(text, _CAUGHT.text)
        _CAUGHT.text = None
    return trees


def _keep(text: str, data: str | bytes) -> None:
    global _parsed_json
    with _PARSED_LOCK:
        old = _PARSED.pop(text, None)
        _parsed_json += len(data) - (len(old) if old is not None else 0)
        _PARSED[text] = data
        while _PARSED and (len(_PARSED) > _PARSED_ENTRIES or _parsed_json > _PARSED_MAX_JSON):
            _parsed_json -= len(_PARSED.popitem(last=False)[1])


def forget_parses() -> None:
    """Parse every statement anew from now on (what a first audit in a fresh process does)."""
    global _parsed_json
    with _PARSED_LOCK:
        _PARSED.clear()
        _parsed_json = 0


def _cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Parses:
    """The parse trees of a history's statements, taken in the order they were added (a batch per file).
    `take(text)` returns what `parse(text)` would, and raises what it would raise."""

    def __init__(self, worker: bool) -> None:
        """`worker`: parse ahead in a second process (started now, while the caller splits the files)."""
        self._expected: deque[str] = deque()
        self._proc: subprocess.Popen | None = None
        if worker and sys.executable:
            try:
                # -P: not the audit package's folder first on its path; it imports pgparse from wherever
                # this process did (a user site, PYTHONPATH, a path set at run time), else it fails at once
                # and this process parses everything.
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
                self._proc = subprocess.Popen(
                    [sys.executable, "-P", str(_WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, bufsize=1 << 20, env=env)
            except OSError:
                return  # no worker: every statement is parsed here
            self._read = self._proc.stdout.read

    @staticmethod
    def wanted(sources: list[tuple[str, str]]) -> bool:
        """A worker pays for its start on a long history, and only with a second core to run on."""
        return sum(len(text) for _, text in sources) >= WORKER_MIN_CHARS and _cores() > 1

    def add(self, batch: list[str]) -> None:
        """The statements of the next file, in the order they will be taken. The worker reads them all
        before it answers, so this never waits on its answers."""
        if self._proc is None or not batch:
            return
        sent = "\x00".join(batch) + "\x00"  # the worker's separator: SQL with a NUL is parsed here
        if sent.count("\x00") != len(batch):
            self.close()
            return
        try:
            self._proc.stdin.write(sent.encode("utf-8", "surrogatepass"))
        except (OSError, ValueError):
            self.close()  # the worker is gone: everything is parsed here
            return
        self._expected.extend(batch)

    def added_all(self) -> None:
        """No more statements: the worker starts answering."""
        if self._proc is not None:
            try:
                self._proc.stdin.close()
            except (OSError, ValueError):
                self.close()

    def take(self, text: str) -> list[dict]:
        if self._proc is None:
            return parse(text)
        if not self._expected or self._expected[0] != text:
            self.close()  # asked out of order: the worker's answers no longer line up
            return parse(text)
        self._expected.popleft()
        try:
            status, size = _HEADER.unpack(self._read(5))
            if status == b"+":
                data = self._read(size)
                if len(data) < size:
                    raise ValueError("the worker stopped mid-answer")
                try:
                    return _Json.loads(data)["stmts"]
                except Exception:  # noqa: BLE001 - parsed here instead, which raises what it raises
                    pass
            elif status != b"!":
                self.close()  # not an answer the worker sends
        except (OSError, ValueError, struct.error):
            self.close()  # the worker died
        return parse(text)

    def close(self) -> None:
        """Stops the worker: it has answered everything, or the reading stopped early and it is killed."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self._expected:
            proc.kill()
        self._expected.clear()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Parses:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
