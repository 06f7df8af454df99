"""Caller region: the ISO country code an E.164 number belongs to."""

from __future__ import annotations

import functools

import phonenumbers

UNKNOWN = "unknown"


@functools.lru_cache(maxsize=65536)
def region_of(number: str) -> str:
    """``US``, ``GB``, ...; ``unknown`` for withheld callers and numbers no country claims.

    A number outside its country's allocated ranges (e.g. +1 555 fiction numbers) still counts
    for the main country of its calling code: the caller's country is what analytics wants.
    """
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return UNKNOWN
    region = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    )
    return UNKNOWN if region in (None, "ZZ", "001") else region
