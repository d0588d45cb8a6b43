"""Client requests for one client session, built from injected ids and clock.

Strategy: a ``MessageFactory`` holds our client session id, a fresh-id callable and a
clock; every builder makes a header from them (``format_date``: ISO 8601 UTC with
milliseconds and ``Z``, as Jupyter writes dates) and a ``Message`` whose fields it has
checked itself, so building a request costs no validator runs.

Invariants:

* Builders never read a clock or make ids themselves: both are injected, so the core
  stays deterministic and testable.
* ``execute_request`` always carries all six content fields (some kernels index them
  directly), and refuses code that cannot be encoded as UTF-8; ``input_reply`` refuses
  such a value too.
* ``request`` refuses a channel that is not a Jupyter channel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from ..errors import LocalProtocolError
from .messages import (
    CHANNELS,
    PROTOCOL_VERSION,
    Header,
    Message,
    _checked_header,
    _message_with_header,
)

__all__ = ["MessageFactory", "format_date"]


def format_date(moment: datetime) -> str:
    """Format a moment as the ISO 8601 UTC string Jupyter uses (milliseconds, ``Z``).

    The text up to the seconds is kept for the last second formatted (requests come
    many to a second): only the milliseconds are formatted anew.
    """
    global _last_second
    zone = moment.tzinfo
    if zone is not timezone.utc:
        moment = (
            moment.replace(tzinfo=timezone.utc) if zone is None else moment.astimezone(timezone.utc)
        )
    second = moment.timestamp() // 1
    cached, prefix = _last_second
    if second != cached:
        prefix = _SECOND_FORMAT % (  # ``isoformat`` to the second, twice as fast
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
        )
        _last_second = (second, prefix)
    return _MILLIS_FORMAT % (prefix, moment.microsecond // 1000)


_SECOND_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d"
_MILLIS_FORMAT = "%s.%03dZ"
#: the start of the last second formatted (seconds since the epoch) and its text
_last_second: tuple[float, str] = (math.nan, "")


def _check_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{what} is not valid UTF-8 text: {exc.reason}") from exc


@attrs.frozen(kw_only=True)
class MessageFactory:
    """Builds client requests for one client session.

    ``session`` is our client session id: the same value goes into every header and
    into the WebSocket URL, so the server can route replies and replay after reconnects.
    ``new_id`` must return a fresh unique id per call; ``clock`` returns the current time.
    """

    session: str
    new_id: Callable[[], str]
    clock: Callable[[], datetime]
    username: str = "jupyter_interp"

    def header(self, msg_type: str) -> Header:
        """A new header of ``msg_type`` with a fresh id and the current date."""
        msg_id, session, username = self.new_id(), self.session, self.username
        date = format_date(self.clock())
        if type(msg_id) is type(msg_type) is type(session) is type(username) is str:
            return _checked_header(msg_id, msg_type, session, username, date, PROTOCOL_VERSION, {})
        return Header(  # the validators name what is wrong
            msg_id=msg_id, msg_type=msg_type, session=session, username=username, date=date
        )

    def request(
        self,
        channel: str,
        msg_type: str,
        content: Mapping[str, Any],
        *,
        parent: Header | None = None,
    ) -> Message:
        """Any request; the specific builders below are the usual entry points.

        Raises:
            LocalProtocolError: ``channel`` is not a Jupyter channel.
        """
        if channel not in CHANNELS:
            raise LocalProtocolError(f"unknown channel {channel!r}")
        return _message_with_header(
            Message,
            channel,
            self.header(msg_type),
            {} if parent is None else parent.to_wire(),
            {},
            dict(content),
        )

    def execute_request(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
        allow_stdin: bool = False,
        stop_on_error: bool = True,
        buffers: Iterable[bytes] = (),
    ) -> Message:
        """An ``execute_request`` with all six content fields set explicitly.

        ``buffers`` travel as the message's binary buffers (file upload chunks).

        Raises:
            LocalProtocolError: ``code`` is not a string or not encodable as UTF-8.
        """
        if not isinstance(code, str):
            raise LocalProtocolError(f"code must be str, not {type(code).__name__}")
        if not code.isascii():  # ASCII is valid UTF-8
            _check_utf8(code, "code")
        expressions = dict(user_expressions) if user_expressions else {}
        for name, expr in expressions.items():
            if not isinstance(name, str) or not isinstance(expr, str):
                raise LocalProtocolError("user_expressions must map str to str")
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": expressions,
            "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error,
        }  # ``request("shell", ...)`` without copying the fresh content again
        message = _message_with_header(
            Message, "shell", self.header("execute_request"), {}, {}, content
        )
        return attrs.evolve(message, buffers=buffers) if buffers else message

    def kernel_info_request(self, *, channel: str = "shell") -> Message:
        return self.request(channel, "kernel_info_request", {})

    def interrupt_request(self) -> Message:
        return self.request("control", "interrupt_request", {})

    def shutdown_request(self, *, restart: bool = False) -> Message:
        """Only for kernels we talk to directly: through a server, shut down with REST."""
        return self.request("control", "shutdown_request", {"restart": restart})

    def input_reply(self, value: str, *, parent: Header) -> Message:
        """Answer an ``input_request``; ``parent`` is the input_request's header."""
        if not isinstance(value, str):
            raise LocalProtocolError(f"input value must be str, not {type(value).__name__}")
        _check_utf8(value, "input value")
        return self.request("stdin", "input_reply", {"value": value}, parent=parent)

    def comm_close(self, comm_id: str) -> Message:
        """Close a comm the kernel opened that we do not support."""
        return self.request("shell", "comm_close", {"comm_id": comm_id, "data": {}})
