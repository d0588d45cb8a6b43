"""Jupyter REST calls as plain values, and parsers that turn answers into typed results.

Strategy: each builder (``start_kernel``, ``get_kernelspec``, ...) returns an
``HttpRequest`` value (method, path relative to the server's base URL, JSON body, the
statuses that mean success); the I/O layer (``io.http``) sends it and hands the status
and body to the matching ``parse_<builder>`` function, which returns a typed value or
raises. No HTTP library type crosses this boundary, so embedders with their own I/O can
use this module directly. A parser's ``body`` is the raw body (``bytes``/``str``) or an
already decoded JSON value.

Error statuses map, on every route, to the most specific ``ServerError``:

=====================================  ==============================================
403 naming "resource limit" or         ``ResourceLimitError`` (KG/EG ``max_kernels``,
"max kernels"                          EG per-user limits)
other 401/403                          ``AuthenticationError`` (bad token, XSRF, EG
                                       ``KERNEL_USERNAME`` refused, gateway listing off)
404                                    ``KernelNotFound`` on kernel routes,
                                       ``KernelSpecNotFound`` on kernelspec routes,
                                       else ``NotFoundError`` (likely a wrong base URL)
5xx on start naming ``NoSuchKernel``   ``KernelSpecNotFound`` (KG/EG tracebacks; Jupyter
                                       Server says only "Unhandled error")
5xx on start mentioning a timeout      ``KernelLaunchTimeout`` (EG launch timeout)
other 5xx on start                     ``KernelLaunchError``
anything else outside ``success``      ``ServerError``
=====================================  ==============================================

Invariants:

* Ids and names that go into a path are validated first (kernel ids must have the UUID
  shape servers route on, kernelspec names the jupyter_client name pattern), so no
  builder can produce a path outside its route: bad input is a ``LocalProtocolError``.
* Parsers raise only ``jupyter_interp.errors`` types; a success status whose body is not
  JSON or has the wrong shape is a ``RemoteProtocolError``.
* Error messages quote only the ``message``/``reason`` fields (and the last traceback
  line) of a JSON error body, whitespace-collapsed and bounded, plus the status.
  Non-JSON bodies are never quoted: Jupyter Server's HTML error page embeds the token.
* Requests are ``http_request.HttpRequest`` values; ``auth_headers`` (there, re-exported
  here) is the one place a token becomes a header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import Enum
from http import HTTPStatus
from typing import Any

from ..errors import (
    AuthenticationError,
    KernelLaunchError,
    KernelLaunchTimeout,
    KernelNotFound,
    KernelSpecNotFound,
    LocalProtocolError,
    NotFoundError,
    RemoteProtocolError,
    ResourceLimitError,
    ServerError,
)
from .http_request import HttpRequest, auth_headers
from .rest_models import (
    KERNEL_ID,
    ApiStatus,
    KernelModel,
    KernelSpec,
    KernelSpecs,
    expect_type,
)

__all__ = [
    "ApiStatus",
    "HttpRequest",
    "KernelModel",
    "KernelSpec",
    "KernelSpecs",
    "api_status",
    "auth_headers",
    "delete_kernel",
    "error_detail",
    "get_kernel",
    "get_kernelspec",
    "interrupt_kernel",
    "list_kernels",
    "list_kernelspecs",
    "parse_api_status",
    "parse_delete_kernel",
    "parse_get_kernel",
    "parse_get_kernelspec",
    "parse_interrupt_kernel",
    "parse_list_kernels",
    "parse_list_kernelspecs",
    "parse_restart_kernel",
    "parse_start_kernel",
    "restart_kernel",
    "start_kernel",
]

_KERNELSPEC_NAME = re.compile(r"[a-z0-9._-]+", re.ASCII | re.IGNORECASE)
_OK = frozenset({200})
_CREATED = frozenset({200, 201})
_NO_CONTENT = frozenset({200, 204})
_MAX_QUOTE = 300


# --------------------------------------------------------------------------- requests


def _kernel_path(kernel_id: str, *rest: str) -> str:
    if not isinstance(kernel_id, str) or not KERNEL_ID.fullmatch(kernel_id):
        raise LocalProtocolError("kernel id must have the UUID shape word-word-word-word-word")
    return "/".join(("api/kernels", kernel_id, *rest))


def _check_kernelspec_name(name: object) -> str:
    if not isinstance(name, str) or not _KERNELSPEC_NAME.fullmatch(name) or name in (".", ".."):
        raise LocalProtocolError(f"invalid kernelspec name {name!r} (allowed: [A-Za-z0-9._-]+)")
    return name


def api_status() -> HttpRequest:
    """``GET api``: the server version; a cheap probe (needs the token on KG/EG)."""
    return HttpRequest(method="GET", path="api")


def list_kernels() -> HttpRequest:
    """``GET api/kernels`` (gateways answer 403 unless listing is enabled)."""
    return HttpRequest(method="GET", path="api/kernels")


def get_kernel(kernel_id: str) -> HttpRequest:
    """``GET api/kernels/<id>``.

    Raises:
        LocalProtocolError: ``kernel_id`` does not have the UUID shape.
    """
    return HttpRequest(method="GET", path=_kernel_path(kernel_id))


def start_kernel(
    name: str | None,
    *,
    env: Mapping[str, str] | None = None,
    path: str | None = None,
) -> HttpRequest:
    """``POST api/kernels``: start a kernel; success is 201 with the kernel model.

    Args:
        name: the kernelspec name, or ``None`` for the server's default.
        env: environment for the kernel. Gateways keep only ``KERNEL_*`` and allowed
            names; Jupyter Server ignores it.
        path: API path of the kernel's working directory (Jupyter Server, KG).

    Raises:
        LocalProtocolError: a bad name, a non-string env key or value, an env key with
            ``=``, or a NUL anywhere.
    """
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = _check_kernelspec_name(name)
    if env is not None:
        for key, value in env.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise LocalProtocolError("kernel env keys and values must be strings")
            if not key or "=" in key or "\0" in key or "\0" in value:
                raise LocalProtocolError(f"invalid kernel env entry {key!r}")
        body["env"] = dict(env)
    if path is not None:
        if not isinstance(path, str) or "\0" in path:
            raise LocalProtocolError("kernel path must be a string without NUL")
        body["path"] = path
    return HttpRequest(method="POST", path="api/kernels", json=body, success=_CREATED)


def delete_kernel(kernel_id: str) -> HttpRequest:
    """``DELETE api/kernels/<id>``: shut the kernel down; success is 204."""
    return HttpRequest(method="DELETE", path=_kernel_path(kernel_id), success=_NO_CONTENT)


def interrupt_kernel(kernel_id: str) -> HttpRequest:
    """``POST api/kernels/<id>/interrupt``; success is 204."""
    return HttpRequest(
        method="POST", path=_kernel_path(kernel_id, "interrupt"), success=_NO_CONTENT
    )


def restart_kernel(kernel_id: str) -> HttpRequest:
    """``POST api/kernels/<id>/restart``; 200 with the model (kernel may not answer yet)."""
    return HttpRequest(method="POST", path=_kernel_path(kernel_id, "restart"))


def list_kernelspecs() -> HttpRequest:
    """``GET api/kernelspecs``."""
    return HttpRequest(method="GET", path="api/kernelspecs")


def get_kernelspec(name: str) -> HttpRequest:
    """``GET api/kernelspecs/<name>``.

    Raises:
        LocalProtocolError: ``name`` is not a valid kernelspec name.
    """
    return HttpRequest(method="GET", path=f"api/kernelspecs/{_check_kernelspec_name(name)}")


# --------------------------------------------------------------------------- results


class _Route(Enum):
    """What a request addressed; decides how 404 and 5xx answers are read."""

    SERVER = "server status request"
    KERNELS = "kernel listing"
    KERNEL = "kernel request"
    KERNEL_START = "kernel start"
    KERNELSPECS = "kernelspec listing"
    KERNELSPEC = "kernelspec request"


def _decode(body: object) -> object:
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        try:
            return json.loads(body if isinstance(body, str) else bytes(body))
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError("the server answered with a body that is not JSON") from exc
    return body


def _quote(value: object) -> str:
    if not isinstance(value, str):
        return ""
    printable = "".join(c if c.isprintable() else " " for c in value[: 2 * _MAX_QUOTE])
    text = " ".join(printable.split())
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 3] + "..."


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unexpected status"


def error_detail(status: int, body: object) -> str:
    """What an error answer says, fit to quote: the ``message``/``reason`` fields and the
    last traceback line of a JSON body, else the status's phrase (other bodies, such as
    Jupyter Server's HTML error page, which embeds the token, are never quoted)."""
    try:
        decoded = _decode(body)
    except RemoteProtocolError:
        decoded = None
    fields = decoded if isinstance(decoded, Mapping) else {}
    traceback = fields.get("traceback")
    last_line = traceback.strip().rpartition("\n")[2] if isinstance(traceback, str) else None
    quoted = (_quote(fields.get("message")), _quote(fields.get("reason")), _quote(last_line))
    return "; ".join(part for part in dict.fromkeys(quoted) if part) or _phrase(status)


