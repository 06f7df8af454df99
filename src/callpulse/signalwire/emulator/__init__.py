"""A local emulator of SignalWire's Compatibility REST API (numbers, calls, status callbacks).

``create_app(Emulator(EmulatorConfig(...)))`` is an ASGI app; ``callpulse emulate`` serves it.
"""

from callpulse.signalwire.emulator.app import create_app
from callpulse.signalwire.emulator.service import Emulator, EmulatorConfig

__all__ = ["Emulator", "EmulatorConfig", "create_app"]
