"""The webhook notification: a Slack-compatible ``text`` and the structured fields, signed."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from callpulse.alerts.evaluate import FIRING, Transition
from callpulse.alerts.rules import Rule, format_span

SIGNATURE_HEADER = "X-Callpulse-Signature"


def figure(metric: str, value: float | None) -> str:
    """A value of ``metric`` as people read it: 92.5%, 3.41, 0.30x the usual calls."""
    if value is None:
        return "no figure"
    if metric in ("success_rate", "poor_rate"):
        return f"{value:.1%}"
    if metric == "volume":
        return f"{value:.2f}x the usual calls"
    if metric == "no_data":
        return f"{value:.0f} calls"
    return f"{value:.2f}"


def text(t: Transition, rule: Rule) -> str:
    what = {FIRING: "FIRING", "resolved": "RESOLVED"}.get(t.to_state, t.to_state.upper())
    again = " (still firing)" if t.from_state == t.to_state == FIRING else ""
    return (
        f"[{what}] {t.rule} ({rule.severity}){again}: {rule.metric} "
        f"{figure(rule.metric, t.value)} on {t.scope} over {format_span(rule.window)} "
        f"(threshold {figure(rule.metric, t.threshold)})"
    )


def payload(t: Transition, rule: Rule, dashboard_url: str = "") -> dict[str, Any]:
    return {
        "text": text(t, rule),
        "rule": t.rule,
        "state": t.to_state,
        "previous_state": t.from_state,
        "severity": t.severity,
        "metric": rule.metric,
        "scope": t.scope,
        "value": t.value,
        "threshold": t.threshold,
        "window": format_span(rule.window),
        "started_at": None if t.started_at is None else t.started_at.isoformat(),
        "at": t.at.isoformat(),
        "dashboard_url": dashboard_url,
    }


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Callpulse-Signature value: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, now: float | None = None, tolerance_s: int = 300
) -> bool:
    """A receiver's check of an X-Callpulse-Signature over the raw ``body`` (README
    "Notifications"): the HMAC matches and its timestamp is within ``tolerance_s`` of ``now``."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False  # not the shape callpulse sends
    now = time.time() if now is None else now
    expected = signature(secret, timestamp, body).partition(",v1=")[2]
    return abs(now - timestamp) <= tolerance_s and hmac.compare_digest(expected, given)
