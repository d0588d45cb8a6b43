"""Notebook export offline: the bounded history, and what a cell says about its result."""

from __future__ import annotations

from typing import Any

import nbformat
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interp.notebook import ExecutionHistory, to_notebook
from jupyter_interp.protocol.result import (
    ErrorInfo,
    ExecutionResult,
    ExecutionStatus,
    Recovery,
    RichOutput,
)

_INFO = {"language_info": {"name": "python", "version": "3.12", "mimetype": "text/x-python"}}


def _result(n: int, **fields: Any) -> ExecutionResult:
    fields.setdefault("status", ExecutionStatus.OK)
    return ExecutionResult(msg_id=f"m{n}", execution_count=n, **fields)


@settings(deadline=None)  # a loaded machine must not fail it on the 200 ms deadline
@given(size=st.integers(0, 5), count=st.integers(0, 12))
def test_the_history_keeps_the_last_executions_and_counts_the_dropped(
    size: int, count: int
) -> None:
    history = ExecutionHistory(size)
    for n in range(count):
        history.record(f"x = {n}", _result(n))
    kept = [code for code, _ in history]
    assert len(history) == min(size, count)
    assert kept == [f"x = {n}" for n in range(count - len(kept), count)]
    assert history.dropped == count - len(history)
    notebook = to_notebook(history, kernel_name="python3", kernel_info=_INFO)
    nbformat.validate(notebook)
    assert notebook.metadata.jupyter_interp.dropped_cells == history.dropped


def test_cells_carry_rich_outputs_errors_and_what_was_cut() -> None:
    history = ExecutionHistory(10)
    history.record(
        "show()",
        _result(
            1,
            stdout="head\n[... 9 bytes cut ...]\ntail\n",
            stdout_size=99,
            stdout_truncated=True,
            outputs=(
                RichOutput(
                    kind="display_data",
                    data={"application/json": {"a": (1, 2)}, "text/plain": "{...}"},
                ),
                RichOutput(kind="execute_result", data={"text/plain": "3"}),
            ),
        ),
    )
    history.record(
        "loop()",
        _result(
            2,
            status=ExecutionStatus.TIMED_OUT,
            recovery=Recovery.INTERRUPTED,
            detail="the execution exceeded its 1 s deadline; the kernel was interrupted",
            error=ErrorInfo(ename="KeyboardInterrupt", evalue="", traceback=("KeyboardInterrupt",)),
        ),
    )
    notebook = to_notebook(
        history, kernel_name="python3", kernel_info=_INFO, display_name="Python 3"
    )
    nbformat.validate(notebook)
    shown, timed_out = notebook.cells
    assert [o.output_type for o in shown.outputs] == ["stream", "display_data", "execute_result"]
    assert shown.outputs[1].data["application/json"] == {"a": [1, 2]}
    assert shown.outputs[2].execution_count == 1
    assert shown.metadata.jupyter_interp == {"truncated": True}
    assert timed_out.outputs[-1].output_type == "error"
    assert timed_out.metadata.jupyter_interp.status == "timed_out"
    assert "interrupted" in timed_out.metadata.jupyter_interp.detail
    assert notebook.metadata.kernelspec.display_name == "Python 3"
