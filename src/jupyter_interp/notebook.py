"""Notebook export: a session's executions as an nbformat v4 notebook.

Strategy: a Session records each *user* execution (``execute``/``stream`` called by its
user: file transfers and internal requests run below them and are never recorded) in
an ``ExecutionHistory``, a bounded FIFO of ``(code, ExecutionResult)``. ``to_notebook``
turns it into code cells with the ``nbformat`` library (the ``notebook`` extra),
imported only then.

Invariants:

* One code cell per recorded execution, in execution order, with the kernel's
  execution count and outputs: stdout, stderr, displays and the result as they stand
  at the end (after clears and updates), then the error.
* What the output budget cut keeps the budget's marker in the stream text, and the cell
  metadata (``jupyter_interp``) says ``truncated``/``output_dropped``; an execution that
  did not end ``ok`` records its status and detail there too.
* The history holds at most ``size`` executions (``ClientConfig.history_size``); the
  notebook metadata counts the older ones dropped (``jupyter_interp.dropped_cells``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import MissingDependency
from .protocol.result import ExecutionResult, ExecutionStatus

if TYPE_CHECKING:
    import nbformat

__all__ = ["ExecutionHistory", "save_notebook", "to_notebook"]


class ExecutionHistory:
    """The last ``size`` user executions of a session, oldest first (0: keep none)."""

    def __init__(self, size: int) -> None:
        self._entries: deque[tuple[str, ExecutionResult]] = deque(maxlen=size)
        #: executions recorded and since dropped to stay within ``size``
        self.dropped = 0

    def record(self, code: str, result: ExecutionResult) -> None:
        if len(self._entries) == self._entries.maxlen:
            self.dropped += 1
            if not self._entries:
                return
        self._entries.append((code, result))

    def __iter__(self) -> Iterator[tuple[str, ExecutionResult]]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


def _nbformat() -> Any:
    try:
        import nbformat
    except ImportError as exc:
        raise MissingDependency(
            "notebook export needs nbformat: pip install 'jupyter-interp[notebook]'"
        ) from exc
    return nbformat


def to_notebook(
    history: ExecutionHistory,
    *,
    kernel_name: str,
    kernel_info: Mapping[str, Any],
    display_name: str | None = None,
) -> nbformat.NotebookNode:
    """A v4 notebook of ``history``, with kernelspec and language metadata.

    Raises:
        MissingDependency: nbformat is not installed.
    """
    v4 = _nbformat().v4
    language_info = dict(kernel_info.get("language_info") or {})
    language = str(language_info.get("name") or "")
    notebook: nbformat.NotebookNode = v4.new_notebook(
        cells=[_cell(v4, code, result) for code, result in history],
        metadata={
            "kernelspec": {
                "name": kernel_name,
                "display_name": display_name or kernel_name,
                "language": language,
            },
            "language_info": language_info,
            "jupyter_interp": {"dropped_cells": history.dropped},
        },
    )
    return notebook


def save_notebook(notebook: nbformat.NotebookNode, path: str | os.PathLike[str]) -> None:
    """Validate ``notebook`` and write it to ``path`` as .ipynb JSON."""
    nbformat = _nbformat()
    nbformat.validate(notebook)
    nbformat.write(notebook, os.fspath(path))


def _cell(v4: Any, code: str, result: ExecutionResult) -> Any:
    outputs = [
        v4.new_output("stream", name=name, text=text)
        for name, text in (("stdout", result.stdout), ("stderr", result.stderr))
        if text
    ]
    for output in result.outputs:
        data, metadata = _jsonable(output.data), _jsonable(output.metadata)
        if output.kind == "execute_result":
            outputs.append(
                v4.new_output(
                    "execute_result",
                    data=data,
                    metadata=metadata,
                    execution_count=result.execution_count,
                )
            )
        else:
            outputs.append(v4.new_output("display_data", data=data, metadata=metadata))
    if result.error is not None:
        error = result.error
        outputs.append(
            v4.new_output(
                "error",
                ename=error.ename,
                evalue=error.evalue,
                traceback=list(error.raw_traceback or error.traceback),
            )
        )
    notes: dict[str, Any] = {}
    if result.truncated:
        notes["truncated"] = True
    if result.output_dropped:
        notes["output_dropped"] = True
    if result.status is not ExecutionStatus.OK:
        notes["status"] = result.status.value
    if result.detail:
        notes["detail"] = result.detail
    cell = v4.new_code_cell(
        source=code,
        execution_count=result.execution_count,
        outputs=outputs,
        metadata={"jupyter_interp": notes} if notes else {},
    )
    return cell


def _jsonable(value: Any) -> Any:
    """Plain dicts and lists for nbformat (our frozen mappings and tuples are not)."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value
