"""The MCP tools: their argument models, JSON schemas and descriptions for models.

Strategy: each tool's arguments are one pydantic model (pydantic ships with the MCP SDK);
its JSON schema, with a description per field, is what ``tools/list`` advertises, and
``parse_arguments`` validates a call against the same model, so the advertised schema
and the accepted input never drift apart. Unknown fields are refused. A call that does
not fit its schema is a protocol error (``INVALID_PARAMS``) naming the fields at fault;
what goes wrong after that (the code failed, a path escapes the root) is a tool result.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .sessions import DEFAULT_SESSION

__all__ = ["TOOLS", "TOOL_MODELS", "parse_arguments"]

_SESSION = Field(
    default=DEFAULT_SESSION,
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9_.-]+$",
    description=(
        "Named session (its own kernel and variables) on this connection; "
        "started on first use. Omit it to use the default session."
    ),
)


def _encoding(text: str, base64: str) -> Any:
    return Field(
        default="text",
        pattern="^(text|base64)$",
        description=f"'text' {text}; 'base64' {base64}.",
    )


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Execute(_Arguments):
    code: str = Field(description="Source code to run in the session's kernel.")
    timeout: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Total seconds for this run (default: the server's). On expiry the kernel is "
            "interrupted, then restarted if it does not stop; the output so far is returned."
        ),
    )
    language: str | None = Field(
        default=None,
        description="Pick the kernel by language (e.g. 'python', 'r') when the session starts.",
    )
    kernel: str | None = Field(
        default=None, description="Kernelspec name to start the session with (see list_kernels)."
    )
    session: str = _SESSION


class SessionOnly(_Arguments):
    session: str = _SESSION


class ListFiles(_Arguments):
    path: str = Field(default="", description="Directory relative to the session's file root.")
    session: str = _SESSION


class ReadFile(_Arguments):
    path: str = Field(description="File relative to the session's file root.")
    encoding: str = _encoding("returns UTF-8 text", "returns the bytes base64-encoded")
    session: str = _SESSION


class WriteFile(_Arguments):
    path: str = Field(description="File relative to the session's file root (replaced atomically).")
    content: str = Field(description="The file's content, as text or base64 (see encoding).")
    encoding: str = _encoding("writes content as UTF-8", "decodes it to bytes first")
    session: str = _SESSION


class NoArguments(_Arguments):
    pass


_DESCRIPTIONS: dict[str, tuple[type[_Arguments], str]] = {
    "execute": (
        Execute,
        "Run code in a persistent Jupyter kernel (variables survive between calls) and "
        "return stdout, stderr, the value of the last expression, and any error with its "
        "traceback. Images come back as image content. The result says when the run timed "
        "out, was interrupted, lost its state to a kernel restart, had output truncated, or "
        "waited for input (input() is not answered).",
    ),
    "interrupt": (SessionOnly, "Interrupt the code running in the session's kernel."),
    "restart": (
        SessionOnly,
        "Restart the session's kernel. Every variable, import and open file is lost.",
    ),
    "list_files": (ListFiles, "List a directory under the session's file root."),
    "read_file": (
        ReadFile,
        "Read a file under the session's file root, as text or base64, up to the server's "
        "size limit; larger files are refused with their size.",
    ),
    "write_file": (
        WriteFile,
        "Create or replace a file under the session's file root from text or base64 content.",
    ),
    "list_kernels": (
        NoArguments,
        "List the kernels (languages) the server can start, and which one is the default.",
    ),
}

TOOL_MODELS: dict[str, type[_Arguments]] = {
    name: model for name, (model, _) in _DESCRIPTIONS.items()
}


def _schema(model: type[_Arguments]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


TOOLS: list[types.Tool] = [
    types.Tool(name=name, description=text, input_schema=_schema(model))
    for name, (model, text) in _DESCRIPTIONS.items()
]


def parse_arguments(name: str, arguments: dict[str, Any] | None) -> BaseModel:
    """Validate a call's arguments; raise ``MCPError(INVALID_PARAMS)`` naming what is wrong."""
    model = TOOL_MODELS.get(name)
    if model is None:
        raise MCPError(
            code=types.INVALID_PARAMS,
            message=f"unknown tool {name!r}; the tools are: {', '.join(TOOL_MODELS)}",
        )
    try:
        return model.model_validate(arguments or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
            for error in exc.errors()
        )
        raise MCPError(
            code=types.INVALID_PARAMS, message=f"invalid arguments for {name}: {problems}"
        ) from None
