"""Who a provider session is: its id checked, its kernel id and folder derived with a secret.

Strategy: any replica must find a session's kernel from the session id alone, yet no
caller may compute another caller's kernel id or folder from a name it learned. Both are
HMAC-SHA256 of the session id under the provider's ``session_secret``, with a label per
use, so the kernel id and the folder name are unrelated to each other and to the id:

* kernel id: the first 16 bytes of ``HMAC(secret, "kernel-id" NUL session id)`` as a
  UUID with the version bits of a v4 (Enterprise Gateway accepts only v4 ids);
* folder: ``jupyter-interp-`` and 32 hex digits of ``HMAC(secret, "folder" NUL id)``.

Replicas that share the secret re-attach each other's sessions; without a configured
secret, one is generated once per process (shared by every provider instance in it, so
a config reload keeps its sessions) and logged as missing: then only this process can
re-attach the sessions it started.

Session ids a caller chooses are checked before anything is started: 1 to 128
characters, each one a gateway route can carry in one path segment unescaped
(``A-Z a-z 0-9 - _ . ~ : @``), and not only dots (``.``/``..`` are path steps).

Invariants: the secret never appears in a ``repr``, log line or error message; the
derivations are pure functions of (secret, session id).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid

from .errors import InvalidSessionId

__all__ = [
    "MAX_SESSION_ID_LENGTH",
    "MIN_SECRET_LENGTH",
    "SessionIdentity",
    "check_session_id",
    "generated_secret",
    "new_session_id",
]

logger = logging.getLogger("jupyter_interp.provider")

MAX_SESSION_ID_LENGTH = 128
#: shortest ``session_secret`` accepted (characters): a guessable secret protects nothing
MIN_SECRET_LENGTH = 16
_SESSION_ID = re.compile(rf"[A-Za-z0-9._~:@-]{{1,{MAX_SESSION_ID_LENGTH}}}")
_FOLDER_PREFIX = "jupyter-interp-"

_process_secret: str | None = None


def new_session_id() -> str:
    """A fresh session id for a caller that gave none."""
    return str(uuid.uuid4())


def check_session_id(session_id: object) -> str:
    """``session_id`` if routes can address it, else ``InvalidSessionId`` saying why."""
    if not isinstance(session_id, str):
        raise InvalidSessionId(f"a session id must be a string, not {type(session_id).__name__}")
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        raise InvalidSessionId(
            f"a session id may have at most {MAX_SESSION_ID_LENGTH} characters, "
            f"not {len(session_id)}"
        )
    if not _SESSION_ID.fullmatch(session_id) or not session_id.strip("."):
        raise InvalidSessionId(
            f"session id {session_id!r} is not allowed: use 1 to {MAX_SESSION_ID_LENGTH} "
            "letters, digits and '-', '_', '.', '~', ':', '@' (not only dots; no '/', "
            "spaces or control characters)"
        )
    return session_id


def generated_secret() -> str:
    """This process's stand-in secret, made on first use and logged as missing once."""
    global _process_secret
    if _process_secret is None:
        _process_secret = secrets.token_urlsafe(32)
        logger.warning(
            "no session_secret is configured (JUPYTER_INTERP_SESSION_SECRET): using one "
            "generated for this process. Sessions can then be re-attached only by this "
            "process: not by other replicas, nor after a restart, which orphans their "
            "kernels until the server culls them. Give every replica the same secret."
        )
    return _process_secret


class SessionIdentity:
    """Derives kernel ids and folder names from session ids under one secret."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode("utf-8")

    def __repr__(self) -> str:
        return "<SessionIdentity>"

    def _mac(self, label: bytes, session_id: str) -> bytes:
        message = label + b"\0" + session_id.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def kernel_id(self, session_id: str) -> str:
        """The id the session's kernel is started with: a canonical UUID v4."""
        return str(uuid.UUID(bytes=self._mac(b"kernel-id", session_id)[:16], version=4))

    def folder_name(self, session_id: str) -> str:
        """The name of the session's folder under the file root (reveals nothing)."""
        return _FOLDER_PREFIX + self._mac(b"folder", session_id)[:16].hex()

    def folder(self, file_root: str, session_id: str) -> str:
        """The session's folder on the kernel's side."""
        return f"{file_root.rstrip('/')}/{self.folder_name(session_id)}"
