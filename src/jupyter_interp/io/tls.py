"""TLS settings from a ``verify`` value, one way for HTTP and the WebSocket alike.

``verify`` is what users pass (as httpx takes it): ``True`` for the system's trust
store, ``False`` to skip certificate and hostname checks, or the path of a CA bundle
file or directory. A path that cannot be loaded is the caller's mistake
(``LocalProtocolError``), reported before any connection is tried.
"""

from __future__ import annotations

import os
import ssl

from ..errors import LocalProtocolError

__all__ = ["ca_context", "ssl_context_for"]


def ssl_context_for(verify: bool | str) -> ssl.SSLContext:
    """The ``ssl.SSLContext`` that ``verify`` asks for.

    Raises:
        LocalProtocolError: ``verify`` names no readable CA file or directory.
    """
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if not isinstance(verify, str):
        return ssl.create_default_context()
    return ca_context(verify)


def ca_context(verify: str) -> ssl.SSLContext:
    """A TLS context trusting the CA bundle at ``verify`` (a file, or a directory).

    Raises:
        LocalProtocolError: no readable CA bundle there (the message names the path).
    """
    try:
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError) as exc:
        raise LocalProtocolError(
            f"cannot load the CA bundle {verify!r} given as verify=: {exc}"
        ) from exc
