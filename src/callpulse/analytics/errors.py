"""The error of a question analytics cannot answer as asked (its own module, so the filters and
the alert rules that check their scopes with them need nothing else of analytics)."""

from __future__ import annotations

from callpulse.errors import CallpulseError


class QueryError(CallpulseError, ValueError):
    """A question analytics cannot answer as asked; ``parameter`` names what to change."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
