"""The parser's fast paths agree with the standard library: the canonical RFC 2822 Timestamp
with ``email.utils`` on every string it takes, valid or not; form values with ``unquote_plus``."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callpulse.callback import unquote_form
from callpulse.timestamps import _canonical_rfc2822, parse

_ZONES = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
_TIMES = st.datetimes(datetime(1971, 1, 1), datetime(2098, 12, 31), timezones=_ZONES)
_DIGITS = st.text("0123456789", min_size=2, max_size=2)


def _email_utils(value: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


@given(_TIMES)
def test_every_canonical_time_reads_as_email_utils_reads_it(moment: datetime) -> None:
    text = email.utils.format_datetime(moment.replace(microsecond=0))
    assert _canonical_rfc2822(text) == _email_utils(text) == moment.replace(microsecond=0)


@given(_DIGITS, _DIGITS, _DIGITS, _DIGITS, _DIGITS, st.sampled_from("+-"), _DIGITS)
def test_out_of_range_parts_fail_as_email_utils_fails(
    day: str, hour: str, minute: str, second: str, zone_h: str, sign: str, zone_m: str
) -> None:
    text = f"Thu, {day} Feb 2024 {hour}:{minute}:{second} {sign}{zone_h}{zone_m}"
    try:
        fast = _canonical_rfc2822(text)
    except ValueError:
        fast = None
    slow = _email_utils(text)
    if slow is not None and slow.tzinfo is None:  # "-0000": UTC, the zone unknown
        slow = slow.replace(tzinfo=UTC)
    assert fast == slow


@pytest.mark.parametrize(
    "text",
    [
        "Thur, 20 Sept 2018 10:00:00 +0000",
        "20 Sep 2018 10:00:00 +0000",
        "Thu, 20 Sep 2018 10:00:00 GMT",
        "Thu, 4 Apr 2024 18:32:15 +0000",
        "2024-04-04T18:32:15Z",
    ],
)
def test_other_forms_are_left_to_the_general_reading(text: str) -> None:
    assert _canonical_rfc2822(text) is None
    assert parse(text)[1] is None


_FORM_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["%", "+", "%2B", "%C3%A9", "%e9", "%zz", "%0", "%%", "%F0%9F%93%9E"]),
        st.characters(blacklist_categories=["Cs"]),  # (decoded from UTF-8: no lone surrogates)
    )
).map("".join)


@given(_FORM_TEXT)
def test_form_values_unquote_as_the_standard_library_does(value: str) -> None:
    assert unquote_form(value) == unquote_plus(value)
