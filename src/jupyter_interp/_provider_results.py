"""Execution results as the gateway's dicts: small, honest, made for a model's context.

Strategy: the gateway's agent tool puts ``json.dumps`` of an execute result straight
into the model's prompt, so the dict carries text only and stays bounded: stdout and
stderr are already capped by the Client's output budget (head and tail kept around a
marker); a traceback and the text of displayed objects get the same cap; images never
travel inline (the provider saves them as files and lists their names).

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

import base64
import binascii
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import attrs

from .protocol.budget import HeadTail
from .protocol.result import ExecutionResult, ExecutionStatus, Recovery

__all__ = [
    "ImageOutput",
    "execution_dict",
    "history_entry",
    "images_of",
    "now_iso",
    "refused_dict",
]

#: image MIME types saved as files, in order of preference within one bundle
IMAGE_TYPES: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/svg+xml": "svg",
}
_MAX_ERROR_CHARS = 500
_STATE_LOST = frozenset({ExecutionStatus.KERNEL_DIED, ExecutionStatus.KERNEL_RESTARTED})


def now_iso() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.now(timezone.utc).isoformat()


@attrs.frozen(kw_only=True)
class ImageOutput:
    """One displayed image, decoded."""

    mime_type: str
    data: bytes

    @property
    def extension(self) -> str:
        return IMAGE_TYPES[self.mime_type]


def images_of(result: ExecutionResult) -> Iterator[ImageOutput]:
    """The images the execution displayed (one per output, the preferred type)."""
    for output in result.outputs:
        mime = next((m for m in IMAGE_TYPES if m in output.data), None)
        value = output.data.get(mime) if mime else None
        if mime is None or not isinstance(value, str):
            continue
        if mime == "image/svg+xml":
            yield ImageOutput(mime_type=mime, data=value.encode("utf-8"))
            continue
        try:
            yield ImageOutput(mime_type=mime, data=base64.b64decode(value, validate=False))
        except (binascii.Error, ValueError):
            continue


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
    files: list[str],
) -> dict[str, Any]:
    """The gateway's execute result for ``result``; ``files`` are saved image names."""
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
    outcome: dict[str, Any] = {
        "session_id": session_id,
        "stdout": result.stdout,
        "stderr": stderr,
        "exit_code": _exit_code(result),
        "result": result.result or "",
        "error": _error_text(result, truncated),
        "status": result.status.value,
    }
    if display:
        outcome["display"] = display
    if truncated:
        outcome["truncated"] = True
    if files:
        outcome["files"] = files
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


def history_entry(code: str, language: str, outcome: dict[str, Any]) -> dict[str, Any]:
    """One history record (the contract's keys, plus ``error``)."""
    return {
        "timestamp": now_iso(),
        "code": code,
        "language": language,
        **{k: outcome[k] for k in ("stdout", "stderr", "exit_code", "result", "error")},
    }
