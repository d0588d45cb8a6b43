"""Launch a private Jupyter Server on loopback: the process side of the embedded default.

Theory of operation
-------------------
``launch_jupyter_server()`` is an async context manager that owns one
Jupyter Server subprocess and everything it spawns:

* **Dependencies first.** The server process runs a short bootstrap (``-c``) before
  Jupyter Server: it exits with a status of its own when ``jupyter_server`` or
  ``ipykernel`` cannot be found there (with the server's environment and working
  directory, which may differ from ours), which becomes ``MissingDependency`` naming the
  extra to install; no separate probe process is spent on it.
* **Private directories.** A fresh private directory (mode 0700) holds the runtime dir
  (``JUPYTER_RUNTIME_DIR``: the ``jpserver-<pid>.json`` info file, kernel connection
  files), the token file and the server log. Unless the caller gives ``root_dir``, a
  second fresh directory is the server's root (the kernels' working directory). Both are
  removed on exit; a caller's ``root_dir`` is never touched.
* **Secret.** A random token (``secrets.token_hex(24)``) reaches the server through
  ``JUPYTER_TOKEN_FILE`` (a path in the private directory), never on the command line
  (visible in ``ps``) nor in ``JUPYTER_TOKEN`` (inherited by kernels, so user code printing
  its environment would leak it). The token never appears in ``repr``, errors or logs.
* **Port.** The server binds ``127.0.0.1`` with ``--ServerApp.port=0``: it asks the OS
  for a free port itself and reports it (and its ``base_url``) in the runtime info file,
  so there is no pick-then-bind race between two processes.
* **Kernels.** The server's kernel manager is ``kernels.EmbeddedKernelManager``,
  which runs ipykernel kernels over IPC (many kernels starting at once cannot race for
  ports), when the server can load it (the dependency probe asks); the caller's
  ``extra_args`` come last and override it.
* **Start-up time.** The server runs ``jupyter_server.serverapp.main`` with the module
  ``rfc3987_syntax`` marked absent. Jupyter Server's event logger imports jsonschema's
  format checkers, and through them that module, which builds a grammar on import: 2-3 s,
  most of the server's start-up. It serves only the ``iri`` and ``iri-reference``
  formats, which none of the server's event schemas uses; without it jsonschema leaves
  those two formats unchecked.
* **Readiness.** Start-up waits, bounded by ``startup_timeout``, until the info file
  exists and ``GET /api`` answers 200 (httpx, loopback, no proxies from the environment).
  An early exit raises ``ConnectError`` and a deadline ``TransportTimeout``, both with the
  tail of the server log (token scrubbed).
* **Output.** The server's stdout/stderr go to a log file, never to a pipe nobody reads.
  It runs in the private directory, so the server cannot import stray modules from the
  caller's working directory.
* **Teardown** runs on normal exit, on an exception and on cancellation, shielded:
  SIGTERM, on which Jupyter Server shuts its kernels down and exits; after
  ``shutdown_timeout`` SIGKILL to the server's process group (it runs in its own session);
  then a sweep (Linux ``/proc``) SIGKILLs every process whose environment still carries
  our unique ``JUPYTER_RUNTIME_DIR`` -- kernels (which Jupyter starts in sessions of their
  own) and their children that outlived the server. Nothing else is ever signalled, and a
  pid is only signalled while it is known to be ours (the server before it is reaped,
  sweep matches by the unique marker). Elsewhere than Linux, orphaned ipykernels still
  exit on their own: they poll for their parent's death.

* **Orphans.** A thread of the server process checks every ``_PARENT_POLL`` seconds
  that its parent is still the one it started with (the launcher, or a wrapper the
  caller's ``python`` runs in front of the interpreter); once it is not (the caller was
  SIGKILLed, or crashed, so no teardown ran), the server sends itself SIGTERM, shuts its
  kernels down and removes the private directories. A poll, not Linux's
  ``PR_SET_PDEATHSIG``: that signal follows the *thread* that forked, and trio forks
  in a worker thread that ends when idle.

POSIX only (sessions, process groups, signals).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import NoReturn

import anyio
import anyio.abc
import anyio.to_thread
import attrs
import httpx

from ..errors import ConnectError, MissingDependency, TransportTimeout

__all__ = ["LocalJupyterServer", "launch_jupyter_server"]

_REQUIRED_MODULES = ("jupyter_server", "ipykernel")
_KERNEL_MANAGER = "jupyter_interp.local.kernels.EmbeddedKernelManager"
#: seconds between the server's checks that the process that launched it is alive
_PARENT_POLL = 1.0
# The bootstrap's exit status when a required module is missing (Jupyter Server's own
# failures exit with 1).
_MISSING_MODULE_EXIT = 87
_PROBE_INTERVAL = 0.05
_PROBE_REQUEST_TIMEOUT = 5.0
_SWEEP_TIMEOUT = 5.0
_LOG_TAIL_LINES = 20
_LOG_TAIL_BYTES = 8192


@attrs.frozen(kw_only=True)
class LocalJupyterServer:
    """A running private Jupyter Server.

    Attributes:
        url: Base URL, ``http://127.0.0.1:<port>/`` (plus the server's ``base_url``).
        token: The auth token; send it as ``Authorization: token <token>``.
        root_dir: Absolute path of the server's root directory.
        pid: Process id of the server.
    """

    url: str
    token: str = attrs.field(repr=False)
    root_dir: str
    pid: int


@asynccontextmanager
async def launch_jupyter_server(
    *,
    root_dir: str | os.PathLike[str] | None = None,
    startup_timeout: float = 60.0,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    python: str | None = None,
    shutdown_timeout: float = 10.0,
) -> AsyncIterator[LocalJupyterServer]:
    """Start a private Jupyter Server on 127.0.0.1 and stop it, with its kernels, on exit.

    Args:
        root_dir: The server's root directory; default a fresh temporary directory that
            is removed on exit.
        startup_timeout: Seconds to wait for the server to answer ``GET /api``.
        extra_args: Extra command-line arguments for Jupyter Server (``jupyter server``).
        env: Extra environment variables for the server and its kernels, layered over
            ``os.environ`` (the launcher owns ``JUPYTER_RUNTIME_DIR``, ``JUPYTER_TOKEN``
            and ``JUPYTER_TOKEN_FILE``).
        python: Interpreter that runs the server; default ``sys.executable``.
        shutdown_timeout: Seconds the server gets after SIGTERM before it is killed.

    Yields:
        The running server's address, token, root directory and pid.

    Raises:
        MissingDependency: ``jupyter_server`` or ``ipykernel`` is not importable.
        ConnectError: The interpreter cannot be run or the server exited during start-up.
        TransportTimeout: The server did not become ready within ``startup_timeout``.
    """
    interpreter = python or sys.executable
    if os.sep in interpreter:  # a path: relative to the caller's directory, not the server's
        interpreter = str(await anyio.Path(interpreter).absolute())
    server_env = {**os.environ, **(env or {})}
    server_env.pop("JUPYTER_TOKEN", None)
    token = secrets.token_hex(24)
    private_dir = Path(tempfile.mkdtemp(prefix="jupyter-interp-"))
    runtime_dir = private_dir / "runtime"
    log_path = private_dir / "server.log"
    owned_root: str | None = None
    process: anyio.abc.Process | None = None
    try:
        if root_dir is None:
            owned_root = root = tempfile.mkdtemp(prefix="jupyter-interp-root-")
        else:
            root = str(await anyio.Path(root_dir).absolute())
        server_env["JUPYTER_RUNTIME_DIR"] = str(runtime_dir)
        server_env["JUPYTER_TOKEN_FILE"] = _write_private_files(private_dir, runtime_dir, token)
        leftovers = [str(private_dir)] + ([owned_root] if owned_root else [])
        command = [interpreter, "-c", _bootstrap(leftovers), *_server_args(root)]
        try:
            with anyio.fail_after(startup_timeout):
                command.extend(extra_args)  # last, so that the caller's options win
                process = await _spawn(command, server_env, log_path)
                server = await _wait_until_ready(process, interpreter, runtime_dir, token, log_path)
        except TimeoutError as exc:
            raise TransportTimeout(
                f"Jupyter Server did not answer within {startup_timeout} s; "
                f"log tail:\n{_log_tail(log_path, token)}"
            ) from exc
        yield server
    finally:
        with anyio.CancelScope(shield=True):
            if process is not None:
                await _stop(process, shutdown_timeout)
            # Also catches a server spawned by a start-up that was cancelled mid-way.
            await _sweep(f"JUPYTER_RUNTIME_DIR={runtime_dir}")
            for directory in (owned_root, private_dir):
                if directory is not None:
                    remove = functools.partial(shutil.rmtree, directory, ignore_errors=True)
                    await anyio.to_thread.run_sync(remove)


def _write_private_files(private_dir: Path, runtime_dir: Path, token: str) -> str:
    """Create the runtime dir and the token file (owner-only); return the token file's path."""
    runtime_dir.mkdir(mode=0o700)
    token_file = private_dir / "token"
    token_file.touch(mode=0o600)
    token_file.write_text(token, encoding="ascii")
    return str(token_file)


