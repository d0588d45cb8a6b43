"""An ``ExecutionResult`` as an MCP tool result a model reads well.

Strategy: one text block in a compact, labelled form (``[stdout]``, ``[stderr]``,
``[result]``, ``[error]`` with the ANSI-free traceback, then ``[outcome]`` lines for
what a model must know: timed out, interrupted, kernel restarted and state lost, output
truncated or dropped by the server's rate limit, input requested), then one MCP image
block per image while the call's image byte budget lasts. Images beyond the budget and
other binary outputs (PDF, ...) are kept in the connection's ``OutputStore`` and
returned as resource links the client reads with ``resources/read``. ``isError`` is set
whenever the code did not run cleanly to the end.

Invariants: no rich output is silently dropped (it is inline, linked, or its
``text/plain`` form is in the text); the store keeps a bounded number of outputs, the
oldest evicted first.
"""

from __future__ import annotations

import base64
import binascii

import mcp_types as types

from ..protocol.result import ExecutionResult, ExecutionStatus, Recovery
from .outputs import OutputStore

__all__ = ["tool_result"]

_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_BINARY = ("application/pdf",)


def _text(value: object) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _outcome_lines(result: ExecutionResult) -> list[str]:
    lines: list[str] = []
    status = result.status
    if status is ExecutionStatus.TIMED_OUT or status is ExecutionStatus.CANCELLED:
        what = "timed out" if status is ExecutionStatus.TIMED_OUT else "was cancelled"
        if result.recovery is Recovery.RESTARTED:
            lines.append(
                f"the run {what}; the kernel did not stop and was restarted: all state is lost"
            )
        else:
            lines.append(f"the run {what}; the kernel was interrupted (state kept)")
    elif status in (ExecutionStatus.KERNEL_DIED, ExecutionStatus.KERNEL_RESTARTED):
        lines.append(f"{result.describe()}: all variables and imports are lost")
    elif status is ExecutionStatus.INPUT_REQUIRED:
        lines.append("the code asked for input (input()), which this server does not answer")
    elif status is not ExecutionStatus.OK and status is not ExecutionStatus.ERROR:
        lines.append(result.describe())
    if result.detail and status in (ExecutionStatus.TIMED_OUT, ExecutionStatus.CANCELLED):
        lines.append(result.detail)
    if result.stdout_truncated:
        lines.append(
            f"stdout truncated: {result.stdout_size} bytes produced, its head and tail kept"
        )
    if result.stderr_truncated:
        lines.append(
            f"stderr truncated: {result.stderr_size} bytes produced, its head and tail kept"
        )
    if result.output_dropped:
        lines.append("the server dropped some output (its output rate limit was exceeded)")
    return lines


def tool_result(
    result: ExecutionResult, store: OutputStore, image_budget: int
) -> types.CallToolResult:
    """The MCP result for ``result``; images inline within ``image_budget`` bytes."""
    parts: list[str] = []
    if result.stdout:
        parts.append(f"[stdout]\n{result.stdout.rstrip(chr(10))}")
    if result.stderr:
        parts.append(f"[stderr]\n{result.stderr.rstrip(chr(10))}")
    blocks: list[types.ContentBlock] = []
    spent = 0
    for output in result.outputs:
        kept = False
        for mime in (*_IMAGES, *_BINARY):
            if mime not in output.data:
                continue
            try:
                data = base64.b64decode(_text(output.data[mime]), validate=False)
            except (binascii.Error, ValueError):
                continue
            if mime in _IMAGES and spent + len(data) <= image_budget:
                spent += len(data)
                blocks.append(
                    types.ImageContent(data=base64.b64encode(data).decode(), mime_type=mime)
                )
            else:
                uri = store.add(mime, data)
                blocks.append(
                    types.ResourceLink(
                        uri=uri,
                        name=uri.rsplit("/", 1)[-1],
                        mime_type=mime,
                        size=len(data),
                        description=f"{mime} output ({len(data)} bytes) kept by the server",
                    )
                )
            kept = True
            break
        plain = output.data.get("text/plain")
        if not kept and output.kind != "execute_result" and plain is not None:
            parts.append(f"[display]\n{_text(plain)}")
    if result.result is not None:
        parts.append(f"[result]\n{result.result}")
    if result.error is not None:
        trace = "\n".join(result.error.traceback) or result.error.summary()
        parts.append(f"[error] {result.error.summary()}\n{trace}")
    outcome = _outcome_lines(result)
    if outcome:
        parts.append("[outcome]\n" + "\n".join(outcome))
    text = "\n".join(parts) if parts else "[no output]"
    return types.CallToolResult(
        content=[types.TextContent(text=text), *blocks],
        structured_content={
            "status": result.status.value,
            "execution_count": result.execution_count,
            "truncated": result.truncated,
            "output_dropped": result.output_dropped,
            "recovery": None if result.recovery is None else result.recovery.value,
            "kernel_generation": result.generation,
        },
        is_error=not result.ok,
    )
