"""The aggregated outcome of one execution, as a frozen value.

Strategy: ``ExecutionTracker`` (``execution``) builds an ``ExecutionResult`` from the
messages of one request; the I/O layer may ``attrs.evolve`` it to add what only it
knows (the kernel generation, what a timeout recovery did). A failing user program is
*data* here (``status`` ``error`` plus ``error``), never an exception, unless the caller
asks for one with ``raise_for_error()``.

Invariants:

* ``ok`` is true only when the kernel replied ``ok`` and nothing was lost: when the
  server's rate limiter dropped output, or kernel messages were lost while the
  WebSocket was reconnected, ``output_dropped`` is true (``detail`` says which) and
  ``ok`` is false even if the kernel succeeded (``status`` stays ``OK``).
* ``stdout``/``stderr`` hold what was kept under the output budget; ``*_size`` is the
  full size in UTF-8 bytes and ``*_truncated`` says whether the middle was cut.
* ``ErrorInfo.traceback`` is free of ANSI escapes; ``raw_traceback`` keeps the original.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import JupyterInterpError

__all__ = [
    "ErrorInfo",
    "ExecutionFailed",
    "ExecutionResult",
    "ExecutionStatus",
    "Recovery",
    "RichOutput",
    "strip_ansi",
]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """Remove ANSI/VT100 escape sequences (colours, cursor moves, OSC titles)."""
    return _ANSI.sub("", text)


class ExecutionStatus(enum.Enum):
    """How an execution ended."""

    OK = "ok"
    #: the user code raised; ``error`` says what
    ERROR = "error"
    #: the kernel skipped the request (an earlier request failed with stop_on_error)
    ABORTED = "aborted"
    #: the deadline passed; ``recovery`` says what was done to the kernel
    TIMED_OUT = "timed_out"
    #: someone interrupted the kernel while it ran this request
    INTERRUPTED = "interrupted"
    #: the kernel process died; the server may have restarted it (state lost)
    KERNEL_DIED = "kernel_died"
    #: the kernel was restarted while this request ran (state lost)
    KERNEL_RESTARTED = "kernel_restarted"
    #: the connection to the kernel was lost and could not be resumed
    CONNECTION_LOST = "connection_lost"
    #: the code asked for input and the stdin policy forbids answering
    INPUT_REQUIRED = "input_required"
    #: the kernel finished (idle) but never sent an execute_reply
    NO_REPLY = "no_reply"
    #: the caller cancelled the execution
    CANCELLED = "cancelled"


class Recovery(enum.Enum):
    """What was done to the kernel after a deadline or cancellation."""

    INTERRUPTED = "interrupted"
    RESTARTED = "restarted"


@attrs.frozen(kw_only=True)
class ErrorInfo:
    """A structured error from the kernel."""

    ename: str
    evalue: str
    traceback: tuple[str, ...] = ()
    raw_traceback: tuple[str, ...] = ()

    @classmethod
    def from_content(cls, content: Mapping[str, Any]) -> ErrorInfo:
        """Build from an ``error`` message or ``execute_reply`` content, tolerating gaps."""
        raw = content.get("traceback")
        lines = tuple(str(line) for line in raw) if isinstance(raw, list) else ()
        return cls(
            ename=str(content.get("ename", "") or ""),
            evalue=str(content.get("evalue", "") or ""),
            traceback=tuple(strip_ansi(line) for line in lines),
            raw_traceback=lines,
        )

    def summary(self) -> str:
        """``ename: evalue`` (or whichever of the two is present)."""
        if self.ename and self.evalue:
            return f"{self.ename}: {self.evalue}"
        return self.ename or self.evalue or "error"


@attrs.frozen(kw_only=True)
class RichOutput:
    """One displayed output: a MIME bundle as it stands after clears and updates.

    ``kind`` is ``"display_data"`` or ``"execute_result"``.
    """

    kind: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    display_id: str | None = None


#: read once: a member read off its Enum class costs a metaclass attribute lookup
_OK = ExecutionStatus.OK


class ExecutionFailed(JupyterInterpError):
    """Raised by ``ExecutionResult.raise_for_error()``; ``result`` has the details."""

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result
        super().__init__(result.describe())


@attrs.frozen(kw_only=True)
class ExecutionResult:
    """Everything one execution produced."""

    msg_id: str
    status: ExecutionStatus
    execution_count: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_size: int = 0
    stderr_size: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    result: str | None = None
    outputs: tuple[RichOutput, ...] = ()
    error: ErrorInfo | None = None
    user_expressions: Mapping[str, Any] = attrs.field(factory=dict)
    output_dropped: bool = False
    recovery: Recovery | None = None
    generation: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the code ran to the end and no output was lost."""
        return self.status is _OK and not self.output_dropped

    @property
    def truncated(self) -> bool:
        """True when the output budget cut stdout or stderr."""
        return self.stdout_truncated or self.stderr_truncated

    def describe(self) -> str:
        """A short human-readable line on how the execution ended."""
        if self.status is ExecutionStatus.OK:
            text = "ok"
        elif self.status is ExecutionStatus.ERROR and self.error is not None:
            text = self.error.summary()
        else:
            text = self.status.value.replace("_", " ")
        if self.detail:
            text = f"{text}: {self.detail}"
        if self.output_dropped and "lost while reconnecting" not in self.detail:
            text += " (the server dropped some output: rate limit exceeded)"
        return text

    def raise_for_error(self) -> ExecutionResult:
        """Return ``self`` if ``ok``, else raise ``ExecutionFailed``."""
        if not self.ok:
            raise ExecutionFailed(self)
        return self


