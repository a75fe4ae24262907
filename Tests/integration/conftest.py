"""Fixtures for the live-server tests; they live in tallytest so the browser tests share them."""
from tallytest import redis_server, start_tally  # noqa: F401  (pytest finds fixtures by name here)
