"""One REST call as a plain value (``HttpRequest``), and the one way a token becomes a
header (``auth_headers``).

Strategy: a request is what to send (method, path relative to the server's base URL,
JSON body, query, extra headers) and which statuses mean success; the I/O layer sends
it. Validation happens at construction, so no request can leave the core malformed.

Invariants:

* The path is relative, without ``.``/``..`` segments; query and header maps hold
  strings without control characters; the headers the transport sets itself
  (``Authorization``, ``Cookie``, ``Origin``, ``Host``, ``Content-Type``) are refused.
* ``auth_headers`` builds ``Authorization: token <T>`` (lowercase ``token``, one
  space), which Jupyter Server, Kernel Gateway and Enterprise Gateway all accept. No
  ``Origin`` header is ever built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import LocalProtocolError

__all__ = ["HttpRequest", "auth_headers"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
_PATH = re.compile(r"[\w.~%+@:-]+(?:/[\w.~%+@:-]+)*", re.ASCII)
_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})
_OK = frozenset({200})


def _check_method(_instance: object, _attribute: attrs.Attribute[str], method: str) -> None:
    if method not in _METHODS:
        raise LocalProtocolError(f"unsupported HTTP method {method!r}")


def _check_path(_instance: object, _attribute: attrs.Attribute[str], path: str) -> None:
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise LocalProtocolError("request path must be relative, without a leading slash")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise LocalProtocolError("request path must not contain '.' or '..' segments")


_RESERVED_HEADERS = frozenset({"authorization", "cookie", "origin", "host", "content-type"})


def _check_strings(
    _instance: object,
    attribute: attrs.Attribute[Mapping[str, str] | None],
    value: Mapping[str, str] | None,
) -> None:
    for key, item in (value or {}).items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise LocalProtocolError(f"request {attribute.name} must map strings to strings")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key + item):
            raise LocalProtocolError(f"request {attribute.name} must not hold control characters")
        if attribute.name == "headers" and key.lower() in _RESERVED_HEADERS:
            raise LocalProtocolError(f"request header {key!r} is set by the transport")


@attrs.frozen(kw_only=True)
class HttpRequest:
    """One REST call: what to send and which statuses mean success."""

    method: str = attrs.field(validator=_check_method)
    #: relative to the server's base URL, without a leading slash (``api/kernels``)
    path: str = attrs.field(validator=_check_path)
    #: the JSON body, or ``None`` for no body
    json: Mapping[str, Any] | None = None
    success: frozenset[int] = _OK
    #: query parameters, URL-encoded by the transport (``{"content": "0"}``)
    query: Mapping[str, str] | None = attrs.field(default=None, validator=_check_strings)
    #: extra headers (e.g. ``Range``); never the ones the transport sets itself
    headers: Mapping[str, str] | None = attrs.field(default=None, validator=_check_strings)

    @property
    def idempotent(self) -> bool:
        """GET, HEAD and DELETE: repeating the call is safe, so it may be retried."""
        return self.method in _IDEMPOTENT

    def encode_body(self) -> bytes | None:
        """The UTF-8 JSON body to send (``Content-Type: application/json``), if any.

        Raises:
            LocalProtocolError: the body is not JSON-serializable.
        """
        if self.json is None:
            return None
        try:
            return json.dumps(self.json, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(f"request body is not JSON-serializable: {exc}") from exc


def auth_headers(token: str | None) -> dict[str, str]:
    """The headers that authenticate a request: ``{"Authorization": "token <T>"}`` or ``{}``.

    Raises:
        LocalProtocolError: the token contains a control character (header injection).
    """
    if not token:
        return {}
    if not isinstance(token, str) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in token):
        raise LocalProtocolError("the token must be a string without control characters")
    return {"Authorization": f"token {token}"}
