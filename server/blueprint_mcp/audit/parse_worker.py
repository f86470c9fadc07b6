"""A second process that runs libpg_query for the audit, so parsing overlaps with reading the trees.

Run as a script (`python -P parse_worker.py`): it imports pgparse and the standard library only, so it
starts in a few milliseconds. It reads every statement first, to the end of stdin (UTF-8, each ended by
a NUL, which the reader has replaced in the SQL: libpg_query reads C strings), so the reader can send them
all while it splits the files and never waits on a pipe in both directions. Then, for each statement in
order, it writes a 5-byte header, b"+" (parsed) or b"!" (not) and a big-endian length, and after b"+"
the parse tree as libpg_query's JSON text, undecoded: the reader decodes it (with the same decoder as its
own parses), and a statement that failed here is parsed again in the reader, which raises exactly what an
in-process parse would.
"""

from __future__ import annotations

import struct
import sys

_HEADER = struct.Struct(">cI")
FAILED = _HEADER.pack(b"!", 0)


class _Undecoded:
    """What pgparse decodes its JSON with, made to hand the text back: pgparse returns the `stmts` list."""

    @staticmethod
    def loads(text: str | bytes) -> dict:
        return {"stmts": [text]}


def serve(source, sink) -> None:
    import pgparse

    pgparse.json = _Undecoded
    texts = source.read().decode("utf-8", "surrogatepass").split("\x00")[:-1]
    write, header = sink.write, _HEADER.pack
    for text in texts:
        try:
            tree = pgparse.parse(text)[0]
        except Exception:  # noqa: BLE001 - the reader parses it again and reports the error itself
            write(FAILED)
            continue
        data = tree.encode("utf-8", "surrogatepass") if isinstance(tree, str) else bytes(tree)
        write(header(b"+", len(data)) + data)
    sink.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
