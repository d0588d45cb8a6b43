"""Sync helpers that run real servers on 127.0.0.1 for the integration tests.

Theory of operation
-------------------
``run_server()`` is the general part, usable for Jupyter Server, Kernel Gateway and
Enterprise Gateway alike: it takes a command line, the URL and token the server will
answer with, and an environment; it starts the server with ``subprocess.Popen`` in a
session of its own (``start_new_session=True``), output appended to a log file, and
polls ``GET <url><ready_path>`` with ``Authorization: token <token>`` until it answers
200. ``running_jupyter_server()`` adds the Jupyter Server command line: a free port, a
random token in ``JUPYTER_TOKEN`` (never on the command line), private config, runtime
and IPython directories under the given work directory. ``running_kernel_gateway()``
and ``running_enterprise_gateway()`` do the same for the gateways (token in
``KG_AUTH_TOKEN`` / ``EG_AUTH_TOKEN``, kernels started in the root directory, which is
the server's working directory); Enterprise Gateway runs from its own venv
(``gateway_env``).

Kernels and ports: over TCP, the server picks a kernel's five ports by binding port 0
and letting go, and the kernel binds them a moment later. Any loopback socket opened
meanwhile (another kernel's own binds, a connection from either test worker) can take
one; that kernel dies with "Address already in use", and jupyter_client restarts it on
the same cached ports until it gives up and drops the kernel, while the server holds the
client's WebSocket upgrade for a minute. So ``running_jupyter_server`` runs ipykernel
kernels over IPC with the embedded default's kernel manager
(``jupyter_interp.local.kernels``: other kernels, Deno's for one, keep TCP; the
variants below keep Jupyter's default, TCP). Kernel Gateway has a kernel manager of its
own: ``ipc_kernels=True`` puts all its kernels on IPC, which only ipykernel speaks, so
the shared one (Deno runs there too) and Enterprise Gateway keep TCP. IPC sockets live
in a short runtime directory of their own (a socket path must fit in ~107 bytes).

Invariants of teardown (which runs whatever the test did):

* the server gets SIGTERM and ``shutdown_timeout`` seconds to stop its kernels and exit;
* every process started for the server carries a unique ``JUPYTER_INTERP_TEST_SERVER``
  environment entry, inherited by kernels (which live in sessions of their own) and by
  their children; teardown SIGKILLs whatever still carries it after the server exited,
  so nothing we started outlives the fixture and nothing else is ever signalled;
* teardown fails loudly (``RuntimeError`` with the log tail) when the server died before
  teardown, ignored SIGTERM (it is then killed with its process group) or left processes
  that survive SIGKILL.

The process queries (``child_pids``, ``is_running``, ``pids_with_env``: ``processes``)
read Linux ``/proc``; ``free_port`` is ``ports``'s. Both are re-exported here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import attrs
import httpx

from jupyter_interp.local.launcher import _KERNEL_MANAGER as EMBEDDED_KERNEL_MANAGER

from .ports import free_port
from .processes import child_pids, is_running, pids_with_env

__all__ = [
    "EG_REFUSED_USERNAME",
    "RunningServer",
    "child_pids",
    "free_port",
    "is_running",
    "jupyter_server_command",
    "pids_with_env",
    "run_server",
    "running_enterprise_gateway",
    "running_jupyter_server",
    "running_kernel_gateway",
]

_MARKER_VARIABLE = "JUPYTER_INTERP_TEST_SERVER"
_POLL_INTERVAL = 0.05
_KILL_TIMEOUT = 5.0
_LOG_TAIL_LINES = 30


@attrs.frozen(kw_only=True)
class RunningServer:
    """A server started for the tests: where it answers and how to authenticate."""

    url: str
    token: str = attrs.field(repr=False)
    root_dir: Path
    pid: int
    log_path: Path


def jupyter_server_command(*, port: int, root_dir: Path) -> list[str]:
    """The command line of a quiet Jupyter Server on 127.0.0.1:``port``."""
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.log_level=WARN",
    ]
    if os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    return command


#: Kernels talk ZMQ over IPC sockets (see the module docstring).
_IPC_KERNELS = "--KernelManager.transport=ipc"
#: ipykernel kernels over IPC, others over TCP, as in the embedded default (see the
#: module docstring).
_IPC_FOR_IPYKERNEL = f"--MappingKernelManager.kernel_manager_class={EMBEDDED_KERNEL_MANAGER}"


@contextmanager
def _runtime_dir(workdir: Path, *, ipc_kernels: bool) -> Iterator[Path]:
    """``workdir/runtime``; for IPC kernels a directory with a short path instead (a
    socket path must fit in ~107 bytes, and pytest's directories are deep), removed
    after use."""
    if not ipc_kernels:
        yield workdir / "runtime"
        return
    path = Path(tempfile.mkdtemp(prefix="ji-rt-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def running_jupyter_server(
    workdir: Path, *, legacy_framing: bool = False, startup_timeout: float = 60.0
) -> Iterator[RunningServer]:
    """Run a Jupyter Server whose root, config and log live under ``workdir``, its
    ipykernel kernels over IPC (see the module docstring).

    ``legacy_framing``: the server declines the v1 subprotocol, as servers before it did.
    """
    root_dir = workdir / "root"
    root_dir.mkdir()
    port = free_port()
    token = secrets.token_hex(24)
    command = [*jupyter_server_command(port=port, root_dir=root_dir), _IPC_FOR_IPYKERNEL]
    if legacy_framing:
        command.append("--ZMQChannelsWebsocketConnection.kernel_ws_protocol=")
    with (
        _runtime_dir(workdir, ipc_kernels=True) as runtime_dir,
        run_server(
            command,
            url=f"http://127.0.0.1:{port}/",
            token=token,
            root_dir=root_dir,
            log_path=workdir / "jupyter_server.log",
            env={
                "JUPYTER_TOKEN": token,
                "JUPYTER_CONFIG_DIR": str(workdir / "config"),
                "JUPYTER_RUNTIME_DIR": str(runtime_dir),
                "IPYTHONDIR": str(workdir / "ipython"),
            },
            startup_timeout=startup_timeout,
        ) as server,
    ):
        yield server


#: Enterprise Gateway refuses kernels for this ``KERNEL_USERNAME`` (and only this one).
EG_REFUSED_USERNAME = "jupyter-interp-refused"


@contextmanager
def running_kernel_gateway(
    workdir: Path, *, ipc_kernels: bool = False, startup_timeout: float = 60.0
) -> Iterator[RunningServer]:
    """Run Kernel Gateway 3.x (jupyter-websocket mode, test venv) under ``workdir``.

    Defaults are kept (no kernel listing, no Contents API); kernels start in
    ``root_dir`` and inherit, besides ``PATH`` and the client's ``KERNEL_*``, only the
    teardown marker and ``IPYTHONDIR``. ``ipc_kernels``: see the module docstring.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "kernel_gateway",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.port_retries=0",
        "--KernelGatewayApp.log_level=WARN",
        *([_IPC_KERNELS] if ipc_kernels else []),
    ]
    with (
        _runtime_dir(workdir, ipc_kernels=ipc_kernels) as runtime_dir,
        _run_gateway(
            command,
            workdir,
            port=port,
            name="kernel_gateway",
            token_variable="KG_AUTH_TOKEN",
            settings={
                "KG_LIST_KERNELS": "False",
                "KG_ENV_PROCESS_WHITELIST": f"{_MARKER_VARIABLE},IPYTHONDIR",
                "JUPYTER_RUNTIME_DIR": str(runtime_dir),
            },
            startup_timeout=startup_timeout,
        ) as server,
    ):
        yield server


