"""The provider's errors, each a ``ValueError`` and/or ``KeyError`` the gateway maps.

Strategy: the gateway's routes turn a ``ValueError`` from ``start_session`` into HTTP 400,
and a ``ValueError`` (execute, files) or ``KeyError`` (get, history) on a session into
404. Each error here subclasses what its route expects, and ``JupyterInterpError``, so a
caller of the provider catches them like every other error of the library.

Invariants: no message carries the token or the session secret; messages read as
sentences (``str`` of a ``KeyError`` would otherwise be quoted).
"""

from __future__ import annotations

from ..errors import JupyterInterpError, RemoteFileNotFound

__all__ = [
    "InvalidSessionId",
    "SessionFileNotFound",
    "SessionInUse",
    "SessionLimitReached",
    "SessionNotFound",
    "SessionRefused",
]


class SessionNotFound(JupyterInterpError, KeyError, ValueError):
    """No such session: never started, stopped, or its kernel is gone.

    A ``KeyError`` (the gateway answers 404 for ``get_session`` and history) and a
    ``ValueError`` (404 for execute and files), whose ``str`` reads as a sentence.
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"session {session_id!r} not found (never started, stopped or gone)")

    def __str__(self) -> str:
        return str(self.args[0])


class SessionFileNotFound(RemoteFileNotFound, ValueError):
    """The file is not in the session's folder (a ``ValueError``: the gateway's 404)."""


class SessionRefused(JupyterInterpError, ValueError):
    """``start_session`` refused the request (a ``ValueError``: the gateway's HTTP 400)."""


class InvalidSessionId(SessionRefused):
    """The caller's session id is not one every route can address."""


class SessionInUse(SessionRefused):
    """The caller's session id names a session or kernel that exists."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"session id {session_id!r} is already in use; choose another id, or start "
            "the session without one to get a fresh id"
        )


class SessionLimitReached(SessionRefused):
    """``max_sessions`` sessions are running: the start is refused (HTTP 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the provider's limit of {limit} sessions (max_sessions) is reached: stop a "
            "session before starting another"
        )
