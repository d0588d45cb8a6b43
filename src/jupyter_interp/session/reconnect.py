"""A Session's reconnect: a fresh WebSocket after a drop or a restart, and how the
executions in flight across it end.

Strategy: ``reconnect`` runs the connect attempts (``_connect_again``) beside a watch
(``_watch_kernel``) that, while executions are in flight, asks the server for the
kernel every ``_RECONNECT_CHECK`` seconds. Why: after a death Jupyter Server sends its
"restarting" and "dead" statuses only to WebSockets it has finished opening, and it
holds a new one's upgrade while the restarted kernel does not answer; a kernel that
keeps dying (the server gives up after ``restart_limit`` quick deaths and drops it)
may then tell no socket of ours, and the executions would wait for the keep-alive's
check a ``ping_interval`` later. The channel hands itself in as ``ReconnectHost``.

Invariants:

* A kernel the server dropped or reports dead while we reconnect ends the session
  within ``_RECONNECT_CHECK`` plus one REST call: ``KernelDied`` (executions
  KERNEL_DIED) when it died, or when it was dropped after a death the server
  announced; ``KernelUnavailable`` (CONNECTION_LOST) when it was dropped otherwise.
* After a successful reconnect, every execution whose request went out on the old
  socket and that still has neither its reply nor its idle ``completion_grace`` later
  ends as CONNECTION_LOST (``check_unanswered``): never sent twice, never left
  waiting. The grace is there because not every kernel replies in order: xeus-python
  answers the shell requests that queued behind a cell (our reconnect's kernel_info)
  before that cell's execute_reply. When the connection became ready through control
  because a cell waits for input, the grace starts when the reconnect's shell
  kernel_info (``_order_probe``) is answered, after the cell. A later reconnect
  cancels a pending check: its own covers the same executions.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import anyio
import attrs
from anyio.abc import TaskGroup

from ..errors import (
    JupyterInterpError,
    KernelDied,
    KernelNotFound,
    KernelUnavailable,
    TransportError,
)
from ..protocol.result import ExecutionStatus

if TYPE_CHECKING:
    from ..config import ClientConfig
    from ..protocol.connection import KernelConnection
    from .kernel_link import KernelLink
    from .run import Mailbox

__all__ = [
    "PendingLossCheck",
    "ReconnectHost",
    "check_unanswered",
    "reconnect",
    "request_reconnect",
]

logger = logging.getLogger("jupyter_interp.session")

_RECONNECT_ATTEMPTS = 5
#: seconds between checks that the kernel still exists while a reconnect runs
_RECONNECT_CHECK = 1.0
#: the reconnect reason a server's "restarting" status gives (see ``SessionChannel``)
_AFTER_DEATH = "the kernel died"


class ReconnectHost(Protocol):
    """What a reconnect needs of its channel."""

    kernel_id: str
    _conn: KernelConnection
    _link: KernelLink
    _ready: anyio.Event
    _reconnect_reason: str | None
    _routes: dict[str, Mailbox]
    _config: ClientConfig
    _order_probe: str | None
    _order_check: set[str]
    _tasks: TaskGroup | None
    _loss_check: PendingLossCheck | None
    _read_scope: anyio.CancelScope | None
    _epoch: int
    _epoch_changed: anyio.Event
    _stopped: anyio.Event

    def _check_open(self) -> None: ...

    async def _connect(self, *, patient: bool = False) -> None: ...

    async def _close_ws(self) -> None: ...

    async def _give_up(self, error: JupyterInterpError) -> None: ...

    def _fail_in_flight(self, status: ExecutionStatus, detail: str) -> None: ...


async def request_reconnect(host: ReconnectHost, reason: str) -> None:
    """Ask the reader for a fresh WebSocket and wait until it is connected."""
    target = host._epoch + 1
    host._reconnect_reason = reason
    if host._read_scope is not None:
        host._read_scope.cancel()
    while host._epoch < target and not host._stopped.is_set():
        await host._epoch_changed.wait()
    host._check_open()


async def reconnect(host: ReconnectHost, cause: Exception | None) -> None:
    """Open a new WebSocket; if that fails or the kernel is gone, give the session up
    (and never return: the channel's ``_run`` cancels the reader then)."""
    # requests registered so far went out on the old socket, unless a restart frame
    # already stopped sending (its executions ended; later ones wait for the new one)
    sent_before = set(host._conn.in_flight) if host._ready.is_set() else set()
    if host._ready.is_set():
        host._ready = anyio.Event()
    reason, host._reconnect_reason = host._reconnect_reason, None
    if host._order_probe is not None:  # the last reconnect's check: this one covers it
        host._conn.forget(host._order_probe)
        host._order_probe = None
    if host._loss_check is not None:
        host._loss_check.cancel()
        host._loss_check = None
    host._conn.notice_reconnect(sent_before)  # their ends get checked for lost messages
    await host._close_ws()
    errors: list[JupyterInterpError] = []
    after_death = _AFTER_DEATH in (reason or "")
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_kernel, host, tg.cancel_scope, errors, after_death)
        failure = await _connect_again(host, reason or str(cause), sent_before)
        if failure is not None:
            errors.append(failure)
        tg.cancel_scope.cancel()
    if not errors:
        return
    if isinstance(errors[0], KernelDied):
        host._fail_in_flight(ExecutionStatus.KERNEL_DIED, str(errors[0]))
    await host._give_up(errors[0])
    await anyio.sleep_forever()


