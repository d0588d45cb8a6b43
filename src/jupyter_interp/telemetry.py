"""OpenTelemetry instrumentation: spans, metrics and W3C trace context.

Strategy: the ``otel`` extra installs ``opentelemetry-api`` only; the application
configures (or not) an SDK, providers and exporters. Each hook below is one call at one
point of the library: a session's life, start, execution, file transfer, reconnect and
restart, and every outgoing HTTP request (``traceparent``/``tracestate`` via the
globally configured propagator).

Invariants:

* Without the API installed every hook is a no-op that touches no OpenTelemetry code;
  with it but no provider set (``set_tracer_provider``/``set_meter_provider``), the
  hooks return at once; with one, an execution's result attributes are set only on a
  span that is recording.
* Spans never make themselves current across a ``yield`` (a stream is an async
  generator that may resume in another context); an execution's span is current while
  ``execute`` awaits, so the interrupt and restart requests it causes carry its context.
* The code text is recorded (``jupyter_interp.code``) only when ``ClientConfig.trace_code``
  is true; file paths and tokens never are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from ._version import __version__

if TYPE_CHECKING:
    from .protocol.result import ExecutionResult

try:
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.metrics import _internal as _metrics_internal
except ImportError:  # the ``otel`` extra is not installed
    _enabled = False
else:
    _enabled = True

__all__ = [
    "TraceSettings",
    "TracedSession",
    "execution",
    "inject_trace_context",
    "kernel_event",
    "live_session",
    "pool_request",
    "recording",
    "session_start",
    "transfer",
]

_NAME = "jupyter_interp"


class _Instruments:
    """The tracer and the meter's instruments, created on first use."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer(_NAME, __version__)
        meter = metrics.get_meter(_NAME, __version__)
        self.duration = meter.create_histogram(
            "jupyter_interp.execute.duration", unit="s", description="execution durations"
        )
        self.live = meter.create_up_down_counter(
            "jupyter_interp.sessions.live", description="sessions connected to a kernel"
        )
        self.pool = meter.create_counter(
            "jupyter_interp.pool.requests", description="pool session requests (attr: hit)"
        )
        self.bytes = meter.create_counter(
            "jupyter_interp.transfer.bytes", unit="By", description="file bytes moved"
        )


_instruments: _Instruments | None = None


class TraceSettings(Protocol):
    """The settings telemetry reads (a ``ClientConfig`` is one)."""

    @property
    def trace_code(self) -> bool: ...


class TracedSession(Protocol):
    """What telemetry reads of a session (a ``Session`` is one); telemetry sits below
    ``session`` in the layers, so it never imports it."""

    kernel_id: str
    kernel_name: str

    @property
    def _config(self) -> TraceSettings: ...


def _configured() -> bool:
    """Whether the application has set a tracer or meter provider.

    Reads the API's module globals (a proxy's no-op spans cost microseconds per call);
    where a version lacks them, assume a provider is set.
    """
    tracing = getattr(trace, "_TRACER_PROVIDER", True)
    metering = getattr(_metrics_internal, "_METER_PROVIDER", True)
    return tracing is not None or metering is not None


def _get() -> _Instruments | None:
    """The instruments, or None when there is nothing to report to."""
    global _instruments
    if not _enabled or not _configured():
        return None
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


def _session_attributes(session: TracedSession) -> dict[str, Any]:
    return {
        "jupyter_interp.kernel.name": session.kernel_name,
        "jupyter_interp.kernel.id": session.kernel_id,
    }


def recording() -> bool:
    """Whether hooks report anywhere (worth a request to learn an attribute)."""
    return _get() is not None


def inject_trace_context(headers: MutableMapping[str, str]) -> None:
    """Add the current W3C trace context (``traceparent``) to an outgoing request."""
    if _enabled and _configured():
        propagate.inject(headers)


@contextmanager
def live_session(kernel_name: str) -> Iterator[None]:
    """Count a session as live for the duration of the block."""
    instruments = _get()
    if instruments is None:
        yield
        return
    attributes = {"jupyter_interp.kernel.name": kernel_name}
    instruments.live.add(1, attributes)
    try:
        yield
    finally:
        instruments.live.add(-1, attributes)


