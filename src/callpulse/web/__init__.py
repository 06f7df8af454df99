"""The ASGI application: callback endpoint, health and metrics."""
