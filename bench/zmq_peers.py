"""jupyter_client's ZMQ clients as peers, each kernel an async context manager.

``zmq_kernel``: jupyter_client's ``KernelManager`` starts a local kernel of the same
kernelspec and a jupyter_client client talks ZMQ to it directly, with no server in
between: the floor for any client that goes through a server. With ``loop=None`` the
client is the ``BlockingKernelClient`` (its ``execute`` blocks the event loop while it
runs, which is fair: nothing else is scheduled during a timed call); otherwise it is
the ``AsyncKernelClient``, the client of an asyncio program, whose zmq.asyncio sockets
live on ``loop``: the running loop in an asyncio program, a private loop that each
blocking ``execute`` runs until done otherwise (under trio). Either way ``execute``
is the leanest correct jupyter_client loop (send; read iopub until our ``idle``; read
the shell reply).

Every kernel started here is shut down when its block exits, whatever happened.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

__all__ = ["AsyncZmqKernel", "ZmqKernel", "zmq_kernel"]

_TIMEOUT = 60.0


def _ours_idle(message: dict[str, Any], msg_id: str) -> bool:
    return (
        message["parent_header"].get("msg_id") == msg_id
        and message["msg_type"] == "status"
        and message["content"].get("execution_state") == "idle"
    )


class ZmqKernel:
    """A local kernel driven over ZMQ by jupyter_client (blocking client)."""

    def __init__(self, kernel_name: str, spec_dir: Path | None = None) -> None:
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager

        if spec_dir is None:
            self._manager = KernelManager(kernel_name=kernel_name)
        else:
            specs = KernelSpecManager(kernel_dirs=[str(spec_dir)])
            self._manager = KernelManager(kernel_name=kernel_name, kernel_spec_manager=specs)
        self._client: Any = None

    def start(self) -> None:
        self._manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._client = self._manager.blocking_client()
        self._client.start_channels()
        self._client.wait_for_ready(timeout=_TIMEOUT)

    def stop(self) -> None:
        if self._client is not None:
            self._client.stop_channels()
        if self._manager.has_kernel:
            self._manager.shutdown_kernel(now=True)

    def execute(self, code: str) -> dict[str, Any]:
        """Run ``code``; return the execute_reply once the reply and ``idle`` arrived."""
        client = self._client
        msg_id = client.execute(code)
        while not _ours_idle(client.get_iopub_msg(timeout=_TIMEOUT), msg_id):
            pass  # bounded: get_*_msg raise queue.Empty after the timeout
        while True:
            reply: dict[str, Any] = client.get_shell_msg(timeout=_TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply


class AsyncZmqKernel(ZmqKernel):
    """A local kernel driven over ZMQ by jupyter_client's ``AsyncKernelClient``.

    Its sockets belong to ``loop``; ``execute`` is awaited on it when it is the running
    loop, and ``execute_blocking`` runs it there until done from anywhere else.
    """

    def __init__(
        self, kernel_name: str, spec_dir: Path | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(kernel_name, spec_dir)
        self._loop = loop

    def start(self) -> None:
        self._manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self._manager.has_kernel:
            self._manager.shutdown_kernel(now=True)

    async def close(self) -> None:
        """Close the client's sockets; on ``loop``, before ``stop``."""
        if self._client is not None:
            self._client.stop_channels()

    async def open(self) -> None:
        """Make the client and wait for the kernel; on ``loop``, after ``start``."""
        from jupyter_client.asynchronous import AsyncKernelClient

        manager = self._manager
        self._client = AsyncKernelClient(
            parent=manager,
            connection_file=manager.connection_file,
            **manager.get_connection_info(session=True),
        )
        self._client.start_channels()
        await self._client.wait_for_ready(timeout=_TIMEOUT)

    async def execute(self, code: str) -> dict[str, Any]:  # type: ignore[override]
        """Run ``code``; return the execute_reply once the reply and ``idle`` arrived."""
        client = self._client
        msg_id = client.execute(code)
        while not _ours_idle(await client.get_iopub_msg(timeout=_TIMEOUT), msg_id):
            pass  # bounded: get_*_msg raise queue.Empty after the timeout
        while True:
            reply: dict[str, Any] = await client.get_shell_msg(timeout=_TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def execute_blocking(self, code: str) -> dict[str, Any]:
        return self._loop.run_until_complete(self.execute(code))


@asynccontextmanager
async def zmq_kernel(
    kernel_name: str = "python3",
    *,
    python: Path | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> AsyncIterator[ZmqKernel]:
    """A local kernel of ``kernel_name``; with ``python``, an ipykernel of that interpreter
    (the kernel a gateway running from another venv would start); with ``loop``, an
    ``AsyncZmqKernel`` whose client lives on that loop (see the module)."""
    with tempfile.TemporaryDirectory(prefix="bench-zmq-") as spec_root:
        spec_dir = None
        if python is not None:
            spec_dir = Path(spec_root)
            (spec_dir / kernel_name).mkdir()
            spec = {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": kernel_name,
                "language": "python",
            }
            (spec_dir / kernel_name / "kernel.json").write_text(json.dumps(spec))
        kernel = (
            ZmqKernel(kernel_name, spec_dir)
            if loop is None
            else AsyncZmqKernel(kernel_name, spec_dir, loop)
        )
        try:
            await anyio.to_thread.run_sync(kernel.start)
            if isinstance(kernel, AsyncZmqKernel):
                await _on_loop(kernel.open(), loop)
            yield kernel
        finally:
            with anyio.CancelScope(shield=True):
                if isinstance(kernel, AsyncZmqKernel):
                    await _on_loop(kernel.close(), loop)
                await anyio.to_thread.run_sync(kernel.stop)


async def _on_loop(step: Any, loop: asyncio.AbstractEventLoop | None) -> None:
    """Await ``step`` if ``loop`` is the running loop, else run ``loop`` until it is done."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        await step
    else:
        assert loop is not None
        loop.run_until_complete(step)
