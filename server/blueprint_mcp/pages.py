"""Lists in an answer come in pages bounded by bytes; the cursor is the offset, so any worker can continue it."""

from __future__ import annotations

import base64
import json
from typing import TypeVar

from pydantic import BaseModel

from .model.errors import InvalidArguments

# A page holds items until their compact JSON reaches this many bytes (always at least one item): the
# first page rides along with the answer's summary; a page asked for with a cursor may be larger.
PAGE_BYTES = 2_300
NEXT_PAGE_BYTES = 24_000
T = TypeVar("T", bound=BaseModel)


def encode(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode().rstrip("=")


def decode(cursor: str | None, kind: str) -> int:
    """The offset a cursor points at; a cursor of another list or a made-up one is refused."""
    if not cursor:
        return 0
    try:
        got_kind, offset = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")
        if got_kind == kind and offset.isdigit():
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidArguments([("cursor", f"not a cursor of this tool's {kind}.",
                             "pass the next_cursor of the previous answer (same arguments otherwise), or omit it")])


def page(items: list[T], cursor: str | None, kind: str) -> tuple[list[T], str | None]:
    """The items from the cursor on that fit the byte budget, and the cursor of the rest (None at the end)."""
    start = decode(cursor, kind)
    budget = NEXT_PAGE_BYTES if cursor else PAGE_BYTES
    out, used = [], 0
    for item in items[start:]:
        size = len(json.dumps(item.model_dump(mode="json"), separators=(",", ":")))
        if out and used + size > budget:
            break
        out.append(item)
        used += size
    end = start + len(out)
    return out, (encode(kind, end) if end < len(items) else None)