@contextmanager
def session_start(
    kernel_name: str | None, server: str, *, server_kind: str = "", pool_hit: bool = False
) -> Iterator[None]:
    """A span around a session start (``server``: the server's base URL; ``server_kind``:
    ``jupyter_server``, ``kernel_gateway`` or ``enterprise_gateway``, "" if not known)."""
    instruments = _get()
    if instruments is None:
        yield
        return
    attributes: dict[str, str | bool] = {
        "jupyter_interp.kernel.name": kernel_name or "",
        "server.address": server,
        "jupyter_interp.server.kind": server_kind,
        "jupyter_interp.pool.hit": pool_hit,
    }
    with instruments.tracer.start_as_current_span(
        "jupyter_interp.session.start", attributes=attributes
    ):
        yield


def pool_request(kernel_name: str, *, hit: bool) -> None:
    """Count a pool request; a hit also gets its (instant) session-start span."""
    instruments = _get()
    if instruments is None:
        return
    instruments.pool.add(1, {"jupyter_interp.kernel.name": kernel_name, "hit": hit})
    if hit:
        with session_start(kernel_name, "", pool_hit=True):
            pass


@contextmanager
def execution(
    session: TracedSession, code: str, *, current: bool = True
) -> Iterator[Callable[[ExecutionResult], None]]:
    """A span and a duration measurement around one user execution.

    Yields ``done(result)``, to be called with the result; ``current=False`` for a
    stream (an async generator), whose span must not become the current one.
    """
    instruments = _get()
    if instruments is None:
        yield _ignore
        return
    attributes = _session_attributes(session)
    if session._config.trace_code:
        attributes["jupyter_interp.code"] = code
    started = time.perf_counter()
    span = instruments.tracer.start_span("jupyter_interp.execute", attributes=attributes)
    with trace.use_span(span, end_on_exit=True) if current else _ending(span):

        def done(result: ExecutionResult) -> None:
            duration = time.perf_counter() - started
            status = result.status.value
            instruments.duration.record(
                duration, {"jupyter_interp.kernel.name": session.kernel_name, "status": status}
            )
            if span.is_recording():
                span.set_attributes(
                    {
                        "jupyter_interp.status": status,
                        "jupyter_interp.recovery": ""
                        if result.recovery is None
                        else result.recovery.value,
                        "jupyter_interp.duration_s": duration,
                        "jupyter_interp.output_bytes": result.stdout_size + result.stderr_size,
                        "jupyter_interp.truncated": result.truncated,
                        "jupyter_interp.output_dropped": result.output_dropped,
                    }
                )

        yield done


@contextmanager
def transfer(session: TracedSession, direction: str) -> Iterator[Callable[[int, str], None]]:
    """A span around a file transfer; yields ``done(size, route)``, called once verified."""
    instruments = _get()
    if instruments is None:
        yield _ignore_transfer
        return
    attributes = {**_session_attributes(session), "jupyter_interp.direction": direction}
    with instruments.tracer.start_as_current_span(
        f"jupyter_interp.{direction}", attributes=attributes
    ) as span:
        span.set_attribute("jupyter_interp.verified", False)

        def done(size: int, route: str) -> None:
            instruments.bytes.add(size, {"jupyter_interp.direction": direction, "route": route})
            span.set_attributes(
                {
                    "jupyter_interp.bytes": size,
                    "jupyter_interp.route": route,
                    "jupyter_interp.verified": True,
                }
            )

        yield done


@contextmanager
def kernel_event(session: TracedSession, what: str, reason: str) -> Iterator[None]:
    """A span around a reconnect or a restart (``what``) of ``session``'s kernel."""
    instruments = _get()
    if instruments is None:
        yield
        return
    attributes = {**_session_attributes(session), "jupyter_interp.reason": reason}
    with instruments.tracer.start_as_current_span(f"jupyter_interp.{what}", attributes=attributes):
        yield


@contextmanager
def _ending(span: trace.Span) -> Iterator[None]:
    """End ``span`` on exit, recording an error, without making it current."""
    try:
        yield
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(trace.StatusCode.ERROR, str(exc))
        raise
    finally:
        span.end()


def _ignore(_result: ExecutionResult) -> None:
    return None


def _ignore_transfer(_size: int, _route: str) -> None:
    return None
