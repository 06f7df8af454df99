"""A call's data problems as the JSON the ``problems`` column (and the spool) holds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from callpulse.callback import Problem


def problems_to_json(problems: Sequence[Problem]) -> str:
    return json.dumps([p.as_dict() for p in problems], ensure_ascii=False)


def problems_from_json(value: Any) -> tuple[Problem, ...]:
    items = json.loads(value) if isinstance(value, str) else value or []
    return tuple(Problem(p["field"], p["value"], p["why"]) for p in items)
