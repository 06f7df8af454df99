"""Filters from what a person typed (API query, CLI options), checked and normalised."""

from __future__ import annotations

import re

from callpulse.analytics.errors import QueryError
from callpulse.analytics.models import Filters
from callpulse.callback import WITHHELD

_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# '+' in a query string decodes to a space when the client forgot to write %2B: accept it.
_E164 = re.compile(r"[+ ]?(\d{1,15})")
_REGION = re.compile(r"[A-Za-z]{2}")


def _e164(parameter: str, value: str, extra: str = "") -> str:
    match = _E164.fullmatch(value)
    if match is None:
        raise QueryError(
            parameter,
            f"expected an E.164 number such as +18005559876{extra} (in a URL write '+' as %2B), "
            f"got {value!r}",
        )
    return "+" + match.group(1)


def make_filters(
    account_sid: str | None = None,
    to: str | None = None,
    region: str | None = None,
    caller: str | None = None,
) -> Filters:
    """Raises QueryError naming the parameter (account_sid, to, region or caller)."""
    if account_sid is not None and not _SID.fullmatch(account_sid):
        raise QueryError("account_sid", "expected 1-64 letters, digits, '-' or '_'")
    if to is not None:
        to = _e164("to", to)
    if region is not None:
        if region.lower() == "unknown":
            region = "unknown"
        elif _REGION.fullmatch(region):
            region = region.upper()
        else:
            raise QueryError(
                "region",
                f"expected a two-letter country code such as US, or unknown; got {region!r}",
            )
    if caller is not None and caller != WITHHELD:
        caller = _e164("caller", caller, f" or {WITHHELD}")
    return Filters(account_sid=account_sid, to=to, region=region, caller=caller)
