"""Text as text, checked once at the boundary: what is stored can always be exported.

A lone surrogate (JSON ``"\\ud800"``) cannot be encoded as UTF-8, and NUL or other control
characters break CSV, PostgreSQL text and terminals. Each becomes U+FFFD, and the field keeps a
note of its raw value, escaped, so nothing is lost.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
# C0 controls but tab, newline and carriage return; DEL; lone surrogates.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
WHY = "invalid text (lone surrogate or control character) replaced by U+FFFD"


def clean(value: str) -> str:
    return _INVALID.sub(REPLACEMENT, value)


def is_clean(value: str) -> bool:
    return _INVALID.search(value) is None


def escaped(value: Any) -> str:
    """``value`` as ASCII-only JSON text: lone surrogates and controls spelled as escapes."""
    return json.dumps(value, ensure_ascii=True)


def _clean_value(value: Any) -> tuple[Any, bool]:
    if isinstance(value, str):
        return (value, False) if is_clean(value) else (clean(value), True)
    if isinstance(value, list):
        items = [_clean_value(v) for v in value]
        return [v for v, _ in items], any(changed for _, changed in items)
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            new_item, item_changed = _clean_value(item)
            new_key = clean(key)
            cleaned[new_key] = new_item
            changed = changed or item_changed or new_key != key
        return cleaned, changed
    return value, False


def clean_fields(fields: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Every key and value (nested too) as clean text, and (field, raw value escaped) for each
    field that had to change."""
    values = fields.values()
    if all(isinstance(v, str) for v in values) and is_clean("".join(fields) + "".join(values)):
        return dict(fields), []  # what every callback is: one scan, not one per field
    cleaned: dict[str, Any] = {}
    changed_fields: list[tuple[str, str]] = []
    for key, value in fields.items():
        new_value, changed = _clean_value(value)
        new_key = clean(key)
        if changed or new_key != key:
            changed_fields.append((new_key, escaped(value)))
        cleaned[new_key] = new_value
    return cleaned, changed_fields
