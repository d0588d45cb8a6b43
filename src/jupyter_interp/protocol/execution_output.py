"""What one execution has shown: its output events folded into the fields of its result.

Strategy: an ``ExecutionTracker`` owns one ``OutputFold`` and hands it each output event
of its execution, in order, through ``FOLD[type(event)]`` (one dict lookup per event,
no method dispatch on the hot path). The fold only accumulates; the tracker reads its
fields once, when it builds the ``ExecutionResult``.

Invariants:

* Streams merge per name into ``stdout``/``stderr`` (other names go to ``stdout``). Past
  the ``OutputBudget`` cap the first and last halves are kept around a one-line
  ``[... N bytes of output omitted ...]`` marker; memory stays proportional to the cap.
* ``clear_output`` clears rich ``outputs`` only; streams are the agent's log and are kept.
  ``wait=True`` defers the clear to the next stream, display, result or error.
* ``update_display_data`` replaces the bundle of every output with its ``display_id``.
* ``result_text`` is ``text/plain`` of the last ``execute_result`` (IRkernel's values,
  shown as ``display_data``, arrive here as ``ExecuteResult``: see ``kernel_output``);
  ``error`` is the first iopub ``error``;
  ``dropped_notice`` is the first line of the server's first rate-limit notice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .budget import HeadTail
from .events import (
    ClearOutput,
    DisplayData,
    DisplayUpdate,
    ExecuteInput,
    ExecuteResult,
    ExecutionError,
    ExecutionEvent,
    InputRequested,
    OutputDropped,
    StreamText,
)
from .result import ErrorInfo, RichOutput, _rich_output

__all__ = ["FOLD", "OutputFold"]


class OutputFold:
    """The output of one execution so far.

    Args:
        max_stream_bytes: the budget's cap on each stream's kept text (None: no cap).
    """

    __slots__ = (
        "_cap",
        "_clear_pending",
        "dropped_notice",
        "error",
        "input_count",
        "outputs",
        "result_text",
        "streams",
    )

    def __init__(self, max_stream_bytes: int | None) -> None:
        self._cap = max_stream_bytes
        self._clear_pending = False
        #: "stdout"/"stderr", each made at its first text
        self.streams: dict[str, HeadTail] = {}
        self.outputs: list[RichOutput] = []
        self.result_text: str | None = None
        self.error: ErrorInfo | None = None
        #: the execution count ``execute_input`` (or the first result) announced
        self.input_count: int | None = None
        self.dropped_notice = ""

    def _take_pending_clear(self) -> None:
        self._clear_pending = False
        self.outputs.clear()

    def _stream(self, event: StreamText) -> None:
        if self._clear_pending:
            self._take_pending_clear()
        name = "stderr" if event.name == "stderr" else "stdout"
        stream = self.streams.get(name)
        if stream is None:
            stream = self.streams[name] = HeadTail(self._cap)
        stream.append(event.text)

    def _dropped(self, event: OutputDropped) -> None:
        self.dropped_notice = self.dropped_notice or event.text.splitlines()[0]

    def _clear(self, event: ClearOutput) -> None:
        self._clear_pending = event.wait
        if not event.wait:
            self.outputs.clear()

    def _display(self, event: DisplayData) -> None:
        if self._clear_pending:
            self._take_pending_clear()
        self.outputs.append(
            _rich_output("display_data", event.data, event.metadata, event.display_id)
        )

    def _update(self, event: DisplayUpdate) -> None:
        self.outputs = [
            attrs.evolve(out, data=event.data, metadata=event.metadata)
            if out.display_id == event.display_id
            else out
            for out in self.outputs
        ]

    def _result(self, event: ExecuteResult) -> None:
        if self._clear_pending:
            self._take_pending_clear()
        self.outputs.append(_rich_output("execute_result", event.data, event.metadata, None))
        plain = event.data.get("text/plain")
        self.result_text = plain if isinstance(plain, str) else None
        if self.input_count is None:
            self.input_count = event.execution_count

    def _input(self, event: ExecuteInput) -> None:
        self.input_count = event.execution_count

    def _error(self, event: ExecutionError) -> None:
        if self._clear_pending:
            self._take_pending_clear()
        if self.error is None:
            self.error = event.error

    def _input_request(self, event: InputRequested) -> None:
        """Nothing to fold: the I/O layer answers (or fails the execution)."""


#: how each output event folds into an ``OutputFold`` (``InputRequested`` folds nothing)
FOLD: dict[type[ExecutionEvent], Callable[[OutputFold, Any], None]] = {
    StreamText: OutputFold._stream,
    OutputDropped: OutputFold._dropped,
    ClearOutput: OutputFold._clear,
    DisplayData: OutputFold._display,
    DisplayUpdate: OutputFold._update,
    ExecuteResult: OutputFold._result,
    ExecuteInput: OutputFold._input,
    ExecutionError: OutputFold._error,
    InputRequested: OutputFold._input_request,
}
