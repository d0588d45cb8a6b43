"""Thin anyio adapters: the only code in jupyter_interp that awaits.

``http`` runs ``protocol.rest`` requests on an httpx client; ``websocket`` drives
wsproto over an anyio byte stream, which ``connect`` opens; ``tls`` turns ``verify``
into TLS settings for both. Both map every dependency exception to
``jupyter_interp.errors``. ``stop_signal`` lets a periodic task end when asked
instead of being cancelled (cancelled tasks leave reference cycles on asyncio);
``signals`` turns SIGINT/SIGTERM into cancellation, so clean-up runs. Import the
submodules directly; this package re-exports nothing, so importing it loads neither
httpx nor wsproto.

May import: ``jupyter_interp.errors`` and ``protocol`` (and anyio, httpx, wsproto).
"""

from __future__ import annotations

__all__: list[str] = []
