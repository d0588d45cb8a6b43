"""Rich outputs of an execution as files the gateway's REST callers can fetch.

Strategy: the gateway's REST layer keeps only ``stdout``, ``stderr``, ``exit_code``,
``result`` and ``error`` of an execute result, and its file route takes one path
segment. So each rich output (an image, a PDF, HTML, Markdown, LaTeX or JSON shown with
``display()``) is saved as a file with a flat, route-safe name in the session folder,
and a short note, clearly marked, tells the caller what each one is and what it is
called. Only the preferred MIME type of each output is saved; an ``execute_result``'s
HTML or JSON is not (its text/plain is the result), but its image is.

``save_outputs`` uploads them into the session folder (at most 20 per execution; a
failed upload is logged and skipped, never fatal to the execution's result).

Invariants: names match ``output-[g<generation>-]<count>-<n>.<ext>`` (letters, digits,
``-`` and ``.`` only); nothing is inlined as base64 in a result; undecodable data is
skipped, never saved half.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from ..errors import JupyterInterpError
from ..protocol.result import ExecutionResult
from ..session.session import Session

__all__ = [
    "MAX_SAVED_OUTPUTS",
    "IMAGE_TYPES",
    "SAVED_TYPES",
    "OutputFile",
    "SavedOutput",
    "output_files",
    "output_name",
    "output_note",
    "save_outputs",
]

logger = logging.getLogger("jupyter_interp.provider")

#: rich outputs saved per execution at most
MAX_SAVED_OUTPUTS = 20

#: image MIME types, in order of preference within one bundle
IMAGE_TYPES: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/svg+xml": "svg",
}
#: MIME types saved as files, in order of preference within one bundle, and extensions
SAVED_TYPES: dict[str, str] = {
    **IMAGE_TYPES,
    "application/pdf": "pdf",
    "text/html": "html",
    "text/markdown": "md",
    "text/latex": "tex",
    "application/json": "json",
}
#: types whose wire form is base64 text
_BASE64_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
#: what an ``execute_result`` is saved for: its text/plain already is the result
_RESULT_SAVED_TYPES = frozenset({*IMAGE_TYPES, "application/pdf"})


@attrs.frozen(kw_only=True)
class OutputFile:
    """One rich output, decoded, with the extension of its file."""

    mime_type: str
    data: bytes

    @property
    def extension(self) -> str:
        return SAVED_TYPES[self.mime_type]


@attrs.frozen(kw_only=True)
class SavedOutput:
    """A rich output saved in the session folder under ``name``."""

    name: str
    mime_type: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.name, "mime_type": self.mime_type, "size": self.size}


def _decoded(mime: str, value: object) -> bytes | None:
    if mime == "application/json":
        return json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8")
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        value = "".join(value)  # nbformat's multi-line strings
    if not isinstance(value, str):
        return None
    if mime not in _BASE64_TYPES:
        return value.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None


def output_files(result: ExecutionResult) -> Iterator[OutputFile]:
    """The rich outputs worth a file, one per output (its preferred saved type)."""
    for output in result.outputs:
        allowed = _RESULT_SAVED_TYPES if output.kind == "execute_result" else SAVED_TYPES
        mime = next((m for m in SAVED_TYPES if m in allowed and m in output.data), None)
        if mime is None:
            continue
        data = _decoded(mime, output.data[mime])
        if data:
            yield OutputFile(mime_type=mime, data=data)


def output_name(result: ExecutionResult, index: int, output: OutputFile) -> str:
    """The flat file name of the ``index``-th saved output of ``result``."""
    generation = f"g{result.generation}-" if result.generation else ""
    count = result.execution_count if result.execution_count is not None else "x"
    return f"output-{generation}{count}-{index}.{output.extension}"


def _size(size: int) -> str:
    return f"{size} bytes" if size < 10_000 else f"{size / 1024:.0f} KiB"


def output_note(saved: Sequence[SavedOutput]) -> str:
    """The marked line that tells a REST caller which files the cell's outputs became."""
    listed = ", ".join(f"{out.name} ({out.mime_type}, {_size(out.size)})" for out in saved)
    outputs = "output" if len(saved) == 1 else "outputs"
    return (
        f"[jupyter-interp] {len(saved)} rich {outputs} saved as files in this session: "
        f"{listed}. Download each by name from the session's files."
    )


async def save_outputs(session: Session, result: ExecutionResult) -> list[SavedOutput]:
    """Save the rich outputs of ``result`` as flat-named files in the session's folder."""
    saved: list[SavedOutput] = []
    for index, output in enumerate(output_files(result), start=1):
        if index > MAX_SAVED_OUTPUTS:
            logger.warning(
                "only the first %d rich outputs of an execution are saved", MAX_SAVED_OUTPUTS
            )
            break
        name = output_name(result, index, output)
        try:
            committed = await session.upload(name, output.data)
        except JupyterInterpError as exc:
            logger.warning("saving %s failed: %s", name, exc)
            continue
        saved.append(SavedOutput(name=name, mime_type=output.mime_type, size=committed.size))
    return saved
