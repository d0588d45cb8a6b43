"""Session: one kernel, one execution at a time, over one WebSocket.

``session`` is the public ``Session``; ``channel`` owns its WebSocket, reader task,
readiness and reconnects; ``run`` drives one execution's wait, deadline and recovery;
``kernel_link`` says how to reach the kernel (REST and WebSocket URLs, the message
factory).

May import: ``jupyter_interp.errors``, ``config``, ``protocol``, ``io`` and ``files``
(a Session hands ``files`` the narrow ``TransferHost`` interface, never the reverse).
"""

from __future__ import annotations

from .session import Session

__all__ = ["Session"]
