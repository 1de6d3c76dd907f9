"""The gateway: routes, access, routing, cache and the command line."""

__version__ = "0.1.0"