def _server_error(status: int, body: object, route: _Route) -> ServerError:
    detail = error_detail(status, body)
    text = f"{route.value} failed: {detail}"
    found = detail.lower()
    if status == 403 and ("resource limit" in found or "max kernels" in found):
        return ResourceLimitError(text, status=status)
    if status == 403 and route is _Route.KERNELS:
        # gateways refuse listing with 403 even for the right token; Jupyter Server
        # answers a wrong token with 403 too: the answer cannot tell them apart
        hint = "wrong token, or a gateway with KG_LIST_KERNELS/EG_LIST_KERNELS off"
        return ServerError(f"{text} ({hint})", status=status)
    if status in (401, 403):
        if "xsrf" in found:
            # Jupyter Server checks XSRF only on a request that no token authenticated:
            # its complaint means the token was missing or wrong, not a missing cookie
            text = f"{route.value} failed: the server refused our credentials (wrong or no token)"
        return AuthenticationError(text, status=status)
    if status == 404:
        if route is _Route.KERNEL:
            return KernelNotFound(text, status=status)
        if route is _Route.KERNELSPEC:
            return KernelSpecNotFound(text, status=status)
        return NotFoundError(f"{text} (is the base URL right?)", status=status)
    if route is _Route.KERNEL_START and 500 <= status <= 599:
        if "no such kernel" in found or "nosuchkernel" in found:
            return KernelSpecNotFound(text, status=status)
        if "timeout" in found or "timed out" in found:
            return KernelLaunchTimeout(text, status=status)
        return KernelLaunchError(
            f"{text} (check the kernelspec name and the server log)", status=status
        )
    return ServerError(text, status=status)


