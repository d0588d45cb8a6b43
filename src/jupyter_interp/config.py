"""Frozen settings for a Client and the Sessions it opens.

Strategy: every knob lives in one immutable value built from keyword arguments or from
the ``JUPYTER_*`` environment (the seed document's variables). Building one does no
I/O; the token is kept out of ``repr`` so settings can be logged safely.

Invariants: timeouts are positive seconds (``None`` only where "no deadline" makes
sense); the HTTP read timeout for kernel start always exceeds the launch timeout sent
to Enterprise Gateway (``KERNEL_LAUNCH_TIMEOUT``), as Jupyter Server's own gateway
client does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from .errors import LocalProtocolError
from .protocol.budget import OutputBudget

__all__ = ["DEFAULT_URL", "SERVER_MESSAGE_CAP", "ClientConfig", "StdinPolicy", "same_server"]

DEFAULT_URL = "http://localhost:8888"
#: tornado's default ``websocket_max_message_size``: what Jupyter servers accept.
SERVER_MESSAGE_CAP = 10 * 1024 * 1024
#: room for an execute_request's header, metadata and framing besides the code
_ENVELOPE_BYTES = 4096
#: the most bytes one character can take in JSON text (``\u001f``)
_MAX_ESCAPED_CHAR = 6


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise LocalProtocolError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class StdinPolicy:
    """What to do when user code calls ``input()``.

    ``answer is None`` (the default) fails fast: the execution ends with status
    ``INPUT_REQUIRED``. Otherwise every prompt is answered with ``answer``.
    """

    answer: str | None = None

    @property
    def allows_input(self) -> bool:
        return self.answer is not None


def same_server(url: str, other: str) -> bool:
    """Whether two server URLs name the same server: scheme, host, port (the scheme's
    default when absent) and path prefix, ignoring case and a trailing slash."""

    def identity(value: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(value.strip())
        scheme = parts.scheme.lower()
        try:
            port = parts.port or {"http": 80, "https": 443}.get(scheme)
        except ValueError:  # a port that is not a number: no server to match
            return (scheme, value, None, "")
        return (scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/"))

    return identity(url) == identity(other)


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Settings shared by a Client and its Sessions.

    Attributes:
        base_url: server URL, may carry a path prefix (``http://host:8888/prefix/``).
        token: sent as ``Authorization: token <T>``; never logged or shown in repr.
        headers: extra headers for every HTTP request and WebSocket handshake.
        verify: TLS verification: True, False, or a CA bundle path.
        request_timeout: default HTTP timeout (seconds).
        launch_timeout: how long a kernel may take to start (sent to Enterprise Gateway
            as ``KERNEL_LAUNCH_TIMEOUT``; the HTTP read timeout of the start request is
            larger by ``launch_timeout_pad``).
        handshake_timeout: WebSocket connect + upgrade + kernel_info readiness.
        start_attempts: how many times a kernel start is tried when it fails for a
            passing reason (a kernel dead at birth, a 5xx, a WebSocket closed before
            the first reply); 1 disables retries. See ``client.start_retry``.
        max_message_size: largest incoming WebSocket message accepted (bytes).
        max_send_message_size: largest outgoing WebSocket message the server accepts
            (bytes; None: do not check). Jupyter Server and both gateways run on
            tornado, whose ``websocket_max_message_size`` is 10 MiB unless the server
            raises it; a bigger message makes the server drop the connection.
        ping_interval: seconds of silence from the server after which a session pings
            (None: no pings; see ``session.keepalive``).
        kernel_username: sent as ``KERNEL_USERNAME`` (Enterprise Gateway authorization).
        kernel_env: extra ``KERNEL_*`` variables for every kernel start.
        output_budget: per-stream byte cap for aggregated results.
        stdin: the ``input()`` policy.
        completion_grace: how long to wait for the missing half of reply + idle; also
            how long after a reconnect an execution sent before it may still get its
            reply or idle before it ends CONNECTION_LOST.
        interrupt_grace: how long an interrupted execution may take to stop before the
            kernel is restarted.
        history_size: how many user executions a Session keeps for ``to_notebook``
            (the oldest are dropped first; 0 keeps none).
        trace_code: put the code text on OpenTelemetry execute spans (off: code may
            hold secrets).
    """

    base_url: str = DEFAULT_URL
    token: str | None = attrs.field(default=None, repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict)
    verify: bool | str = True
    request_timeout: float = attrs.field(default=30.0, validator=_positive)
    launch_timeout: float = attrs.field(default=120.0, validator=_positive)
    launch_timeout_pad: float = attrs.field(default=10.0, validator=_positive)
    handshake_timeout: float = attrs.field(default=120.0, validator=_positive)
    start_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    max_message_size: int = attrs.field(default=256 * 1024 * 1024, validator=_positive)
    max_send_message_size: int | None = attrs.field(default=SERVER_MESSAGE_CAP, validator=_positive)
    ping_interval: float | None = attrs.field(default=30.0, validator=_positive)
    kernel_username: str | None = None
    kernel_env: Mapping[str, str] = attrs.field(factory=dict)
    output_budget: OutputBudget = attrs.field(factory=OutputBudget)
    stdin: StdinPolicy = attrs.field(factory=StdinPolicy)
    completion_grace: float = attrs.field(default=1.0, validator=_positive)
    interrupt_grace: float = attrs.field(default=3.0, validator=_positive)
    history_size: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    trace_code: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        """Settings from ``JUPYTER_URL`` and ``JUPYTER_TOKEN``, overridden by keywords.

        ``JUPYTER_TOKEN`` is the credential of ``JUPYTER_URL``'s server (default
        ``DEFAULT_URL``): it is taken only when the URL in use is that server's, never
        sent to another server named by a ``base_url`` keyword.
        """
        env = os.environ if environ is None else environ
        env_url = env.get("JUPYTER_URL") or DEFAULT_URL
        values: dict[str, Any] = {"base_url": env_url}
        url = overrides.get("base_url") or env_url
        if env.get("JUPYTER_TOKEN") and same_server(url, env_url):
            values["token"] = env["JUPYTER_TOKEN"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def start_env(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The ``env`` body of a kernel start: ours, then the caller's on top.

        Jupyter Server ignores it; Kernel Gateway and Enterprise Gateway keep the
        ``KERNEL_*`` names (and whatever their whitelists allow).
        """
        merged: dict[str, str] = {"KERNEL_LAUNCH_TIMEOUT": str(int(self.launch_timeout))}
        if self.kernel_username:
            merged["KERNEL_USERNAME"] = self.kernel_username
        merged.update(self.kernel_env)
        merged.update(env or {})
        return merged

    def check_execute_size(
        self,
        code: str,
        user_expressions: Mapping[str, str] | None = None,
        buffers: Sequence[bytes] = (),
    ) -> None:
        """Refuse, before sending, an execute_request the server would not accept.

        The size is that of ``code`` and ``user_expressions`` as JSON text (escapes
        included), plus binary ``buffers`` and an allowance for the envelope; short
        requests are never measured.

        Raises:
            LocalProtocolError: the request would exceed ``max_send_message_size``; the
                message names the limit and suggests uploading the data as a file.
        """
        limit = self.max_send_message_size
        texts = [code, *(user_expressions or {}).keys(), *(user_expressions or {}).values()]
        fixed = _ENVELOPE_BYTES + sum(len(buffer) for buffer in buffers)
        worst = sum(len(text) for text in texts) * _MAX_ESCAPED_CHAR + fixed
        if limit is None or worst <= limit:
            return
        size = fixed + sum(
            len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))
            for text in texts
        )
        if size > limit:
            raise LocalProtocolError(
                f"the execute_request would be about {size} bytes, over the server's "
                f"WebSocket message limit of {limit} bytes ({limit / 2**20:g} MiB; "
                "max_send_message_size). Upload large data as a file with "
                "session.upload() and have the code read it."
            )

    @property
    def start_timeout(self) -> float:
        """HTTP read timeout for a kernel start: above the launch timeout, never below it."""
        return self.launch_timeout + self.launch_timeout_pad