# Trusted constructors for the tracker: no field of these classes has a validator or a
# converter, so writing the slots through their descriptors builds the same value as
# the frozen attrs ``__init__`` (which goes through ``object.__setattr__``) at half the
# cost. Users build them with the ordinary keyword constructors.
_new = object.__new__
_set_kind, _set_data, _set_metadata, _set_display_id = (
    vars(RichOutput)[field.name].__set__ for field in attrs.fields(RichOutput)
)
(
    _set_msg_id,
    _set_status,
    _set_execution_count,
    _set_stdout,
    _set_stderr,
    _set_stdout_size,
    _set_stderr_size,
    _set_stdout_truncated,
    _set_stderr_truncated,
    _set_result,
    _set_outputs,
    _set_error,
    _set_user_expressions,
    _set_output_dropped,
    _set_recovery,
    _set_generation,
    _set_detail,
) = (vars(ExecutionResult)[field.name].__set__ for field in attrs.fields(ExecutionResult))


def _rich_output(
    kind: str, data: Mapping[str, Any], metadata: Mapping[str, Any], display_id: str | None
) -> RichOutput:
    output: RichOutput = _new(RichOutput)
    _set_kind(output, kind)
    _set_data(output, data)
    _set_metadata(output, metadata)
    _set_display_id(output, display_id)
    return output


def _execution_result(
    *,
    msg_id: str,
    status: ExecutionStatus,
    execution_count: int | None,
    stdout: str,
    stderr: str,
    stdout_size: int,
    stderr_size: int,
    stdout_truncated: bool,
    stderr_truncated: bool,
    result: str | None,
    outputs: tuple[RichOutput, ...],
    error: ErrorInfo | None,
    user_expressions: Mapping[str, Any],
    output_dropped: bool,
    recovery: Recovery | None,
    generation: int,
    detail: str,
) -> ExecutionResult:
    made: ExecutionResult = _new(ExecutionResult)
    _set_msg_id(made, msg_id)
    _set_status(made, status)
    _set_execution_count(made, execution_count)
    _set_stdout(made, stdout)
    _set_stderr(made, stderr)
    _set_stdout_size(made, stdout_size)
    _set_stderr_size(made, stderr_size)
    _set_stdout_truncated(made, stdout_truncated)
    _set_stderr_truncated(made, stderr_truncated)
    _set_result(made, result)
    _set_outputs(made, outputs)
    _set_error(made, error)
    _set_user_expressions(made, user_expressions)
    _set_output_dropped(made, output_dropped)
    _set_recovery(made, recovery)
    _set_generation(made, generation)
    _set_detail(made, detail)
    return made
