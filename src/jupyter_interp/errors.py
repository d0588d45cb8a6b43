"""One exception hierarchy for the whole library.

Strategy: every failure a caller can see is a ``JupyterInterpError``; the I/O layer
translates httpx/anyio/wsproto exceptions into these (``raise ... from exc``), so no
dependency exception leaks. A failing *user program* is never an exception: it is data
in ``ExecutionResult`` (see ``protocol.execution``).

Invariant: no message, ``repr`` or attribute of these exceptions carries an auth token.
Code that builds them from server answers uses the server's reason text, never our
request headers.

::

    JupyterInterpError
    ├── ProtocolError
    │   ├── LocalProtocolError          the caller misused an object
    │   │   └── InvalidArgument         (also ValueError) a value out of range: timeout <= 0
    │   └── RemoteProtocolError         the server sent bytes/messages we cannot accept
    ├── TransportError
    │   ├── ConnectError                nothing listening, DNS, TLS handshake failure
    │   ├── TransportTimeout            a transport-level deadline passed (also TimeoutError)
    │   ├── ConnectionClosed            the WebSocket closed (code, reason)
    │   └── MessageTooLarge             an incoming message exceeded our cap
    ├── ServerError                     an HTTP error answer (status, reason)
    │   ├── AuthenticationError         401/403 for a missing or wrong token
    │   ├── NotFoundError               404
    │   │   ├── KernelNotFound
    │   │   └── KernelSpecNotFound
    │   ├── ResourceLimitError          gateway 403 "resource limit" / max kernels
    │   └── KernelLaunchError           the server could not start the kernel
    │       └── KernelLaunchTimeout
    ├── KernelError
    │   ├── KernelDied                  the kernel process is gone and was not restarted
    │   └── KernelUnavailable           the session cannot reach its kernel any more
    ├── FileTransferError
    │   ├── PathNotConfined             (also ValueError) absolute, '..', NUL, symlink escape
    │   ├── RemoteFileNotFound          (also FileNotFoundError)
    │   ├── PathConflict                (also ValueError) a directory where a file is
    │   │                                 meant, or a file where a directory is
    │   ├── ChecksumMismatch
    │   └── UnsupportedKernel           no file snippets for this kernel language
    ├── SessionClosed                   the Session was shut down or its context exited
    └── MissingDependency               (also ImportError) an optional extra is not installed
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ChecksumMismatch",
    "ConnectError",
    "ConnectionClosed",
    "FileTransferError",
    "InvalidArgument",
    "JupyterInterpError",
    "KernelDied",
    "KernelError",
    "KernelLaunchError",
    "KernelLaunchTimeout",
    "KernelNotFound",
    "KernelSpecNotFound",
    "KernelUnavailable",
    "LocalProtocolError",
    "MessageTooLarge",
    "MissingDependency",
    "NotFoundError",
    "PathConflict",
    "PathNotConfined",
    "ProtocolError",
    "RemoteFileNotFound",
    "RemoteProtocolError",
    "ResourceLimitError",
    "ServerError",
    "SessionClosed",
    "TransportError",
    "TransportTimeout",
    "UnsupportedKernel",
]


class JupyterInterpError(Exception):
    """Base class of every error this library raises."""


class ProtocolError(JupyterInterpError):
    """A violation of the Jupyter messaging or WebSocket protocol."""


class LocalProtocolError(ProtocolError):
    """We (or the caller) did something the protocol or an object's state forbids."""


class InvalidArgument(LocalProtocolError, ValueError):
    """An argument's value is out of its range (a ``timeout`` of 0, say); a ``ValueError``."""


class RemoteProtocolError(ProtocolError):
    """The server or kernel sent something malformed or unexpected."""


class TransportError(JupyterInterpError):
    """The network path to the server failed."""


class ConnectError(TransportError):
    """Could not connect (refused, unreachable, TLS handshake failed)."""


class TransportTimeout(TransportError, TimeoutError):
    """A transport-level deadline (connect, handshake, HTTP read) passed."""


class ConnectionClosed(TransportError):
    """The WebSocket connection closed; ``code`` and ``reason`` come from the close frame."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))


class MessageTooLarge(TransportError):
    """An incoming WebSocket message exceeded the configured maximum size."""


class ServerError(JupyterInterpError):
    """The server answered an HTTP request with an error status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message if status is None else f"{message} (HTTP {status})")


class AuthenticationError(ServerError):
    """The server refused our credentials (missing or wrong token)."""


class NotFoundError(ServerError):
    """The server has no such resource."""


class KernelNotFound(NotFoundError):
    """The kernel id is unknown to the server (never started, shut down or culled)."""


class KernelSpecNotFound(NotFoundError):
    """The server offers no kernelspec of that name or language."""


class ResourceLimitError(ServerError):
    """The server refused to start another kernel (max kernels, per-user limits)."""


class KernelLaunchError(ServerError):
    """The server failed to launch the kernel."""


class KernelLaunchTimeout(KernelLaunchError, TimeoutError):
    """The kernel did not come up within the launch timeout."""


class KernelError(JupyterInterpError):
    """The kernel behind a session cannot serve requests."""


class KernelDied(KernelError):
    """The kernel died and the server did not bring it back."""


class KernelUnavailable(KernelError):
    """The session lost its kernel (server restarted, kernel deleted or culled)."""


class FileTransferError(JupyterInterpError):
    """A kernel-side file operation failed."""


class PathNotConfined(FileTransferError, ValueError):
    """A path is absolute, contains '..' or NUL, or resolves outside the file root."""


class RemoteFileNotFound(FileTransferError, FileNotFoundError):
    """The file does not exist under the file root on the kernel's side."""


class PathConflict(FileTransferError, ValueError):
    """The path names a directory where a file is meant, or passes through a file (an
    upload to ``a.txt/b`` where ``a.txt`` is a file, a download of a directory)."""


class ChecksumMismatch(FileTransferError):
    """The bytes that arrived do not match the sha256 the sender computed."""


class UnsupportedKernel(FileTransferError):
    """No file-transfer snippets exist for this kernel's language and the server has no
    Contents API to use instead (or the file root cannot be mapped onto it)."""


class SessionClosed(JupyterInterpError):
    """The session was shut down; open a new one."""


class MissingDependency(JupyterInterpError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
