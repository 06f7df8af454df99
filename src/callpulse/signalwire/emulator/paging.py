"""List paging as the API does it: ``Page``/``PageSize``/``PageToken`` in, an envelope out.

A ``PageToken`` marks a position in the list's order (after or before an item's sort key), so a
client following ``next_page_uri`` neither skips nor repeats items while new ones are added.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from callpulse.signalwire.emulator.errors import INVALID_PAGE_SIZE, ApiError, invalid

T = TypeVar("T")
SortKey = tuple[int, ...]
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class PageRequest:
    page: int
    size: int
    token: str | None

    @classmethod
    def of(cls, query: Mapping[str, str]) -> PageRequest:
        size_text = query.get("PageSize", str(DEFAULT_PAGE_SIZE))
        if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
            raise ApiError(
                400,
                INVALID_PAGE_SIZE,
                f"PageSize must be a whole number from 1 to {MAX_PAGE_SIZE}, got {size_text!r}",
            )
        page_text = query.get("Page", "0")
        if not page_text.isdigit():
            raise invalid("Page", f"must be a whole number from 0, got {page_text!r}")
        return cls(int(page_text), int(size_text), query.get("PageToken") or None)


def _token(direction: str, key: SortKey) -> str:
    return direction + base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[str, SortKey]:
    direction, data = token[:2], token[2:]
    try:
        key = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if direction not in ("PA", "PB") or not (
        isinstance(key, list) and all(isinstance(part, int) for part in key)
    ):
        raise invalid("PageToken", f"is not a token this API gave out: {token!r}")
    return direction, tuple(key)


def paginate(
    items: Sequence[T],
    sort_key: Callable[[T], SortKey],
    request: PageRequest,
    *,
    name: str,
    path: str,
    filters: Sequence[tuple[str, str]],
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """The envelope for one page of ``items`` (already in ``sort_key`` order)."""
    keys = [sort_key(item) for item in items]
    if request.token is None:
        start = request.page * request.size
    else:
        direction, key = _untoken(request.token)
        if direction == "PA":
            start = bisect.bisect_right(keys, key)
        else:
            start = max(0, bisect.bisect_left(keys, key) - request.size)
    chunk = items[start : start + request.size]

    def uri(page: int, token: str | None) -> str:
        query = [*filters, ("PageSize", str(request.size)), ("Page", str(page))]
        if token is not None:
            query.append(("PageToken", token))
        return f"{path}?{urlencode(query)}"

    has_next = start + len(chunk) < len(items)
    return {
        "uri": uri(request.page, request.token),
        "first_page_uri": uri(0, None),
        "next_page_uri": uri(request.page + 1, _token("PA", keys[start + len(chunk) - 1]))
        if chunk and has_next
        else None,
        "previous_page_uri": uri(max(0, request.page - 1), _token("PB", keys[start]))
        if chunk and start > 0
        else None,
        "page": request.page,
        "page_size": request.size,
        "start": start,
        "end": start + max(len(chunk) - 1, 0),
        name: [render(item) for item in chunk],
    }
