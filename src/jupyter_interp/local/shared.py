"""The shared local server: an opt-in private Jupyter Server that outlives one command.

Theory of operation
-------------------
``jupyter-interp server start`` spawns a detached supervisor (``python -m
jupyter_interp.local.shared``) that runs ``launch_jupyter_server()`` and publishes the
server in a state file; later ``exec`` and ``mcp`` commands without ``--url`` find it
there and skip the server's start. The supervisor owns the server for its whole life, so
every guarantee of the launcher (kernels and directories gone at the end) still holds.

* **One per user.** The state directory (``JUPYTER_INTERP_STATE_DIR``, else
  ``$XDG_RUNTIME_DIR/jupyter-interp``, else ``~/.cache/jupyter-interp``) is created mode
  0700; the supervisor holds an exclusive ``flock`` on ``server.lock`` for as long as it
  lives, so a second supervisor refuses to start and a state file whose lock nobody
  holds (a supervisor that was killed) is known stale and removed.
* **Secret.** ``server.json`` (mode 0600, written whole then renamed into place) holds
  the URL, token, root directory and the supervisor's pid: any process of this user can
  use the server, as it can use the user's shell; no other user can.
* **Fresh kernels.** Commands start their own kernel and shut it down as before; only
  the server and its root directory are shared between commands.
* **Lifetime.** The supervisor ends on SIGTERM/SIGINT (``server stop``) or once the
  server has had no kernel, no connection and no activity for ``idle_timeout`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import httpx

from ..client import Client
from ..errors import ConnectError, TransportTimeout
from .launcher import launch_jupyter_server
from .server import local_server

__all__ = [
    "SharedServer",
    "find_shared_server",
    "read_shared_server",
    "shared_or_private",
    "start_shared_server",
    "stop_shared_server",
]

STATE_DIR_ENV = "JUPYTER_INTERP_STATE_DIR"
DEFAULT_IDLE_TIMEOUT = 3600.0
_STATE = "server.json"
_LOCK = "server.lock"
_LOG = "supervisor.log"
_PROBE_TIMEOUT = 2.0
_POLL = 0.05


@attrs.frozen(kw_only=True)
class SharedServer:
    """The shared server as its state file describes it."""

    url: str
    token: str = attrs.field(repr=False)
    root_dir: str
    pid: int  # the supervisor's


def _state_dir_path() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "jupyter-interp"
    return Path.home() / ".cache" / "jupyter-interp"


def _private(directory: Path) -> bool:
    """Whether ``directory`` is ours alone (owner: this user; no group or other access)."""
    info = directory.stat()
    return info.st_uid == os.getuid() and not info.st_mode & 0o077


def state_dir() -> Path:
    """Where the state lives, created mode 0700 if absent.

    Raises:
        PermissionError: it exists but is not this user's alone (its files are secrets).
    """
    directory = _state_dir_path()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(directory):
        raise PermissionError(f"{directory} must belong to this user alone (chmod 700)")
    return directory


def _supervisor_alive(directory: Path) -> bool:
    """Whether some supervisor holds the lock (a shared lock cannot be taken beside it)."""
    with (directory / _LOCK).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def read_shared_server() -> SharedServer | None:
    """The published server, or None (none, or a stale state file, which is removed)."""
    directory = _state_dir_path()
    state = directory / _STATE
    if not state.exists() or not _private(directory):
        return None
    if not _supervisor_alive(directory):
        state.unlink(missing_ok=True)
        return None
    try:
        return SharedServer(**json.loads(state.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # being replaced, or not ours to read


async def find_shared_server() -> SharedServer | None:
    """The published server if it answers ``GET api`` with its token, else None."""
    server = await anyio.to_thread.run_sync(read_shared_server)  # file reads, a lock
    if server is None:
        return None
    headers = {"Authorization": f"token {server.token}"}
    async with httpx.AsyncClient(trust_env=False, timeout=_PROBE_TIMEOUT) as http:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(f"{server.url}api", headers=headers)).status_code == 200:
                return server
    return None


@contextlib.asynccontextmanager
async def shared_or_private(**client_settings: Any) -> AsyncIterator[Client]:
    """A Client on the shared server when one answers, else on a private one
    (``local_server``) that ends with the block."""
    shared = await find_shared_server()
    if shared is None:
        async with local_server(**client_settings) as client:
            yield client
    else:
        async with Client(shared.url, token=shared.token, **client_settings) as client:
            yield client


def start_shared_server(
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT, timeout: float = 60.0
) -> SharedServer:
    """Start the supervisor (unless one runs) and wait until it publishes its server.

    Raises:
        ConnectError: the supervisor exited without publishing (its log's tail says why).
        TransportTimeout: nothing was published within ``timeout`` seconds.
    """
    running = read_shared_server()
    if running is not None:
        return running
    directory = state_dir()
    log_path = directory / _LOG
    with log_path.open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", __name__, "--idle-timeout", str(idle_timeout)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = read_shared_server()
        if server is not None:
            return server
        if supervisor.poll() is not None:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise ConnectError(f"the shared server did not start; its log:\n{tail}")
        time.sleep(_POLL)
    raise TransportTimeout(f"the shared server did not start within {timeout} s")


def stop_shared_server(timeout: float = 30.0) -> bool:
    """SIGTERM the supervisor and wait until it has let go; False if none was running."""
    directory = state_dir()
    server = read_shared_server()
    if server is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _supervisor_alive(directory):
        if time.monotonic() > deadline:
            raise TransportTimeout(f"the shared server did not stop within {timeout} s")
        time.sleep(_POLL)
    return True


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    with (directory / _LOCK).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit("a shared jupyter-interp server is already running") from None
        yield


def _publish(directory: Path, server: SharedServer) -> None:
    staged = directory / f"{_STATE}.{os.getpid()}"
    staged.touch(mode=0o600)
    staged.write_text(json.dumps(attrs.asdict(server)), encoding="utf-8")
    staged.replace(directory / _STATE)


async def _idle_for(http: httpx.AsyncClient, url: str, token: str) -> float:
    """Seconds the server has been idle (no kernel, no connection), 0 while in use, and
    infinity once it no longer answers (nothing left to keep)."""
    try:
        response = await http.get(f"{url}api/status", headers={"Authorization": f"token {token}"})
        status = response.json()
    except (httpx.HTTPError, ValueError):
        return float("inf")
    if status.get("kernels") or status.get("connections"):
        return 0.0
    last = datetime.fromisoformat(str(status["last_activity"]).replace("Z", "+00:00"))
    return (datetime.now(timezone.utc) - last).total_seconds()


async def _supervise(idle_timeout: float) -> None:
    directory = state_dir()
    with (
        _exclusive(directory),
        anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals,
    ):
        async with anyio.create_task_group() as tg, launch_jupyter_server() as server:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    tg.cancel_scope.cancel()

            tg.start_soon(stop_on_signal)
            shared = SharedServer(
                url=server.url, token=server.token, root_dir=server.root_dir, pid=os.getpid()
            )
            _publish(directory, shared)
            try:
                async with httpx.AsyncClient(trust_env=False, timeout=_PROBE_TIMEOUT) as http:
                    while True:
                        if await _idle_for(http, server.url, server.token) >= idle_timeout:
                            break
                        await anyio.sleep(min(30.0, idle_timeout / 4))
            finally:
                (directory / _STATE).unlink(missing_ok=True)
                tg.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    """The supervisor's entry point (run by ``start_shared_server``)."""
    parser = argparse.ArgumentParser(prog="python -m jupyter_interp.local.shared")
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
    anyio.run(_supervise, parser.parse_args(argv).idle_timeout)


if __name__ == "__main__":
    main()
