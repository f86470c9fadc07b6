"""A second process that runs libpg_query for the audit, so parsing overlaps with reading the trees.

Run as a script (`python -I parse_worker.py`): it imports pgparse and the standard library only, so it
starts in a few milliseconds. It reads every statement first, to the end of stdin (frames: a 4-byte
big-endian length, then the statement's UTF-8 text), so the reader can send them all while it splits the
files and never waits on a pipe in both directions. Then, for each statement in order, it writes one byte
(b"+" parsed, b"!" did not) and, after b"+", a 4-byte length and the parse tree as libpg_query's JSON
text, undecoded: the reader decodes it (with the same decoder as its own parses), and a statement that
failed here is parsed again in the reader, which raises exactly what an in-process parse would.
"""

from __future__ import annotations

import struct
import sys

_LENGTH = struct.Struct(">I")


class _Undecoded:
    """What pgparse decodes its JSON with, made to hand the text back: pgparse returns the `stmts` list."""

    @staticmethod
    def loads(text: str | bytes) -> dict:
        return {"stmts": [text]}


def serve(source, sink) -> None:
    import pgparse

    pgparse.json = _Undecoded
    texts = []
    while len(head := source.read(4)) == 4:
        texts.append(source.read(_LENGTH.unpack(head)[0]).decode("utf-8", "surrogatepass"))
    write = sink.write
    for text in texts:
        try:
            tree = pgparse.parse(text)[0]
        except Exception:  # noqa: BLE001 - the reader parses it again and reports the error itself
            write(b"!")
            continue
        data = tree.encode("utf-8", "surrogatepass") if isinstance(tree, str) else bytes(tree)
        write(b"+" + _LENGTH.pack(len(data)) + data)
    sink.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
