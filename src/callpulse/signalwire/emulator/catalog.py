"""Phone numbers the emulator hands out: E.164 numbers in US area codes, with friendly names."""

from __future__ import annotations

import random
from collections.abc import Collection

import phonenumbers

from callpulse.signalwire.emulator.errors import INVALID_PHONE_NUMBER, NUMBER_UNAVAILABLE, ApiError
from callpulse.signalwire.emulator.state import PhoneNumber, Project

AREA_CODES = {
    "212": "New York",
    "312": "Chicago",
    "415": "San Francisco",
    "512": "Austin",
    "617": "Boston",
    "206": "Seattle",
    "305": "Miami",
    "404": "Atlanta",
    "303": "Denver",
    "702": "Las Vegas",
}
DESKS = ("Sales", "Support", "Billing", "Reception", "Claims", "Helpdesk", "Bookings", "Returns")
_TRIES = 1000


def e164(text: str) -> str:
    """``text`` if it is a plausible E.164 number, else the API's 21421 error."""
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if (
        parsed is None
        or not phonenumbers.is_possible_number(parsed)
        or phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != text
    ):
        raise ApiError(
            400, INVALID_PHONE_NUMBER, f"PhoneNumber must be E.164 like +14155550123, got {text!r}"
        )
    return text


def national(number: str) -> str:
    """The number as people write it at home, the default friendly name: (415) 555-0123."""
    return phonenumbers.format_number(
        phonenumbers.parse(number, None), phonenumbers.PhoneNumberFormat.NATIONAL
    )


def free_number(rng: random.Random, area_code: str, taken: Collection[str]) -> str:
    """A number in ``area_code`` that is not in ``taken`` (exchange 2xx-9xx, never N11)."""
    if not (len(area_code) == 3 and area_code.isdigit() and area_code[0] in "23456789"):
        raise ApiError(400, INVALID_PHONE_NUMBER, f"AreaCode must be 3 digits, got {area_code!r}")
    for _ in range(_TRIES):
        exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(2, 9)}"
        number = f"+1{area_code}{exchange}{rng.randint(0, 9999):04d}"
        if number not in taken:
            return number
    raise ApiError(400, NUMBER_UNAVAILABLE, f"No phone numbers left in area code {area_code}")


def seed_numbers(project: Project, count: int, rng: random.Random) -> list[PhoneNumber]:
    """``count`` numbers across the catalog's area codes, named after a desk and a city."""
    areas = list(AREA_CODES.items())
    created = []
    taken = {n.phone_number for n in project.numbers()}
    for index in range(count):
        area_code, city = areas[index % len(areas)]
        number = free_number(rng, area_code, taken)
        taken.add(number)
        name = f"{DESKS[index // len(areas) % len(DESKS)]} {city}"
        created.append(project.add_number(number, {"friendly_name": name}))
    return created
