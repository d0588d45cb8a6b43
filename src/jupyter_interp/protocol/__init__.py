"""Sans-I/O core of jupyter_interp: Jupyter messages, framings, execution tracking.

Everything here is pure: it never awaits, sleeps, reads a clock, makes randomness or
touches a socket; ids and clocks are injected. It imports only the standard library
and attrs (``tests/test_boundaries.py`` proves it), so gateways with their own I/O can
use it directly.
"""

from __future__ import annotations

from .messages import CHANNELS, PROTOCOL_VERSION, Header, Message, MessageFactory, format_date

__all__ = [
    "CHANNELS",
    "PROTOCOL_VERSION",
    "Header",
    "Message",
    "MessageFactory",
    "format_date",
]