@contextmanager
def running_enterprise_gateway(
    workdir: Path, python: Path, *, startup_timeout: float = 60.0
) -> Iterator[RunningServer]:
    """Run Enterprise Gateway with the interpreter of its own venv under ``workdir``.

    Defaults are kept (no kernel listing, no Contents API) except that only
    ``EG_REFUSED_USERNAME`` is unauthorized (the default refuses ``root``, which the
    tests run as); kernels start in ``root_dir`` and inherit ``PATH``, the teardown
    marker and ``IPYTHONDIR``.
    """
    port = free_port()
    command = [
        str(python),
        "-m",
        "enterprise_gateway",
        "--EnterpriseGatewayApp.ip=127.0.0.1",
        f"--EnterpriseGatewayApp.port={port}",
        "--EnterpriseGatewayApp.port_retries=0",
        "--EnterpriseGatewayApp.log_level=WARN",
    ]
    with _run_gateway(
        command,
        workdir,
        port=port,
        name="enterprise_gateway",
        token_variable="EG_AUTH_TOKEN",
        settings={
            "EG_LIST_KERNELS": "False",
            "EG_UNAUTHORIZED_USERS": EG_REFUSED_USERNAME,
            "EG_INHERITED_ENVS": f"PATH,{_MARKER_VARIABLE},IPYTHONDIR",
        },
        startup_timeout=startup_timeout,
    ) as server:
        yield server


