"""What goes wrong with a store, as the two errors every caller tells apart."""

from __future__ import annotations

from callpulse.errors import CallpulseError


class StoreUnavailable(CallpulseError):
    """The database cannot take writes or answer reads right now (down, locked, disk full)."""


class StoreRefused(CallpulseError):
    """The database refuses this data (a value it cannot hold); retrying will not help."""
