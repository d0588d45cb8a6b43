"""Ports for test servers: picked below the ephemeral range, where no bind(0) can take them."""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_port"]

#: where Linux hands out ports for binds to port 0 and outgoing connections
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: the lowest port ``free_port`` picks (below: well-known and registered services)
_LOWEST_PICK = 10_000
_PICK_ATTEMPTS = 100


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range.

    The server binds it later, so another process may take it first. Everything that
    binds port 0 (kernels' ZMQ ports, picked the same way by jupyter_client) or
    connects out gets its port from the ephemeral range (``ip_local_port_range``), so
    a port picked at random below it can be lost only to another explicit pick. A port
    from the range itself, as a bind to port 0 gives, once went to a kernel of the
    other test worker before Kernel Gateway bound it.
    """
    try:
        ephemeral_low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = _LOWEST_PICK  # no such file: let the OS pick
    for _ in range(_PICK_ATTEMPTS if ephemeral_low > _LOWEST_PICK else 0):
        port = random.randrange(_LOWEST_PICK, ephemeral_low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen
