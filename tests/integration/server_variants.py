"""Server variants for the URL, TLS, limit and fault tests, on top of ``servers``.

``running_server_variant`` runs any of the three servers with a base path, TLS
(``TlsFiles``) or extra options, keeping Jupyter's default kernel transport (TCP);
``running_server_at`` runs one on a given port and token, so a test can stop it and
bring "the same" server back. Teardown is ``servers.run_server``'s.
"""

from __future__ import annotations

import secrets
import ssl
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs

from .server_process import MARKER_VARIABLE
from .servers import (
    EG_REFUSED_USERNAME,
    RunningServer,
    free_port,
    jupyter_server_command,
    run_server,
)

__all__ = ["TlsFiles", "running_server_at", "running_server_variant"]

# -- variants: a base path, TLS, extra options (for the URL, TLS and limit tests) ------

#: Each server kind's application class (its ``--<App>.<trait>`` prefix), module and
#: token variable; the gateways keep the same settings as their fixtures in ``servers``.
_VARIANT_APPS = {
    "jupyter_server": ("ServerApp", "jupyter_server", "JUPYTER_TOKEN", {}),
    "kernel_gateway": (
        "KernelGatewayApp",
        "kernel_gateway",
        "KG_AUTH_TOKEN",
        {
            "KG_LIST_KERNELS": "False",
            "KG_ENV_PROCESS_WHITELIST": f"{MARKER_VARIABLE},IPYTHONDIR",
        },
    ),
    "enterprise_gateway": (
        "EnterpriseGatewayApp",
        "enterprise_gateway",
        "EG_AUTH_TOKEN",
        {
            "EG_LIST_KERNELS": "False",
            "EG_UNAUTHORIZED_USERS": EG_REFUSED_USERNAME,
            "EG_INHERITED_ENVS": f"PATH,{MARKER_VARIABLE},IPYTHONDIR",
        },
    ),
}


@attrs.frozen(kw_only=True)
class TlsFiles:
    """A server certificate and key, and the CA bundle that verifies them (PEM paths)."""

    certfile: Path
    keyfile: Path
    ca_file: Path


@contextmanager
def running_server_variant(
    kind: str,
    workdir: Path,
    *,
    base_path: str = "/",
    tls: TlsFiles | None = None,
    options: Sequence[str] = (),
    python: Path | None = None,
    port: int | None = None,
    token: str | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[RunningServer]:
    """Run a server of ``kind`` under a path prefix, optionally over TLS, under ``workdir``.

    Args:
        kind: ``jupyter_server``, ``kernel_gateway`` or ``enterprise_gateway``.
        workdir: An empty directory for the root, config, runtime dirs and the log.
        base_path: The server's ``base_url`` setting, starting and ending with ``/``.
        tls: Certificate files for HTTPS (``RunningServer.url`` is then ``https://``).
        options: More ``--<App>.<trait>=<value>`` arguments.
        python: The interpreter to run Enterprise Gateway with (its own venv).
        port: The port on 127.0.0.1 (default: a free one).
        token: The auth token (default: a fresh one; passed in the environment).
        startup_timeout: Seconds to wait for readiness.
    """
    if not (base_path.startswith("/") and base_path.endswith("/")):
        raise ValueError("base_path must start and end with '/'")
    app, module, token_variable, settings = _VARIANT_APPS[kind]
    root_dir = workdir / "root"
    root_dir.mkdir(parents=True)
    port = free_port() if port is None else port
    token = secrets.token_hex(24) if token is None else token
    env = {
        token_variable: token,
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "IPYTHONDIR": str(workdir / "ipython"),
        **settings,
    }
    if kind == "jupyter_server":
        command, cwd = jupyter_server_command(port=port, root_dir=root_dir), None
    else:
        interpreter = python if kind == "enterprise_gateway" else Path(sys.executable)
        if interpreter is None:
            raise ValueError("Enterprise Gateway needs python= (its own venv's interpreter)")
        command, cwd = [str(interpreter), "-m", module], root_dir
        command += [f"--{app}.ip=127.0.0.1", f"--{app}.port={port}", f"--{app}.port_retries=0"]
        command.append(f"--{app}.log_level=WARN")
    command.append(f"--{app}.base_url={base_path}")
    if tls is not None:
        command += [f"--{app}.certfile={tls.certfile}", f"--{app}.keyfile={tls.keyfile}"]
    command += options
    scheme = "http" if tls is None else "https"
    verify = True if tls is None else ssl.create_default_context(cafile=str(tls.ca_file))
    with run_server(
        command,
        url=f"{scheme}://127.0.0.1:{port}{base_path}",
        token=token,
        root_dir=root_dir,
        log_path=workdir / f"{kind}.log",
        env=env,
        cwd=cwd,
        verify=verify,
        startup_timeout=startup_timeout,
    ) as server:
        yield server


# -- a server that can be stopped and started again on the same port (fault tests) -----


@contextmanager
def running_server_at(
    kind: str,
    workdir: Path,
    *,
    port: int,
    token: str,
    python: Path | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[RunningServer]:
    """Run a server of ``kind`` on a given port with a given token, under ``workdir``.

    Leaving the context stops it like the fixtures do; entering again with the same
    ``port`` and ``token`` (and another empty ``workdir``) brings "the same" server back
    with none of the old kernels. Settings are the fixtures' ones.

    Args:
        kind: ``jupyter_server``, ``kernel_gateway`` or ``enterprise_gateway``.
        workdir: An empty directory for the root, config, runtime dirs and the log.
        port: The port on 127.0.0.1 (``free_port()``).
        token: The auth token (passed in the environment, never on the command line).
        python: The interpreter for Enterprise Gateway (its own venv).
        startup_timeout: Seconds to wait for readiness.
    """
    with running_server_variant(
        kind, workdir, port=port, token=token, python=python, startup_timeout=startup_timeout
    ) as server:
        yield server
