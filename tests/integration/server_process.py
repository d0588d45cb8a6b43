"""One server process for the integration tests: start it, wait until it answers, and
stop it so that nothing it started outlives it.

``run_server()`` serves Jupyter Server, Kernel Gateway and Enterprise Gateway alike
(``servers`` builds their command lines): it takes a command line, the URL and token the
server will answer with, and an environment; it starts the server with
``subprocess.Popen`` in a session of its own (``start_new_session=True``), output
appended to a log file, and polls ``GET <url><ready_path>`` with
``Authorization: token <token>`` until it answers 200.

Invariants of teardown (which runs whatever the test did):

* the server gets SIGTERM and ``shutdown_timeout`` seconds to stop its kernels and exit;
* every process started for the server carries a unique ``JUPYTER_INTERP_TEST_SERVER``
  environment entry (``MARKER_VARIABLE``), inherited by kernels (which live in sessions
  of their own) and by their children; teardown SIGKILLs whatever still carries it after
  the server exited, so nothing we started outlives the fixture and nothing else is ever
  signalled (a gateway must pass the entry on to its kernels);
* teardown fails loudly (``RuntimeError`` with the log tail) when the server died before
  teardown, ignored SIGTERM (it is then killed with its process group) or left processes
  that survive SIGKILL.

Which processes carry the entry is read from Linux ``/proc`` (``processes``).
"""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import attrs
import httpx

from .processes import pids_with_env

#: The environment entry that marks every process started for one server.
MARKER_VARIABLE = "JUPYTER_INTERP_TEST_SERVER"
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
    server_env = {**os.environ, **(env or {}), MARKER_VARIABLE: marker}
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
    survivors = _kill_all_with_env(MARKER_VARIABLE, marker)
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
