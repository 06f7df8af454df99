"""callpulse: receiver and analytics for inbound call status callbacks."""

__version__ = "0.1.0"