def _server_args(root_dir: str) -> list[str]:
    args = [
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.open_browser=False",
        "--PasswordIdentityProvider.hashed_password=",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.log_level=WARN",
        # kernels only: a terminal would be a shell for whoever holds the token, and
        # loading the extension costs start-up time
        "--ServerApp.jpserver_extensions=jupyter_server_terminals=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Containers often run as root; the server refuses that without this flag.
        args.append("--ServerApp.allow_root=True")
    return args


def _bootstrap(leftovers: Sequence[str]) -> str:
    """The server process's ``-c`` program: check the modules, leave out
    ``rfc3987_syntax`` (see Start-up time), pick the kernel manager, watch for the
    launcher's death (see Orphans), run Jupyter Server.

    Our kernel manager is used where the server can load it: this package (found, not
    imported: the server imports it by name) and Jupyter Server 2 for the class it extends.
    """
    return f"""\
import importlib.util, os, shutil, signal, sys, threading, time
if any(importlib.util.find_spec(m) is None for m in {_REQUIRED_MODULES!r}):
    sys.exit({_MISSING_MODULE_EXIT})
orphaned = []
def watch_parent(parent=os.getppid()):
    while os.getppid() == parent:
        time.sleep({_PARENT_POLL})
    orphaned.append(True)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
sys.modules["rfc3987_syntax"] = None
try:
    import jupyter_server
    ours = jupyter_server.version_info[0] >= 2 and bool(
        importlib.util.find_spec({_KERNEL_MANAGER.rpartition(".")[0]!r}))
except Exception:
    ours = False
if ours:
    sys.argv.insert(1, "--MappingKernelManager.kernel_manager_class={_KERNEL_MANAGER}")
from jupyter_server.serverapp import main
try:
    status = main()
finally:
    if orphaned:
        for leftover in {list(leftovers)!r}:
            shutil.rmtree(leftover, ignore_errors=True)
sys.exit(status)
"""


def _missing(interpreter: str) -> NoReturn:
    raise MissingDependency(
        f"launching a local Jupyter Server needs jupyter_server and ipykernel in "
        f"{interpreter}; install them with: pip install 'jupyter-interp[local]'"
    )


async def _spawn(command: list[str], env: Mapping[str, str], log_path: Path) -> anyio.abc.Process:
    try:
        with log_path.open("wb") as log:
            return await anyio.open_process(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=log_path.parent,
                start_new_session=True,
            )
    except OSError as exc:
        raise ConnectError(f"cannot start Jupyter Server with {command[0]!r}: {exc}") from exc


async def _wait_until_ready(
    process: anyio.abc.Process, interpreter: str, runtime_dir: Path, token: str, log_path: Path
) -> LocalJupyterServer:
    info_file = anyio.Path(runtime_dir / f"jpserver-{process.pid}.json")
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(trust_env=False, timeout=_PROBE_REQUEST_TIMEOUT) as http:
        while True:
            if process.returncode == _MISSING_MODULE_EXIT:
                _missing(interpreter)
            if process.returncode is not None:
                raise ConnectError(
                    f"Jupyter Server exited with code {process.returncode} during start-up; "
                    f"log tail:\n{_log_tail(log_path, token)}"
                )
            info = await _read_info(info_file)
            if info is not None:
                url = f"http://127.0.0.1:{info['port']}{info['base_url']}"
                with suppress(httpx.HTTPError):
                    response = await http.get(f"{url}api", headers=headers)
                    if response.status_code == 200:
                        return LocalJupyterServer(
                            url=url, token=token, root_dir=str(info["root_dir"]), pid=process.pid
                        )
            await anyio.sleep(_PROBE_INTERVAL)


async def _read_info(info_file: anyio.Path) -> dict[str, object] | None:
    """The server's runtime info, or None while it is absent or half written."""
    try:
        info: dict[str, object] = json.loads(await info_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info


async def _stop(process: anyio.abc.Process, grace: float) -> None:
    """SIGTERM the server; after ``grace`` seconds SIGKILL its process group; reap it."""
    if process.returncode is None:
        with suppress(ProcessLookupError):
            process.terminate()
        with anyio.move_on_after(grace):
            await process.wait()
        if process.returncode is None:
            # Not reaped yet, so the pid (= its process group id) is still ours.
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    await process.aclose()


async def _sweep(marker: str) -> None:
    """SIGKILL, until none is left, every process whose environment holds ``marker``."""
    entry = os.fsencode(marker)
    with anyio.move_on_after(_SWEEP_TIMEOUT):
        while pids := await anyio.to_thread.run_sync(_processes_with_env_entry, entry):
            for pid in pids:
                with suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            await anyio.sleep(_PROBE_INTERVAL)


def _processes_with_env_entry(entry: bytes) -> list[int]:
    """Pids of live processes whose environment has ``entry`` (Linux; elsewhere none).

    Zombies do not match: their environment can no longer be read.
    """
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    pids = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                entries = environ.read().split(b"\0")
        except OSError:
            continue
        if entry in entries:
            pids.append(int(name))
    return pids


def _log_tail(log_path: Path, token: str) -> str:
    """The last lines of the server log, with the token scrubbed."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(0, log_path.stat().st_size - _LOG_TAIL_BYTES))
            text = log.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(log unavailable: {exc})"
    lines = text.replace(token, "<token>").splitlines()[-_LOG_TAIL_LINES:]
    return "\n".join(lines) or "(log is empty)"