@contextmanager
def _run_gateway(
    command: Sequence[str],
    workdir: Path,
    *,
    port: int,
    name: str,
    token_variable: str,
    settings: Mapping[str, str],
    startup_timeout: float,
) -> Iterator[RunningServer]:
    root_dir = workdir / "root"
    root_dir.mkdir()
    token = secrets.token_hex(24)
    env = {
        token_variable: token,
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "IPYTHONDIR": str(workdir / "ipython"),
        **settings,
    }
    with run_server(
        command,
        url=f"http://127.0.0.1:{port}/",
        token=token,
        root_dir=root_dir,
        log_path=workdir / f"{name}.log",
        env=env,
        cwd=root_dir,
        startup_timeout=startup_timeout,
    ) as server:
        yield server


@contextmanager
def run_server(
    command: Sequence[str],
    *,
    url: str,
    token: str,
    root_dir: Path,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ready_path: str = "api",
    verify: bool | ssl.SSLContext = True,
    startup_timeout: float = 60.0,
    shutdown_timeout: float = 15.0,
) -> Iterator[RunningServer]:
    """Start ``command``, wait until ``GET url + ready_path`` answers 200, stop it on exit.

    Args:
        command: The server's command line (no secrets: ``ps`` shows it).
        url: Base URL the server will answer on, ending in ``/``.
        token: Token sent as ``Authorization: token <token>``; empty for none.
        root_dir: The server's root directory (reported back, not created).
        log_path: File that receives the server's stdout and stderr.
        env: Variables layered over ``os.environ`` (pass secrets here).
        cwd: The server's working directory (gateways start kernels there); inherited
            when None.
        ready_path: Path below ``url`` that answers 200 once the server is ready.
        verify: TLS verification of the readiness probe (a CA bundle for HTTPS).
        startup_timeout: Seconds to wait for readiness.
        shutdown_timeout: Seconds the server gets after SIGTERM before it is killed.

    Raises:
        RuntimeError: The server exited or timed out during start-up, or teardown found
            one of the failures listed in the module docstring.
    """
    marker = secrets.token_hex(8)
    server_env = {**os.environ, **(env or {}), _MARKER_VARIABLE: marker}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env,
            cwd=cwd,
            start_new_session=True,
        )
    try:
        _wait_until_ready(process, f"{url}{ready_path}", token, log_path, startup_timeout, verify)
        yield RunningServer(
            url=url, token=token, root_dir=root_dir, pid=process.pid, log_path=log_path
        )
    finally:
        _stop(process, marker, token, log_path, shutdown_timeout)


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    probe_url: str,
    token: str,
    log_path: Path,
    timeout: float,
    verify: bool | ssl.SSLContext,
) -> None:
    headers = {"Authorization": f"token {token}"} if token else {}
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=5.0, verify=verify) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server exited with code {process.returncode} during start-up; "
                    f"log tail:\n{_log_tail(log_path, token)}"
                )
            with suppress(httpx.HTTPError):
                if http.get(probe_url, headers=headers).status_code == 200:
                    return
            time.sleep(_POLL_INTERVAL)
    raise RuntimeError(
        f"server did not answer {probe_url} within {timeout} s; "
        f"log tail:\n{_log_tail(log_path, token)}"
    )


def _stop(
    process: subprocess.Popen[bytes], marker: str, token: str, log_path: Path, grace: float
) -> None:
    problems = []
    if process.poll() is not None:
        problems.append(f"the server exited on its own with code {process.returncode}")
    else:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            # Not reaped yet, so its pid (= its process group id) is still ours.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            problems.append(f"the server ignored SIGTERM for {grace} s and was killed")
    survivors = _kill_all_with_env(_MARKER_VARIABLE, marker)
    if survivors:
        problems.append(f"processes {sorted(survivors)} survived SIGKILL")
    if problems:
        raise RuntimeError("; ".join(problems) + f"; log tail:\n{_log_tail(log_path, token)}")


def _kill_all_with_env(name: str, value: str) -> set[int]:
    """SIGKILL every process carrying ``name=value``; return those still alive after a while."""
    deadline = time.monotonic() + _KILL_TIMEOUT
    while (pids := pids_with_env(name, value)) and time.monotonic() < deadline:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(_POLL_INTERVAL)
    return pids


def _log_tail(log_path: Path, token: str) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unavailable: {exc})"
    if token:
        text = text.replace(token, "<token>")
    return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:]) or "(log is empty)"
