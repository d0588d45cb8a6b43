"""File transfer on a kernel: the routes that move bytes between caller and kernel.

``transfer`` is ``FileTransfer``, a Session's file operations through kernel-side
snippets; ``contents`` the Jupyter Server Contents API route (``replace`` puts its
uploads in place and recovers from a crash in between); ``direct`` large
downloads over the server's ``files/`` URL; ``sinks`` where downloaded bytes go;
``pipeline`` keeps a window of chunk executions in flight.

May import: ``jupyter_interp.errors``, ``protocol`` and ``io``. It never imports
``session``: what it needs of a Session is the narrow ``TransferHost`` protocol.
"""

from __future__ import annotations

from .sources import UploadSource
from .transfer import FileTransfer

__all__ = ["FileTransfer", "UploadSource"]
