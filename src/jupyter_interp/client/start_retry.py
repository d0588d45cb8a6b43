"""Retrying a kernel start that failed for a passing reason.

Strategy: a start is a sequence of attempts, each under a kernel id chosen by us
(``with_kernel_id`` puts it in the start body for Jupyter Server and Kernel Gateway and
in ``KERNEL_ID`` for Enterprise Gateway), so the attempt can delete by id whatever it
left on the server before it raises. ``start_with_retries`` runs the attempts, pausing
between them for a doubling, capped, jittered delay (``Backoff``).

Why: servers pick a kernel's ZMQ ports by binding port 0 and releasing it, so kernels
started at the same moment race for ports and one may die at birth: the server then
answers the start with a 500, or drops the kernel before it first answers (the opening
WebSocket is closed, or refused with 404). A fresh attempt gets fresh ports.

Invariants:

* Only those failures are retried (``is_transient``): ``KernelDied``, ``KernelNotFound``
  (dropped while we connected), ``ConnectionClosed`` (after the channel's own quick
  reopenings) and a ``KernelLaunchError`` that is not a launch timeout. A refused token,
  an unknown kernelspec, a resource limit, a timeout, a refused connection and a
  cancellation are raised at once.
* At most ``attempts`` attempts; the last failure is raised unchanged.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import attrs

from ..errors import (
    AuthenticationError,
    ConnectionClosed,
    KernelDied,
    KernelLaunchError,
    KernelLaunchTimeout,
    KernelNotFound,
    LocalProtocolError,
    NotFoundError,
    ResourceLimitError,
)
from ..protocol import rest

__all__ = [
    "Backoff",
    "is_transient",
    "may_have_started",
    "start_with_retries",
    "with_kernel_id",
]

logger = logging.getLogger("jupyter_interp.client")

T = TypeVar("T")

_TRANSIENT = (KernelDied, KernelNotFound, ConnectionClosed, KernelLaunchError)
#: answers to a start request that say no kernel was started
_REFUSED = (AuthenticationError, ResourceLimitError, NotFoundError, LocalProtocolError)


def is_transient(error: BaseException) -> bool:
    """Whether a fresh attempt may succeed where ``error`` ended this one."""
    return isinstance(error, _TRANSIENT) and not isinstance(error, KernelLaunchTimeout)


def may_have_started(error: BaseException) -> bool:
    """Whether a start request that failed with ``error`` may have left a kernel.

    Only the server's refusals (token, resource limit, unknown kernelspec or route) and
    requests we refused to send say no; a 5xx, a timeout or a cancellation may have
    come after the server created the kernel.
    """
    return not isinstance(error, _REFUSED)


@attrs.frozen(kw_only=True)
class Backoff:
    """Pauses between attempts: ``base`` doubled per retry, capped at ``cap``, jittered.

    Each pause lies in ``[ceiling / 2, ceiling)``: the floor spreads concurrent
    retries that failed together (the port race is a crowd's), the ceiling bounds
    the wait.
    """

    base: float = 0.25
    cap: float = 4.0

    def delay(self, retry: int, draw: float) -> float:
        """The pause before retry number ``retry`` (1-based); ``draw`` in ``[0, 1)``."""
        ceiling = min(self.cap, self.base * 2.0 ** min(retry - 1, 64))
        return ceiling * (1.0 + draw) / 2.0


def with_kernel_id(request: rest.HttpRequest, kernel_id: str) -> rest.HttpRequest:
    """``request`` (a kernel start) asking for ``kernel_id``, in the body and the env."""
    body = dict(request.json or {})
    body["env"] = {**(body.get("env") or {}), "KERNEL_ID": kernel_id}
    body["kernel_id"] = kernel_id
    return attrs.evolve(request, json=body)


async def start_with_retries(
    attempt: Callable[[str], Awaitable[T]],
    *,
    attempts: int,
    kernel_ids: Callable[[], str],
    backoff: Backoff = Backoff(),
    draw: Callable[[], float] = random.random,
) -> T:
    """Run ``attempt(kernel_id)`` until it succeeds, fails for good, or ``attempts`` ran.

    ``kernel_ids()`` names each attempt's kernel (a fresh id, or the same one each
    time); a failing ``attempt`` deletes what it left before it raises.
    """
    number = 1
    while True:
        began = anyio.current_time()
        try:
            return await attempt(kernel_ids())
        except Exception as exc:
            if not is_transient(exc) or number >= attempts:
                raise
            pause = backoff.delay(number, draw())
            logger.warning(
                "kernel start attempt %d of %d failed after %.1f s (%s); trying again in %.2f s",
                number, attempts, anyio.current_time() - began, exc, pause,
            )  # fmt: skip
        await anyio.sleep(pause)
        number += 1
