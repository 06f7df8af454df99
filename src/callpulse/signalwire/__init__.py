"""The SignalWire side: the Compatibility REST API, and a local emulator of it."""
