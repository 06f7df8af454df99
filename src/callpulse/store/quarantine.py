"""Quarantine entries bounded in bytes, whatever the request that made them.

A rejected request is kept for inspection and replay, but its sender is unknown: each entry's
headers, URL, errors and body are cut to fixed sizes here (the body to a setting), so what the
quarantine costs is bounded per entry, and the stores bound its total. A cut text ends in '…'
and the entry's errors say what was cut; ``body_size`` keeps the body's original size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from callpulse.store.base import QuarantineWrite

DEFAULT_MAX_BODY_BYTES = 16 * 1024  # real callbacks are under 2 KB
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_VALUE_BYTES = 1024  # one header value, one error message
MAX_NAME_BYTES = 256  # one header name, one error key
MAX_MAP_BYTES = 8 * 1024  # all headers, all errors
MAX_URL_BYTES = 2048
MAX_METHOD_BYTES = 16
NOTE = "quarantine"  # the errors key that says what was cut
ELLIPSIS = "…"
_ELLIPSIS_BYTES = len(ELLIPSIS.encode())


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` UTF-8 bytes, else its longest prefix that fits with '…'."""
    if len(text) * 4 <= limit or _size(text) <= limit:
        return text
    head = text.encode("utf-8", "surrogatepass")[: limit - _ELLIPSIS_BYTES]
    return head.decode("utf-8", "ignore") + ELLIPSIS


def _bounded_map(values: Mapping[str, str], what: str, notes: list[str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    total = 0
    left_out = left_out_bytes = 0
    for name, value in values.items():
        short_name, short_value = cut(name, MAX_NAME_BYTES), cut(value, MAX_VALUE_BYTES)
        size = _size(short_name) + _size(short_value)
        if total + size > MAX_MAP_BYTES or short_name in kept:
            left_out += 1
            left_out_bytes += _size(name) + _size(value)
            continue
        if short_value is not value:
            notes.append(f"{what} {short_name!r} cut from {_size(value)} bytes")
        if short_name is not name:
            notes.append(f"{what} name {short_name!r} cut from {_size(name)} bytes")
        kept[short_name] = short_value
        total += size
    if left_out:
        notes.append(f"{left_out} {what}s left out ({left_out_bytes} bytes)")
    return kept


def entry_size(entry: QuarantineWrite) -> int:
    """About what the entry takes in the database, as the stores count it."""
    maps = (entry.headers, entry.errors)
    return (
        len(entry.body)
        + _size(entry.url)
        + sum(_size(k) + _size(v) + 6 for m in maps for k, v in m.items())
        + 64  # the other columns and the row itself
    )


def fits(entry: QuarantineWrite, max_body_bytes: int) -> bool:
    return (
        len(entry.body) <= max_body_bytes
        and _size(entry.url) <= MAX_URL_BYTES
        and _size(entry.method) <= MAX_METHOD_BYTES
        and all(
            _size(k) <= MAX_NAME_BYTES and _size(v) <= MAX_VALUE_BYTES
            for m in (entry.headers, entry.errors)
            for k, v in m.items()
        )
        and sum(_size(k) + _size(v) for k, v in entry.headers.items()) <= MAX_MAP_BYTES
        and sum(_size(k) + _size(v) for k, v in entry.errors.items()) <= MAX_MAP_BYTES
    )


def bounded(entry: QuarantineWrite, max_body_bytes: int) -> QuarantineWrite:
    """The entry cut to the quarantine's sizes (the same entry when it fits already)."""
    if fits(entry, max_body_bytes):
        return entry
    notes: list[str] = []
    headers = _bounded_map(entry.headers, "header", notes)
    url = cut(entry.url, MAX_URL_BYTES)
    if url is not entry.url:
        notes.append(f"url cut from {_size(entry.url)} bytes")
    errors = _bounded_map(entry.errors, "error", notes)
    if notes:  # first, so it is never what the errors' own bound leaves out
        earlier = errors.pop(NOTE, "kept in part")
        errors = _bounded_map({NOTE: "; ".join([earlier, *notes]), **errors}, "error", [])
    return dataclasses.replace(
        entry,
        method=cut(entry.method, MAX_METHOD_BYTES),
        url=url,
        headers=headers,
        errors=errors,
        body=entry.body[:max_body_bytes],
    )
