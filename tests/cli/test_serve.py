"""`callpulse serve`: what it says at start and what it logs per callback."""

from __future__ import annotations

import ipaddress

import pytest

from callpulse.cli.serve import access_note

ANY_V4, ANY_V6 = str(ipaddress.IPv4Address(0)), str(ipaddress.IPv6Address(0))  # wildcard binds


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", ANY_V4, ANY_V6])
def test_allow_unsigned_without_a_token_is_open_on_loopback(host: str) -> None:
    note = access_note(token=False, allow_unsigned=True, host=host)
    assert "open without a token on loopback only" in note
    assert "closed to other hosts" in note and "CALLPULSE_API_TOKEN" in note


def test_allow_unsigned_on_an_outside_address_stays_closed() -> None:
    note = access_note(token=False, allow_unsigned=True, host="192.0.2.7")
    assert note.startswith(" (closed: 192.0.2.7 is not loopback")


def test_without_a_token_or_allow_unsigned_everything_is_closed() -> None:
    assert (
        access_note(False, False, "127.0.0.1") == " (closed: set CALLPULSE_API_TOKEN to open them)"
    )


def test_with_a_token_nothing_needs_saying() -> None:
    assert access_note(True, True, ANY_V4) == ""
