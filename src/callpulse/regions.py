"""Caller region: the ISO country code an E.164 number belongs to."""

from __future__ import annotations

import functools

import phonenumbers

UNKNOWN = "unknown"
SIP = "sip"  # callers that are SIP URIs, not numbers
CLIENT = "client"  # client:name identifiers of SDK endpoints


@functools.lru_cache(maxsize=65536)
def region_of(number: str) -> str:
    """``US``, ``GB``, ...; ``sip`` or ``client`` for callers of those kinds; ``unknown`` for
    withheld callers, numbers no country claims and anything else.

    A number outside its country's allocated ranges (e.g. +1 555 fiction numbers) still counts
    for the main country of its calling code: the caller's country is what analytics wants.
    """
    lowered = number[:7].lower()
    if lowered.startswith(("sip:", "sips:")):
        return SIP
    if lowered.startswith("client:"):
        return CLIENT
    if not number.startswith("+"):
        return UNKNOWN
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return UNKNOWN
    region = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    )
    return UNKNOWN if region in (None, "ZZ", "001") else region
