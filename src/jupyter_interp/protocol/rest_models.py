"""Typed values of Jupyter REST answers: API status, kernel models, kernelspecs.

Strategy: each class is a frozen value built only through ``from_wire``, which
validates the JSON shape of Jupyter Server, Kernel Gateway and Enterprise Gateway
answers and raises ``RemoteProtocolError`` on anything else; unknown extra fields are
ignored, as the servers add fields over time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import RemoteProtocolError

__all__ = ["KERNEL_ID", "ApiStatus", "KernelModel", "KernelSpec", "KernelSpecs", "expect_type"]

#: The id shape servers route on (``\w+-\w+-\w+-\w+-\w+``).
KERNEL_ID = re.compile(r"\w+(?:-\w+){4}", re.ASCII)


def expect_type(value: object, kind: type | tuple[type, ...], what: str) -> Any:
    """Return ``value`` if it is a ``kind``, else raise ``RemoteProtocolError`` naming ``what``."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise RemoteProtocolError(f"{what} has the wrong JSON type ({type(value).__name__})")
    return value


def _optional_str(raw: Mapping[str, Any], key: str, what: str) -> str | None:
    value = raw.get(key)
    return None if value is None else expect_type(value, str, f"{what} {key!r}")


def _str_mapping(value: object, what: str) -> dict[str, Any]:
    raw = expect_type(value, Mapping, what)
    if not all(isinstance(key, str) for key in raw):
        raise RemoteProtocolError(f"{what} has a non-string key")
    return dict(raw)


def _optional_mapping(raw: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    value = raw.get(key)
    return {} if value is None else _str_mapping(value, f"{what} {key!r}")


@attrs.frozen(kw_only=True)
class ApiStatus:
    """``GET api``: the server's version; Enterprise Gateway adds its own."""

    version: str
    gateway_version: str | None = None

    @classmethod
    def from_wire(cls, data: object) -> ApiStatus:
        """Validate a decoded ``GET api`` body (``RemoteProtocolError`` if malformed)."""
        raw = _str_mapping(data, "api status")
        version = expect_type(raw.get("version"), str, "api status 'version'")
        return cls(version=version, gateway_version=_optional_str(raw, "gateway_version", "api"))


@attrs.frozen(kw_only=True)
class KernelModel:
    """A running kernel as the server describes it (state may lag behind the kernel)."""

    id: str
    name: str
    #: ``starting``, ``idle``, ``busy``, ``dead``, ... as tracked by the server
    execution_state: str | None = None
    #: ISO 8601 text as sent by the server
    last_activity: str | None = None
    #: number of open kernel WebSockets
    connections: int = 0
    #: why a pending start failed, when the server says so
    reason: str | None = None

    @classmethod
    def from_wire(cls, data: object) -> KernelModel:
        """Validate a decoded kernel model (``RemoteProtocolError`` if malformed)."""
        raw = _str_mapping(data, "kernel model")
        kernel_id = expect_type(raw.get("id"), str, "kernel model 'id'")
        if not KERNEL_ID.fullmatch(kernel_id):
            raise RemoteProtocolError("kernel model 'id' does not have the UUID shape")
        connections = raw.get("connections")
        return cls(
            id=kernel_id,
            name=expect_type(raw.get("name"), str, "kernel model 'name'"),
            execution_state=_optional_str(raw, "execution_state", "kernel model"),
            last_activity=_optional_str(raw, "last_activity", "kernel model"),
            connections=0 if connections is None else expect_type(connections, int, "connections"),
            reason=_optional_str(raw, "reason", "kernel model") or None,
        )


@attrs.frozen(kw_only=True)
class KernelSpec:
    """One kernelspec; ``language`` and ``interrupt_mode`` are the useful fields."""

    name: str
    language: str
    display_name: str
    #: ``signal`` (the server signals the process) or ``message`` (interrupt_request)
    interrupt_mode: str = "signal"
    argv: tuple[str, ...] = ()
    env: Mapping[str, Any] = attrs.field(factory=dict)
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    #: resource name -> server-relative URL (logos)
    resources: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_wire(cls, data: object, *, name: str | None = None) -> KernelSpec:
        """Validate a decoded kernelspec model; ``name`` is used when it has none."""
        raw = _str_mapping(data, "kernelspec")
        spec = _str_mapping(raw.get("spec"), "kernelspec 'spec'")
        spec_name = _optional_str(raw, "name", "kernelspec") or name
        if spec_name is None:
            raise RemoteProtocolError("kernelspec has no name")
        argv = expect_type(spec.get("argv", []), list, "kernelspec 'argv'")
        if not all(isinstance(arg, str) for arg in argv):
            raise RemoteProtocolError("kernelspec 'argv' holds a non-string")
        return cls(
            name=spec_name,
            language=_optional_str(spec, "language", "kernelspec") or "",
            display_name=_optional_str(spec, "display_name", "kernelspec") or spec_name,
            interrupt_mode=_optional_str(spec, "interrupt_mode", "kernelspec") or "signal",
            argv=tuple(argv),
            env=_optional_mapping(spec, "env", "kernelspec"),
            metadata=_optional_mapping(spec, "metadata", "kernelspec"),
            resources=_optional_mapping(raw, "resources", "kernelspec"),
        )


@attrs.frozen(kw_only=True)
class KernelSpecs:
    """``GET api/kernelspecs``: the default name and every spec by name."""

    default: str | None
    specs: Mapping[str, KernelSpec]

    @classmethod
    def from_wire(cls, data: object) -> KernelSpecs:
        """Validate a decoded ``GET api/kernelspecs`` body (``RemoteProtocolError``)."""
        raw = _str_mapping(data, "kernelspecs")
        entries = _str_mapping(raw.get("kernelspecs"), "kernelspecs 'kernelspecs'")
        specs = {key: KernelSpec.from_wire(value, name=key) for key, value in entries.items()}
        return cls(default=_optional_str(raw, "default", "kernelspecs"), specs=specs)


# --------------------------------------------------------------------------- parsers
