"""Execution results as the gateway's dicts: small, honest, made for a model's context.

Strategy: the gateway's agent tool puts ``json.dumps`` of an execute result straight
into the model's prompt, so the dict carries text only and stays bounded: stdout and
stderr are already capped by the Client's output budget (head and tail kept around a
marker); a traceback and the text of displayed objects get the same cap; rich outputs
never travel inline (the provider saves them as files, see ``_provider_outputs``).

The gateway's REST layer keeps only ``stdout``, ``stderr``, ``exit_code``, ``result``
and ``error`` (its history drops ``error`` too), and its client helper prints only
stdout, stderr and error. So what a caller must see by default reaches those: the text
of displayed objects is the ``result`` when there is no expression value; with
``notes`` on, marked lines at the end of stdout show that text and name the files rich
outputs became; a history entry's stderr carries the error line when the traceback
does not.

Invariants:

* ``exit_code`` is 0 only for a result that is ``ok`` (the code ran to the end and no
  output was lost); 124 means the deadline passed (as GNU ``timeout``), 1 any other
  failure. Whenever ``exit_code`` is not 0, ``error`` says why in one short line.
* Output cut by the budget keeps ``exit_code`` 0 (the code did succeed) but is never
  silent: ``error`` says what was cut, ``truncated`` is true and the text carries the
  omission marker.
* A lost kernel state (restart, death) is spelled out in ``error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ._provider_outputs import IMAGE_TYPES, SavedOutput, output_note
from .protocol.budget import HeadTail
from .protocol.result import ExecutionResult, ExecutionStatus, Recovery

__all__ = [
    "execution_dict",
    "history_entry",
    "now_iso",
    "refused_dict",
]

_MAX_ERROR_CHARS = 500
_STATE_LOST = frozenset({ExecutionStatus.KERNEL_DIED, ExecutionStatus.KERNEL_RESTARTED})


def now_iso() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.now(timezone.utc).isoformat()


def _capped(text: str, cap: int | None) -> tuple[str, bool]:
    kept = HeadTail(cap)
    kept.append(text)
    return kept.render()


def _display_text(result: ExecutionResult) -> str:
    """text/plain of displayed objects that are not images (``display(df)`` and such)."""
    texts = [
        str(output.data["text/plain"])
        for output in result.outputs
        if output.kind == "display_data"
        and "text/plain" in output.data
        and not any(m in output.data for m in IMAGE_TYPES)
    ]
    return "\n".join(texts)


def _exit_code(result: ExecutionResult) -> int:
    if result.ok:
        return 0
    return 124 if result.status is ExecutionStatus.TIMED_OUT else 1


def _error_text(result: ExecutionResult, truncated: list[str]) -> str | None:
    parts: list[str] = []
    if not result.ok:
        parts.append(result.describe())
        if result.status in _STATE_LOST or result.recovery is Recovery.RESTARTED:
            parts.append("the kernel state (variables, imports) was lost")
    if truncated:
        parts.append(f"output truncated ({', '.join(truncated)}); the middle was omitted")
    if not parts:
        return None
    return _shortened("; ".join(parts))


def _shortened(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def execution_dict(
    session_id: str,
    result: ExecutionResult,
    *,
    cap: int | None,
    saved: Sequence[SavedOutput] = (),
    notes: bool = True,
) -> dict[str, Any]:
    """The gateway's execute result for ``result``; ``saved``: its rich outputs' files."""
    truncated = [
        f"{name} kept {cap} of {size} bytes"
        for name, cut, size in (
            ("stdout", result.stdout_truncated, result.stdout_size),
            ("stderr", result.stderr_truncated, result.stderr_size),
        )
        if cut
    ]
    stderr = result.stderr
    if result.error is not None and result.error.traceback:
        traceback, cut = _capped("\n".join(result.error.traceback), cap)
        if cut:
            truncated.append("traceback")
        separator = "\n" if stderr and not stderr.endswith("\n") else ""
        stderr = f"{stderr}{separator}{traceback}"
    display, cut = _capped(_display_text(result), cap)
    if cut:
        truncated.append("display")
    stdout = result.stdout
    if notes:
        stdout = _with_notes(stdout, display, saved)
    outcome: dict[str, Any] = {
        "session_id": session_id,
        "stdout": stdout,
        "stderr": stderr,
        "exit_code": _exit_code(result),
        "result": result.result or display,
        "error": _error_text(result, truncated),
        "status": result.status.value,
    }
    if display:
        outcome["display"] = display
    if truncated:
        outcome["truncated"] = True
    if saved:
        outcome["files"] = [out.name for out in saved]
        outcome["outputs"] = [out.as_dict() for out in saved]
    return outcome


def refused_dict(session_id: str, reason: str) -> dict[str, Any]:
    """The gateway's execute result for code that was not sent (``status`` "refused")."""
    return {
        "session_id": session_id,
        "stdout": "",
        "stderr": "",
        "exit_code": 1,
        "result": "",
        "error": _shortened(reason),
        "status": "refused",
    }


def _with_notes(stdout: str, display: str, saved: Sequence[SavedOutput]) -> str:
    """``stdout`` followed by marked lines: the displayed text, the saved outputs' files."""
    notes = []
    if display:
        notes.append(f"[jupyter-interp] displayed:\n{display}")
    if saved:
        notes.append(output_note(saved))
    if not notes:
        return stdout
    separator = "\n" if stdout and not stdout.endswith("\n") else ""
    return stdout + separator + "\n".join(notes) + "\n"


def history_entry(code: str, language: str, outcome: dict[str, Any]) -> dict[str, Any]:
    """One history record (the contract's keys, plus ``error``).

    The gateway's history model drops ``error``: an error the stderr does not already
    show (a timeout, a lost kernel, cut output) is appended to it as a marked line.
    """
    stderr, error = outcome["stderr"], outcome["error"]
    if error and error not in stderr:
        separator = "\n" if stderr and not stderr.endswith("\n") else ""
        stderr = f"{stderr}{separator}[jupyter-interp] {error}\n"
    return {
        "timestamp": now_iso(),
        "code": code,
        "language": language,
        "stderr": stderr,
        **{k: outcome[k] for k in ("stdout", "exit_code", "result", "error")},
    }
