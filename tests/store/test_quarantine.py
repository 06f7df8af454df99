"""Quarantine entries and the quarantine as a whole are bounded in bytes, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callpulse.config import ConfigError, Settings, load_settings
from callpulse.store import Store, open_store
from callpulse.store.base import QuarantineWrite
from callpulse.store.quarantine import (
    DEFAULT_MAX_BODY_BYTES,
    ELLIPSIS,
    MAX_MAP_BYTES,
    MAX_URL_BYTES,
    MAX_VALUE_BYTES,
    NOTE,
    bounded,
)
from tests.store.test_store import NOW

MIB = 1024 * 1024


def flood_entry(
    n: int = 0, header_bytes: int = 8 * MIB, body_bytes: int = 60_000
) -> QuarantineWrite:
    headers = {"content-type": "application/x-www-form-urlencoded", "x-big": "h" * header_bytes}
    headers |= {f"x-extra-{i}": "v" * 900 for i in range(20)}  # 18 KB more in smaller headers
    return QuarantineWrite(
        NOW, "signature", {"X-SignalWire-Signature": "missing"}, "POST",
        "http://h/cb?" + "q" * 10_000, headers, f"{n:08d}".encode() + b"b" * body_bytes,
        body_bytes + 8,
    )  # fmt: skip


def utf8(text: str) -> int:
    return len(text.encode())


def test_an_entry_keeps_bounded_bytes_and_says_what_was_cut(store: Store) -> None:
    sent = flood_entry()
    store.write_batch([sent])
    (entry,) = store.list_quarantine()
    assert len(entry.body) == DEFAULT_MAX_BODY_BYTES and entry.body == sent.body[: len(entry.body)]
    assert entry.body_size == sent.body_size  # so the entry is known to be truncated
    big = entry.headers["x-big"]
    assert big.endswith(ELLIPSIS) and utf8(big) <= MAX_VALUE_BYTES and big.startswith("hhh")
    assert entry.headers["content-type"] == "application/x-www-form-urlencoded"  # kept whole
    assert sum(utf8(k) + utf8(v) for k, v in entry.headers.items()) <= MAX_MAP_BYTES
    assert entry.url.endswith(ELLIPSIS) and utf8(entry.url) <= MAX_URL_BYTES
    assert entry.errors["X-SignalWire-Signature"] == "missing"
    note = entry.errors[NOTE]
    assert f"'x-big' cut from {8 * MIB} bytes" in note
    assert "headers left out" in note and "url cut from 10012 bytes" in note


def test_an_entry_that_fits_is_kept_as_sent() -> None:
    small = flood_entry(header_bytes=10, body_bytes=100)
    small = QuarantineWrite(
        small.received_at, small.reason, small.errors, small.method, "http://h/cb",
        {"content-type": "x"}, small.body, small.body_size,
    )  # fmt: skip
    assert bounded(small, DEFAULT_MAX_BODY_BYTES) is small
    cut_once = bounded(flood_entry(), DEFAULT_MAX_BODY_BYTES)
    assert bounded(cut_once, DEFAULT_MAX_BODY_BYTES) is cut_once  # cutting again changes nothing


def test_multibyte_text_is_cut_on_a_character_boundary() -> None:
    entry = bounded(flood_entry(header_bytes=0), DEFAULT_MAX_BODY_BYTES)
    assert entry.headers["x-big"] == ""
    wide = QuarantineWrite(
        NOW, "invalid", {}, "POST", "http://h/cb", {"x-wide": "é" * 5000}, b"", 0
    )
    value = bounded(wide, DEFAULT_MAX_BODY_BYTES).headers["x-wide"]
    assert value == "é" * ((MAX_VALUE_BYTES - utf8(ELLIPSIS)) // 2) + ELLIPSIS


@pytest.fixture
def small_store(database_url: str) -> Iterator[Store]:
    backend = open_store(
        Settings(
            database_url=database_url,
            quarantine_max_bytes=100_000,
            quarantine_max_body_bytes=20_000,
        )
    )
    backend.upgrade()
    yield backend
    backend.close()


def test_the_quarantine_is_bounded_in_total_bytes(small_store: Store) -> None:
    for n in range(12):  # about 30 KB each once cut: 3 fit in 100,000 bytes
        small_store.write_batch([flood_entry(n)])
    kept, dropped = small_store.quarantine_counts()
    assert (kept, dropped) == (3, 9)
    entries = small_store.list_quarantine()
    assert [e.body[:8] for e in entries] == [b"00000011", b"00000010", b"00000009"]  # newest
    assert all(len(e.body) == 20_000 for e in entries)
    small_store.write_batch([flood_entry(n) for n in range(12, 17)])  # one batch, over at once
    assert small_store.quarantine_counts() == (3, 14)
    assert small_store.list_quarantine()[0].body[:8] == b"00000016"


def test_quarantine_size_settings_are_read_and_checked() -> None:
    settings = load_settings(
        {"CALLPULSE_QUARANTINE_MAX_BODY_BYTES": "4096", "CALLPULSE_QUARANTINE_MAX_BYTES": "1000000"}
    )
    assert (settings.quarantine_max_body_bytes, settings.quarantine_max_bytes) == (4096, 10**6)
    assert load_settings({}).quarantine_max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert load_settings({}).quarantine_max_bytes == 64 * MIB
    for name in ("CALLPULSE_QUARANTINE_MAX_BODY_BYTES", "CALLPULSE_QUARANTINE_MAX_BYTES"):
        with pytest.raises(ConfigError, match=name):
            load_settings({name: "0"})
        with pytest.raises(ConfigError, match=name):
            load_settings({name: "lots"})
