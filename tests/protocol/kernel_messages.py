"""A fake kernel (and the server in front of it) that builds realistic messages for tests.

``client_factory()`` makes our deterministic ``MessageFactory``; ``FakeKernel`` builds
what a kernel sends in answer (``parent`` is always the request ``Message``), plus the
messages Jupyter Server synthesizes (``server_status``, ``rate_limit_notice``) and whole
sequences with each kernel's quirks (protocol.md §4-§5):

* ipykernel: busy, execute_input, outputs, reply, idle; error tracebacks with ANSI.
* IRkernel: ``copies_parent_session`` (replies carry the request's session), values as
  ``display_data``, ``ename: "ERROR"``, aborted replies without busy/idle.
* bash_kernel: stdout only, errors with ``ename: ""``, ``evalue: <exit code>``, ``traceback: []``.
* xeus: aborted requests answered with a bare ``{"status": "error"}`` and no busy/idle.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.messages import Header, Message

CLIENT_SESSION = "client-session"
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
ANSI_TRACEBACK = [
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
    "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero",
]
RATE_NOTICES = {
    "data": "IOPub data rate exceeded.\nThe Jupyter server will temporarily stop sending output\n",
    "message": "IOPub message rate exceeded.\nThe Jupyter server will temporarily stop\n",
}


def client_factory(session: str = CLIENT_SESSION, prefix: str = "req") -> MessageFactory:
    """Our factory with ids ``req-1``, ``req-2``, ... and a fixed clock."""
    counter = itertools.count(1)
    return MessageFactory(
        session=session, new_id=lambda: f"{prefix}-{next(counter)}", clock=lambda: EPOCH
    )


def _new_counter() -> Iterator[int]:
    return itertools.count(1)


@attrs.define
class FakeKernel:
    """Builds kernel-originated messages; ids are ``<session>-1``, ``<session>-2``, ..."""

    session: str = "kernel-a"
    client_session: str = CLIENT_SESSION
    copies_parent_session: bool = False
    _ids: Iterator[int] = attrs.field(factory=_new_counter, init=False)

    def message(
        self,
        channel: str,
        msg_type: str,
        content: Mapping[str, Any],
        parent: Message | None = None,
        *,
        session: str | None = None,
    ) -> Message:
        """Any message; ``session`` overrides the header session (else the kernel's)."""
        if session is None:
            session = self.session
            if self.copies_parent_session and parent is not None:
                session = parent.header.session
        header = Header(
            msg_id=f"{self.session}-{next(self._ids)}",
            msg_type=msg_type,
            session=session,
            username="kernel",
            date="2025-01-01T00:00:00.000Z",
        )
        return Message(
            channel=channel,
            header=header,
            parent_header={} if parent is None else parent.header.to_wire(),
            content=dict(content),
        )

    # -- single messages ------------------------------------------------------------------

    def status(self, parent: Message | None, state: str) -> Message:
        return self.message("iopub", "status", {"execution_state": state}, parent)

    def stream(self, parent: Message, text: str, name: str = "stdout") -> Message:
        return self.message("iopub", "stream", {"name": name, "text": text}, parent)

    def display_data(
        self,
        parent: Message,
        data: Mapping[str, Any],
        *,
        display_id: str | None = None,
        update: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        content: dict[str, Any] = {"data": dict(data), "metadata": dict(metadata or {})}
        content["transient"] = {} if display_id is None else {"display_id": display_id}
        msg_type = "update_display_data" if update else "display_data"
        return self.message("iopub", msg_type, content, parent)

    def clear_output(self, parent: Message, *, wait: bool = False) -> Message:
        return self.message("iopub", "clear_output", {"wait": wait}, parent)

    def execute_input(self, parent: Message, count: int) -> Message:
        content = {"code": parent.content.get("code", ""), "execution_count": count}
        return self.message("iopub", "execute_input", content, parent)

    def execute_result(self, parent: Message, count: int, text: str) -> Message:
        content = {"execution_count": count, "data": {"text/plain": text}, "metadata": {}}
        return self.message("iopub", "execute_result", content, parent)

    def error(
        self, parent: Message, ename: str, evalue: str, traceback: list[str] | None = None
    ) -> Message:
        content = {"ename": ename, "evalue": evalue, "traceback": list(traceback or [])}
        return self.message("iopub", "error", content, parent)

    def execute_reply(self, parent: Message, status: str = "ok", **fields: Any) -> Message:
        """An execute_reply; ``fields`` replace/extend the content (``execution_count=...``)."""
        content: dict[str, Any] = {"status": status}
        if status == "ok":
            content.update(payload=[], user_expressions={})
        content.update(fields)
        return self.message("shell", "execute_reply", content, parent)

    def input_request(self, parent: Message, prompt: str, *, password: bool = False) -> Message:
        return self.message(
            "stdin", "input_request", {"prompt": prompt, "password": password}, parent
        )

    def kernel_info_reply(self, parent: Message, channel: str = "shell") -> Message:
        content = {"status": "ok", "protocol_version": "5.3", "implementation": "ipython"}
        return self.message(channel, "kernel_info_reply", content, parent)

    # -- messages the server synthesizes (they carry OUR session) -------------------------

    def server_status(self, state: str) -> Message:
        """``restarting``/``dead``: parentless, with the client's session."""
        return self.message(
            "iopub", "status", {"execution_state": state}, session=self.client_session
        )

    def rate_limit_notice(self, parent: Message, kind: str = "data") -> Message:
        content = {"name": "stderr", "text": RATE_NOTICES[kind]}
        return self.message("iopub", "stream", content, parent, session=self.client_session)

    # -- whole sequences ------------------------------------------------------------------

    def ipykernel_run(
        self, parent: Message, count: int, *, stdout: str = "", result: str | None = None
    ) -> list[Message]:
        """busy, execute_input, [stream], [execute_result], reply ok, idle."""
        messages = [self.status(parent, "busy"), self.execute_input(parent, count)]
        if stdout:
            messages.append(self.stream(parent, stdout))
        if result is not None:
            messages.append(self.execute_result(parent, count, result))
        messages.append(self.execute_reply(parent, "ok", execution_count=count))
        messages.append(self.status(parent, "idle"))
        return messages

    def ipykernel_error(self, parent: Message, count: int) -> list[Message]:
        """A ZeroDivisionError with ANSI tracebacks, in iopub and reply."""
        fields = {"ename": "ZeroDivisionError", "evalue": "division by zero"}
        return [
            self.status(parent, "busy"),
            self.execute_input(parent, count),
            self.error(parent, traceback=ANSI_TRACEBACK, **fields),
            self.execute_reply(
                parent, "error", execution_count=count, traceback=ANSI_TRACEBACK, **fields
            ),
            self.status(parent, "idle"),
        ]

    def ipykernel_interrupted(self, parent: Message, count: int) -> list[Message]:
        fields: dict[str, Any] = {"ename": "KeyboardInterrupt", "evalue": "", "traceback": []}
        return [
            self.status(parent, "busy"),
            self.error(parent, **fields),
            self.execute_reply(parent, "error", execution_count=count, **fields),
            self.status(parent, "idle"),
        ]

    def irkernel_run(self, parent: Message, count: int, value: str) -> list[Message]:
        """IRkernel shows the value with display_data, never execute_result."""
        return [
            self.status(parent, "busy"),
            self.execute_input(parent, count),
            self.display_data(parent, {"text/plain": value, "text/html": f"<pre>{value}</pre>"}),
            self.execute_reply(parent, "ok", execution_count=count),
            self.status(parent, "idle"),
        ]

    def irkernel_aborted(self, parent: Message) -> list[Message]:
        """An aborted queued request: only the reply, no busy/idle."""
        return [self.execute_reply(parent, "aborted")]

    def xeus_aborted(self, parent: Message) -> list[Message]:
        """xeus answers aborted requests with a bare error reply and no busy/idle."""
        return [self.execute_reply(parent, "error")]

    def bash_error(self, parent: Message, count: int, exit_code: int = 1) -> list[Message]:
        """A non-zero exit code: ename "", evalue the code, empty traceback."""
        fields: dict[str, Any] = {"ename": "", "evalue": str(exit_code), "traceback": []}
        return [
            self.status(parent, "busy"),
            self.stream(parent, "ls: cannot access 'x': No such file or directory\n"),
            self.error(parent, **fields),
            self.execute_reply(parent, "error", execution_count=count, **fields),
            self.status(parent, "idle"),
        ]