async def _connect_again(
    host: ReconnectHost, reason: str, sent_before: set[str]
) -> JupyterInterpError | None:
    """A few attempts with a growing pause; the error that ends the session, or None."""
    delay = 0.1
    for attempt in range(_RECONNECT_ATTEMPTS):
        try:
            await host._connect(patient=bool(host._conn.in_flight))
            logger.info("kernel %s reconnected (%s)", host.kernel_id, reason)
            if host._order_probe is None:
                check_unanswered(host, sent_before)
            else:  # ready through control for a prompt: checked at the probe's reply
                host._order_check = sent_before
            return None
        except KernelNotFound as exc:
            return KernelUnavailable(f"kernel {host.kernel_id} is gone: {exc}")
        except (TransportError, TimeoutError) as exc:
            logger.warning("reconnect %d to kernel %s failed: %s", attempt + 1, host.kernel_id, exc)
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)
    return KernelUnavailable(f"lost the connection to kernel {host.kernel_id}")


async def _watch_kernel(
    host: ReconnectHost,
    reconnecting: anyio.CancelScope,
    errors: list[JupyterInterpError],
    after_death: bool,
) -> None:
    """Every ``_RECONNECT_CHECK`` s while executions are in flight, ask the server for
    the kernel; if it is gone, record why and cancel ``reconnecting``."""
    while True:
        await anyio.sleep(_RECONNECT_CHECK)
        if not host._conn.in_flight:
            continue
        why = await host._link.gone()
        if why is None:
            continue
        if after_death or "dead" in why:
            errors.append(KernelDied(f"kernel {host.kernel_id} died and was not restarted ({why})"))
        else:
            errors.append(KernelUnavailable(f"kernel {host.kernel_id} is gone: {why}"))
        reconnecting.cancel()
        return


@attrs.define
class PendingLossCheck:
    """A reconnect's check for lost replies, waiting out its grace.

    Attributes:
        msg_ids: the executions it will end if neither reply nor idle came by then;
            no run nudges these meanwhile (their requests went out on the old socket).
        scope: cancelled when the check is no longer needed.
    """

    msg_ids: frozenset[str]
    scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)

    def cancel(self) -> None:
        self.scope.cancel()


def check_unanswered(host: ReconnectHost, sent_before: set[str]) -> None:
    """In ``completion_grace``, end each execution of ``sent_before`` (in flight when
    the socket dropped) that has neither its reply nor its idle by then.

    The server replays what it buffered before anything else, and the handshake's
    kernel_info reply comes after the replies to earlier requests, or just before
    them (xeus-python): one still missing a grace later was lost with the old socket
    (or the request itself was). Waiting on would hang an execution without a
    deadline; sending the request again could run the code twice. Runs in the
    session's task group, so the reader goes on taking the late replies meanwhile.
    (``reconnect`` has cancelled the previous check: this one covers its executions.)
    """
    if not sent_before:
        return
    assert host._tasks is not None, "reconnects run in the reader, inside the task group"
    pending = host._loss_check = PendingLossCheck(frozenset(sent_before))

    async def check() -> None:
        with pending.scope:
            await anyio.sleep(host._config.completion_grace)
            _fail_unanswered(host, pending.msg_ids)
        if host._loss_check is pending:
            host._loss_check = None

    host._tasks.start_soon(check)


def _fail_unanswered(host: ReconnectHost, sent_before: frozenset[str]) -> None:
    """End each execution of ``sent_before`` still in flight without reply or idle."""
    conn = host._conn
    for msg_id in conn.in_flight:
        tracker = conn.tracker(msg_id)
        if msg_id not in sent_before or tracker is None or tracker.awaiting_grace:
            continue  # sent since, or half-finished (the run's completion grace ends it)
        detail = "the connection dropped and the end of this execution was lost with it"
        for event in conn.fail(msg_id, ExecutionStatus.CONNECTION_LOST, detail=detail):
            route = host._routes.get(getattr(event, "msg_id", ""))
            if route is not None:
                route.put(event)  # type: ignore[arg-type]
