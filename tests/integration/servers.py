"""The servers the integration tests run on 127.0.0.1: their command lines and settings.

Theory of operation
-------------------
``run_server()`` (``server_process``) starts a server from a command line, waits until
it answers and tears it down with everything it started. ``running_jupyter_server()``
gives it the Jupyter Server command line: a free port, a random token in
``JUPYTER_TOKEN`` (never on the command line), private config, runtime and IPython
directories under the given work directory. ``running_kernel_gateway()`` and
``running_enterprise_gateway()`` do the same for the gateways (token in
``KG_AUTH_TOKEN`` / ``EG_AUTH_TOKEN``, kernels started in the root directory, which is
the server's working directory, and the teardown marker passed on to kernels);
Enterprise Gateway runs from its own venv (``gateway_env``).

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

``run_server`` and ``RunningServer`` are ``server_process``'s; the process queries
(``child_pids``, ``is_running``, ``pids_with_env``: ``processes``) read Linux ``/proc``;
``free_port`` is ``ports``'s. All are re-exported here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from jupyter_interp.local.launcher import _KERNEL_MANAGER as EMBEDDED_KERNEL_MANAGER

from .ports import free_port
from .processes import child_pids, is_running, pids_with_env
from .server_process import MARKER_VARIABLE, RunningServer, run_server

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
                "KG_ENV_PROCESS_WHITELIST": f"{MARKER_VARIABLE},IPYTHONDIR",
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
            "EG_INHERITED_ENVS": f"PATH,{MARKER_VARIABLE},IPYTHONDIR",
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
