"""Paging cursors: the position of a page's last row, as an opaque string handed out with the page and handed back
for the next. The case list and the task list use the same ones, and refuse a bad one the same way."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pathway.errors import N_, InvalidArgument

# What kind of value each sort key is in a cursor: a timestamp, a text, or a small non-negative number.
Kind = Literal["time", "text", "rank"]
NOT_HANDED_OUT = N_("not a cursor this API handed out")  # marked: said in the reader's language


class BadCursor(InvalidArgument):
    """A cursor that the list did not hand out (it is client input: one forged by hand, or cut short)."""

    def __init__(self) -> None:
        super().__init__("cursor", NOT_HANDED_OUT)


def encode_cursor(values: list[Any]) -> str:
    """The cursor of a position: its sort keys as strings, then the row's id."""
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def decode_cursor(cursor: str, kinds: list[Kind]) -> tuple[list[Any], uuid.UUID]:
    """(sort keys, row id) of the previous page's last row, each key of its ``kinds``; anything but the strings
    handed out is refused here (``BadCursor``), never by an error from deeper down."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if (not isinstance(values, list) or len(values) != len(kinds) + 1
                or not all(isinstance(v, str) for v in values)):
            raise ValueError
        bounds: list[Any] = []
        for kind, value in zip(kinds, values, strict=False):
            if kind == "time":
                bound = datetime.fromisoformat(value)
                if bound.tzinfo is None:
                    raise ValueError
                bounds.append(bound.astimezone(timezone.utc))
            elif kind == "rank":
                rank = int(value)
                if not 0 <= rank < 2**31:
                    raise ValueError
                bounds.append(rank)
            else:
                bounds.append(value)
        return bounds, uuid.UUID(values[-1])
    except (ValueError, OverflowError):
        raise BadCursor() from None
