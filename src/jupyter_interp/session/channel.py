"""The live link of a Session to its kernel: one WebSocket, one reader task.

Strategy: ``SessionChannel`` is the base of ``Session`` and owns everything between the
sans-I/O ``KernelConnection`` and the socket; the protocol work stays in the connection,
this only moves frames. Exactly one reader task receives frames, feeds them to the
connection and routes the resulting events to the execution that waits for them (its
``Mailbox`` in ``_routes``). The reader is also the only task that (re)connects the
WebSocket: anyone who needs a new connection (a restart, a dropped socket) asks it and
waits for ``_ready``; ``reconnect`` does the reconnecting.

Invariants:

* A (re)connection is ready only when a kernel_info request got its reply and an iopub
  status (asked again every quarter second, a few times): output that a fresh kernel
  publishes before the server's iopub subscription exists would be lost. A connection
  with none of our executions in flight asks on control and shell at once, so a kernel
  busy with someone else's cell (a session another replica runs) answers on control at
  once where it serves kernel_info there (ipykernel), and on shell otherwise.
* A session's first WebSocket is opened by ``opening.open_first``: again after a
  hang-up before readiness, and given up at once if the kernel dies meanwhile.
* A reconnect with executions in flight succeeds once the WebSocket is open: its
  kernel_info queues behind the running cell, so readiness is then awaited past
  ``handshake_timeout`` (bounded by the executions' deadlines and the keep-alive's
  kernel check); a cell waiting for an input reply makes it ready through control
  instead (``_connect``). Executions in flight across a reconnect are checked for
  lost kernel messages when they finish (``output_dropped``, see ``protocol.counters``).
* Kernel restart or death ends the in-flight execution at once (typed status, from the
  connection); after a restart the WebSocket is reopened with the same ``session_id``
  so the server's ZMQ streams are fresh and any replay is de-duplicated by msg_id.
* An ``execute_request`` is sent at most once: a failed write may have reached the
  server, so the reconnect decides how that execution ends (replayed reply, or
  CONNECTION_LOST), never a second send.
* A session whose kernel is gone raises ``KernelUnavailable``/``KernelDied`` on use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .. import telemetry
from ..errors import (
    ConnectionClosed,
    JupyterInterpError,
    KernelDied,
    RemoteProtocolError,
    TransportError,
)
from ..protocol.connection import KernelConnection
from ..protocol.events import (
    ExecutionFinished,
    InputRequested,
    KernelDead,
    KernelRestarted,
    KernelStatus,
    ReplyReceived,
)
from ..protocol.kernel_output import publishes_after_idle, shows_values_as_displays
from ..protocol.messages import Message
from ..protocol.result import ExecutionStatus
from ..protocol.wire import Codec, codec_for
from .opening import open_first
from .reconnect import PendingLossCheck, check_unanswered, reconnect
from .run import Mailbox

if TYPE_CHECKING:
    from ..config import ClientConfig
    from ..io.websocket import WebSocket
    from .keepalive import KeepAlive
    from .kernel_link import KernelLink

__all__ = ["SessionChannel"]

logger = logging.getLogger("jupyter_interp.session")

_KERNEL_INFO_RETRY = 3.0
#: how long a stopping session's tasks may take to end by themselves before cancellation
_STOP_GRACE = 1.0
#: after a kernel_info reply, how long its iopub status may lag before we ask again
_NUDGE = 0.25
_MAX_NUDGES = 8
#: the longest interval between kernel_info requests while a reconnect waits for a cell
_PATIENT_RETRY_MAX = 30.0


class SessionChannel:
    """The WebSocket, reader task, readiness and reconnects of one ``Session``.

    Attributes:
        kernel_id: the server's kernel id (stable across restarts).
        kernel_name: the kernelspec name.
        session_id: our client session id (WebSocket URL and message headers).
        kernel_info: the content of the kernel's last kernel_info_reply.
    """

    def __init__(
        self, link: KernelLink, config: ClientConfig, keep_alive: KeepAlive | None = None
    ) -> None:
        self._link = link
        self._config = config
        self._keep_alive = keep_alive
        self.kernel_id = link.kernel_id
        self.kernel_name = link.kernel_name
        self.session_id = link.factory.session
        self._conn = KernelConnection(link.factory, budget=config.output_budget)
        self._ws: WebSocket | None = None
        self._codec: Codec = codec_for(None)
        self._ready = anyio.Event()
        self._stopped = anyio.Event()
        self._routes: dict[str, Mailbox] = {}  # msg_id -> where its events go
        self._unusable: JupyterInterpError | None = None
        self._reconnect_reason: str | None = None
        self._read_scope: anyio.CancelScope | None = None
        self._epoch = 0  # bumped on every successful (re)connect
        self._epoch_changed = anyio.Event()
        self._running = False
        self._finished = anyio.Event()
        self.kernel_info: Mapping[str, Any] = {}
        self._prompted: set[str] = set()  # executions whose input request is unanswered
        # a reconnect's shell kernel_info still unanswered, and what its reply checks
        self._order_probe: str | None = None
        self._order_check: set[str] = set()
        # the reader's task group, and a reconnect's pending check for lost replies
        self._tasks: TaskGroup | None = None
        self._loss_check: PendingLossCheck | None = None

    # -- lifecycle (driven by Client) ------------------------------------------------

    async def _run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, handshake, then serve the reader until stopped (the Client's
        ``KeepAlive`` pings meanwhile, if it has one)."""
        self._running = True
        try:
            await open_first(self)  # outside the task group: its errors reach the caller bare
            async with anyio.create_task_group() as tg:
                self._tasks = tg
                tg.start_soon(self._read_loop)
                if self._keep_alive is not None:
                    self._keep_alive.add(self)
                task_status.started()
                await self._stopped.wait()
                if self._loss_check is not None:
                    self._loss_check.cancel()  # what it would end has ended
                # the reader ends by itself at the socket's closing handshake when it
                # waits there (see ``io.stop_signal``); caught elsewhere, it is cancelled
                if self._read_scope is not None:
                    await self._close_ws()
                    tg.cancel_scope.deadline = anyio.current_time() + _STOP_GRACE
                else:
                    tg.cancel_scope.cancel()
        finally:
            self._tasks = None
            if self._keep_alive is not None:
                self._keep_alive.discard(self)
            with anyio.CancelScope(shield=True):
                await self._close_ws()
            self._finished.set()

    async def _stop(self, reason: JupyterInterpError) -> None:
        """Fail what is in flight, stop the tasks, wait until the socket is closed."""
        if self._unusable is None:
            self._unusable = reason
        self._fail_in_flight(ExecutionStatus.CONNECTION_LOST, str(reason))
        self._stopped.set()
        self._ready.set()  # wake senders so they see the session is closed
        self._bump_epoch()
        if self._running:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await self._finished.wait()

    def _check_open(self) -> None:
        if self._unusable is not None:
            raise self._unusable

    # -- connection management (reader task only) ------------------------------------

    async def _connect(self, *, patient: bool = False) -> None:
        """Open the WebSocket; ready once a kernel_info request got its shell reply AND
        an iopub status, so the server's iopub subscription is live (after a restart
        Jupyter Server skips its own nudge when it last saw the kernel busy, and output
        published before the subscription exists is lost).

        ``patient`` (a reconnect with executions in flight): the kernel_info request
        queues behind the running cell, so readiness is awaited without the handshake
        timeout for as long as executions are in flight (their deadlines and the
        keep-alive's kernel check bound the wait); the request is repeated with a
        growing interval, not every few seconds. While a cell waits for an input reply
        (at the start, or as soon as its prompt comes), control is asked too and its
        reply makes the connection ready: the cell cannot end before that reply is
        sent. The shell request then stays registered as ``_order_probe``: the check
        for replies lost with the old socket waits for its reply (see ``reconnect``).
        """
        ws = await self._link.open_websocket(self.session_id)
        self._ws = ws
        self._codec = codec_for(ws.subprotocol)
        info: Message | None = None
        nudges = 0
        retry = _KERNEL_INFO_RETRY
        timeout = self._config.handshake_timeout
        factory = self._link.factory
        with anyio.fail_after(None if patient else timeout) as handshake:
            while True:
                # with none of our executions in flight, also ask on control, which a
                # kernel answers while a cell runs (a busy kernel someone else started);
                # a reconnect asks on shell only, unless a prompt waits for its reply
                asks_control = not patient or self._prompt_pending()
                channels = ("control", "shell") if asks_control else ("shell",)
                requests = [
                    self._conn.request(factory.kernel_info_request(channel=channel))
                    for channel in channels
                ]
                probe = requests[-1].msg_id  # the shell one
                wanted = frozenset(request.msg_id for request in requests)
                answered = iopub_live = prompted = False
                try:  # unanswered (timed out, dropped): its reply is no longer awaited
                    for request in requests:
                        await self._send_raw(request)
                    with anyio.move_on_after(retry) as window:
                        while not (answered and iopub_live):
                            frame = await ws.receive()
                            reply, status_seen = await self._on_frame(frame, wanted)
                            iopub_live = iopub_live or status_seen
                            if reply is not None:
                                info, answered = reply, True
                                nudge_at = anyio.current_time() + _NUDGE
                                window.deadline = min(window.deadline, nudge_at)
                            elif not asks_control and self._prompt_pending():
                                prompted = True  # ask again, on control too, at once
                                break
                finally:
                    early = patient and info is not None and info.parent_msg_id != probe
                    for request in requests:
                        if not (early and request.msg_id == probe):
                            self._conn.forget(request.msg_id)
                if info is not None and (iopub_live or nudges >= _MAX_NUDGES):
                    if not iopub_live:  # a kernel may never send that status
                        logger.warning("kernel %s: ready without an iopub status", self.kernel_id)
                    self._order_probe = probe if early else None
                    self.kernel_info = info.content
                    self._conn.settle = publishes_after_idle(info.content)
                    self._conn.values_as_displays = shows_values_as_displays(info.content)
                    self._ready.set()
                    self._bump_epoch()
                    return
                nudges += info is not None
                if patient and info is None and not prompted:
                    retry = min(retry * 2, _PATIENT_RETRY_MAX)
                if handshake.deadline == math.inf and not self._conn.in_flight:
                    handshake.deadline = anyio.current_time() + timeout  # nothing to wait for

    def _prompt_pending(self) -> bool:
        """Whether an execution in flight waits for an input reply not sent yet."""
        self._prompted.intersection_update(self._conn.in_flight)
        return bool(self._prompted)

    async def _on_frame(
        self, frame: str | bytes | memoryview, wanted: frozenset[str] = frozenset()
    ) -> tuple[Message | None, bool]:
        """Decode one frame and dispatch its events; returns the reply to a request of
        ``wanted`` if it came, and whether an iopub status for one of them came."""
        try:
            message = self._codec.decode(frame)
        except RemoteProtocolError as exc:
            logger.warning("dropping an undecodable frame from kernel %s: %s", self.kernel_id, exc)
            return None, False
        found: Message | None = None
        status_seen = False
        events = self._conn.receive(message)
        if any(isinstance(event, KernelRestarted) for event in events):
            # before the ended executions wake their callers: a request sent on this
            # socket now would reach the new kernel with no iopub subscription for it;
            # senders waiting on the old event wake and look again (theirs may have ended)
            stale, self._ready = self._ready, anyio.Event()
            stale.set()
        for event in events:
            if isinstance(event, KernelStatus):  # nobody else waits for one
                status_seen = status_seen or event.parent_msg_id in wanted
            elif isinstance(event, ReplyReceived):  # only ever awaited here
                if event.request_msg_id in wanted:
                    found = event.message
                elif event.request_msg_id == self._order_probe:
                    self._order_probe = None
                    check_unanswered(self, self._order_check)
            else:
                await self._dispatch(event)
        if self._conn.settle:
            self._poke_settling(message)
        return found, status_seen

    def _poke_settling(self, message: Message) -> None:
        """Wake an execution whose tracker this message left settling: its late-output
        window starts now (settling emits no event of its own)."""
        parent = message.parent_header.get("msg_id")
        if not isinstance(parent, str):
            return
        tracker = self._conn.tracker(parent)
        route = self._routes.get(parent)
        if tracker is not None and tracker.settling and route is not None:
            route.poke()

    async def _read_loop(self) -> None:
        """Receive until stopped; reconnect when the socket drops or a restart asks."""
        while True:
            cause: Exception | None = None
            with anyio.CancelScope() as scope:
                self._read_scope = scope
                try:
                    ws = self._ws  # only this task replaces it, and not in this loop
                    assert ws is not None
                    while self._reconnect_reason is None:
                        await self._on_frame(await ws.receive())
                except (ConnectionClosed, TransportError) as exc:
                    cause = exc
            self._read_scope = None
            if self._stopped.is_set():
                del cause  # its traceback holds this frame: the two would form a cycle
                return
            with telemetry.kernel_event(self, "reconnect", str(self._reconnect_reason or cause)):
                await reconnect(self, cause)

    async def _give_up(self, error: JupyterInterpError) -> None:
        self._unusable = error
        self._fail_in_flight(ExecutionStatus.CONNECTION_LOST, str(error))
        self._stopped.set()
        self._ready.set()
        self._bump_epoch()

    async def _close_ws(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.aclose()

    def _bump_epoch(self) -> None:
        self._epoch += 1
        changed, self._epoch_changed = self._epoch_changed, anyio.Event()
        changed.set()

    # -- event routing --------------------------------------------------------------

    async def _dispatch(self, event: object) -> None:
        """Deliver an execution's event to its mailbox, or act on a kernel event."""
        msg_id = getattr(event, "msg_id", None)
        if msg_id is not None:
            route = self._routes.get(msg_id)
            if route is not None and (
                route.everything or isinstance(event, (ExecutionFinished, InputRequested))
            ):
                route.put(event)  # type: ignore[arg-type]
                if isinstance(event, InputRequested):
                    self._prompted.add(msg_id)
                if route.full:  # a stream's consumer sets our pace
                    await route.wait_for_room()
                elif isinstance(event, ExecutionFinished):
                    # let the woken caller go on before we re-arm the next read
                    await anyio.lowlevel.checkpoint()
        elif isinstance(event, KernelRestarted):
            # the reader reconnects after this frame, as JupyterLab does: the server
            # refreshes its ZMQ streams only for a new WebSocket
            logger.warning("kernel %s restarted (%s)", self.kernel_id, event.reason)
            with telemetry.kernel_event(self, "kernel.restarted", event.reason):
                pass  # an instant span: the restart was seen, whoever caused it
            self._reconnect_reason = f"kernel restarted: {event.reason}"
        elif isinstance(event, KernelDead):
            await self._give_up(KernelDied(f"kernel {self.kernel_id} died and was not restarted"))

    def _fail_in_flight(self, status: ExecutionStatus, detail: str) -> None:
        for event in self._conn.fail_all(status, detail=detail):
            route = self._routes.get(getattr(event, "msg_id", ""))
            if route is not None:
                route.put(event)  # type: ignore[arg-type]

    # -- sending --------------------------------------------------------------------

    async def _send_raw(self, message: Message) -> None:
        """Write one message on the current socket (none between a drop and the reconnect
        counts as a dropped connection)."""
        ws = self._ws
        if ws is None:
            raise ConnectionClosed(1006, "no WebSocket while reconnecting")
        await ws.send(self._codec.encode(message))

    async def _send(self, message: Message, *, for_execution: str | None = None) -> None:
        """Send once connected; if the socket drops meanwhile, wait and maybe retry once.

        A failed write may still have reached the server, so an ``execute_request`` is
        never sent twice: its execution stays in flight and ends with its replayed reply,
        or as CONNECTION_LOST once the reconnect shows the reply will not come
        (``reconnect.check_unanswered``); nothing is sent for an execution that ended
        while it waited for readiness. Another message is retried once, on the new socket, only
        while ``for_execution`` (the execution it serves, if any) is still in flight.
        The WebSocket writes whole messages under its own lock, so none is needed here.
        """
        for attempt in (1, 2):
            while not self._ready.is_set():
                if for_execution is not None and self._conn.tracker(for_execution) is None:
                    return  # the execution it serves ended meanwhile (a restart failed it)
                await self._ready.wait()
            self._check_open()
            if (
                attempt == 2
                and for_execution is not None
                and self._conn.tracker(for_execution) is None
            ):
                return  # the execution it served ended meanwhile: nothing left to answer
            try:
                await self._send_raw(message)
                if message.msg_type == "input_reply" and for_execution is not None:
                    self._prompted.discard(for_execution)
                return
            except TransportError:  # ConnectionClosed included
                if attempt == 2:
                    raise
                if message.msg_type == "execute_request":
                    return  # at most once: the reconnect decides how it ends