def _raise_unless(status: int, body: object, route: _Route, success: frozenset[int]) -> None:
    if status not in success:
        raise _server_error(status, body, route)


def _checked(status: int, body: object, route: _Route, success: frozenset[int]) -> object:
    _raise_unless(status, body, route, success)
    return _decode(body)


# Every parser raises the ServerError subclass the module docstring's table names for a
# status outside the request's ``success`` set, and RemoteProtocolError for a success
# status whose body is not JSON or has the wrong shape.


def parse_api_status(status: int, body: bytes | object) -> ApiStatus:
    """Parse the answer to ``api_status()`` (a 404 here means a wrong base URL)."""
    return ApiStatus.from_wire(_checked(status, body, _Route.SERVER, _OK))


def parse_list_kernels(status: int, body: bytes | object) -> tuple[KernelModel, ...]:
    """Parse the answer to ``list_kernels()`` (gateways send 403 unless listing is on)."""
    models = expect_type(_checked(status, body, _Route.KERNELS, _OK), list, "kernel list")
    return tuple(KernelModel.from_wire(model) for model in models)


def parse_get_kernel(status: int, body: bytes | object) -> KernelModel:
    """Parse the answer to ``get_kernel()`` (404: ``KernelNotFound``)."""
    return KernelModel.from_wire(_checked(status, body, _Route.KERNEL, _OK))


def parse_start_kernel(status: int, body: bytes | object) -> KernelModel:
    """Parse the answer to ``start_kernel()``: 201 and the new kernel's model."""
    return KernelModel.from_wire(_checked(status, body, _Route.KERNEL_START, _CREATED))


def parse_restart_kernel(status: int, body: bytes | object) -> KernelModel:
    """Parse the answer to ``restart_kernel()`` (404: ``KernelNotFound``)."""
    return KernelModel.from_wire(_checked(status, body, _Route.KERNEL, _OK))


def parse_delete_kernel(status: int, body: bytes | object) -> None:
    """Check the answer to ``delete_kernel()`` (204; 404: ``KernelNotFound``)."""
    _raise_unless(status, body, _Route.KERNEL, _NO_CONTENT)


def parse_interrupt_kernel(status: int, body: bytes | object) -> None:
    """Check the answer to ``interrupt_kernel()`` (204; 404: ``KernelNotFound``)."""
    _raise_unless(status, body, _Route.KERNEL, _NO_CONTENT)


def parse_list_kernelspecs(status: int, body: bytes | object) -> KernelSpecs:
    """Parse the answer to ``list_kernelspecs()``."""
    return KernelSpecs.from_wire(_checked(status, body, _Route.KERNELSPECS, _OK))


def parse_get_kernelspec(status: int, body: bytes | object) -> KernelSpec:
    """Parse the answer to ``get_kernelspec()`` (404: ``KernelSpecNotFound``)."""
    return KernelSpec.from_wire(_checked(status, body, _Route.KERNELSPEC, _OK))
