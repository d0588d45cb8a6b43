"""Execution results as the gateway's dicts: small, honest, made for a model's context.

Strategy: the gateway's agent tool puts ``json.dumps`` of an execute result straight
into the model's prompt, so the dict carries text only and stays bounded: stdout and
stderr are already capped by the Client's output budget (head and tail kept around a
marker); a traceback and the text of displayed objects get the same cap; rich outputs
never travel inline (the provider saves them as files, see ``outputs``).

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

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any

from ..protocol.budget import HeadTail
from ..protocol.result import ExecutionResult, ExecutionStatus, Recovery
from .outputs import IMAGE_TYPES, SavedOutput, output_note

__all__ = [
    "execution_dict",
    "history_entry",
    "language_refusal",
    "now_iso",
    "refused_dict",
]

_MAX_ERROR_CHARS = 500
#: a repr that says only what the object is (``<IPython.core.display.HTML object>``)
_BARE_REPR = re.compile(r"<[\w.]+ object(?: at 0x[0-9a-fA-F]+)?>\Z")
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title"})
_BREAK_TAGS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table"})
_STATE_LOST = frozenset({ExecutionStatus.KERNEL_DIED, ExecutionStatus.KERNEL_RESTARTED})


def now_iso() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.now(timezone.utc).isoformat()


def _capped(text: str, cap: int | None) -> tuple[str, bool]:
    kept = HeadTail(cap)
    kept.append(text)
    return kept.render()


class _HtmlText(HTMLParser):
    """The visible text of an HTML fragment (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in _HIDDEN_TAGS
        if tag in _BREAK_TAGS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in _HIDDEN_TAGS and self._hidden > 0
        if tag in _BREAK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _output_text(data: Mapping[str, Any]) -> str | None:
    """The most useful text of one display: markdown, then text/plain unless it is a
    bare object repr (``<IPython.core.display.HTML object>``), then the HTML's text."""
    plain = data.get("text/plain")
    useful_plain = plain is not None and not _BARE_REPR.match(str(plain))
    for mime in ("text/markdown", *(("text/plain",) if useful_plain else ())):
        if isinstance(data.get(mime), str):
            return str(data[mime])
    html = data.get("text/html")
    text = _html_text(html) if isinstance(html, str) else ""
    return text or (None if plain is None else str(plain))


def _display_text(result: ExecutionResult) -> str:
    """The text of displayed objects that are not images (``display(df)`` and such)."""
    texts = [
        _output_text(output.data)
        for output in result.outputs
        if output.kind == "display_data" and not any(m in output.data for m in IMAGE_TYPES)
    ]
    return "\n".join(text for text in texts if text)


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


def refused_dict(session_id: str, reason: str, *, status: str = "refused") -> dict[str, Any]:
    """The gateway's execute result for code that was not sent."""
    return {
        "session_id": session_id,
        "stdout": "",
        "stderr": "",
        "exit_code": 1,
        "result": "",
        "error": _shortened(reason),
        "status": status,
    }


def _language_key(language: str) -> str:
    return language.strip().lower().rstrip("0123456789")  # python3 is python


def language_refusal(session_id: str, asked: str | None, spoken: str) -> dict[str, Any] | None:
    """The execute result that refuses code in ``asked`` for a kernel that speaks
    ``spoken``; None when it may run. No language, an unknown kernel language, and the
    contract's default ``"python"`` (the gateway sends it when its caller names none)
    always run."""
    if not asked or not spoken or _language_key(asked) in (_language_key(spoken), "python"):
        return None
    reason = (
        f"not run: this session's kernel runs {spoken}, not {asked.strip()}; start a "
        f"session with config={{'language': {asked.strip()!r}}} for {asked.strip()} code"
    )
    return refused_dict(session_id, reason, status="language_mismatch")


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
