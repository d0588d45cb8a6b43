"""What the transfer routes need of the Session they move files for: ``TransferHost``.

Strategy: ``files`` sits below ``session`` in the layers, so it never imports
``Session``; a Session satisfies this Protocol structurally and hands itself to
``FileTransfer``. The members are the few a transfer uses: the kernel's language and
file root (which snippets, confined where), its kernel_info (whether binary buffers
can work), the execution lock a transfer holds for its whole length, the two ways to
run a snippet, a nudge for a kernel that left a request unread, and the HTTP
transport (for the Contents API and ``files/`` routes).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from ..io.http import HttpTransport
from ..protocol.events import ExecutionEvent
from ..protocol.result import ExecutionResult

__all__ = ["KernelHttp", "TransferHost"]


class KernelHttp(Protocol):
    """The part of a kernel link a transfer route uses: its HTTP transport."""

    @property
    def http(self) -> HttpTransport: ...


class TransferHost(Protocol):
    """A Session, as far as file transfers are concerned."""

    @property
    def language(self) -> str: ...

    @property
    def file_root(self) -> str: ...

    @property
    def kernel_name(self) -> str: ...

    @property
    def kernel_info(self) -> Mapping[str, Any]: ...

    @property
    def _link(self) -> KernelHttp: ...

    @property
    def _exec_lock(self) -> AbstractAsyncContextManager[None]:
        """Held for a transfer's whole length: one execution or transfer at a time."""
        ...

    async def _execute_locked(self, code: str, **options: Any) -> ExecutionResult:
        """Run one execution; the caller holds ``_exec_lock``."""
        ...

    async def _nudge(self) -> None:
        """Wake a kernel that left a request unread (safe to cancel)."""
        ...

    def _run_execution(
        self, code: str, *, everything: bool, **options: Any
    ) -> AsyncGenerator[ExecutionEvent, None]:
        """Run one execution and yield its events; the caller holds ``_exec_lock``."""
        ...
