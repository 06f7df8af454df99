"""IANA time zones by name, refused with an error that says what a valid name looks like."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_NAME = 64  # the longest IANA name is about 30 characters


def zone(name: str) -> ZoneInfo:
    """The zone ``name`` (``UTC``, ``Europe/Berlin``); ValueError naming the fix otherwise."""
    fix = "give an IANA time zone name such as Europe/Berlin, America/New_York or UTC"
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"unknown time zone {name[:MAX_NAME]!r}: {fix}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "America"
        raise ValueError(f"unknown time zone {name!r}: {fix}") from None
