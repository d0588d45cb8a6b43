"""Session: one kernel, one execution at a time, over one WebSocket.

``session`` is the public ``Session``; ``channel`` owns its WebSocket, reader task,
readiness and reconnects, with ``opening`` (the first WebSocket: retries, kernel
watch); ``keepalive`` is the Client's one task for every session's pings and kernel
checks; ``run`` drives one execution's wait, deadline and recovery; ``stream`` is what
``Session.stream`` returns, and the gate that runs executions one at a time;
``kernel_link`` says how to reach the kernel (REST and WebSocket URLs, TLS, the message
factory). Helpers take the channel as a narrow ``typing.Protocol`` (``RunHost``,
``OpeningHost``, ``KeepAliveHost``), never import ``Session``.

May import: ``jupyter_interp.errors``, ``config``, ``protocol``, ``io`` and ``files``
(a Session hands ``files`` the narrow ``TransferHost`` interface, never the reverse).
"""

from __future__ import annotations

from .session import Session

__all__ = ["Session"]
