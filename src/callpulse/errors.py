"""The base error every user-facing failure derives from: one readable line, no traceback."""


class CallpulseError(Exception):
    """An error whose message is shown to the user as is."""
