"""The embedded server launcher and the session fixture, against real Jupyter Servers.

Each launch costs a server start (~2 s), so every test checks as much as one launch
allows. "Gone" means no process with that pid, or only its zombie (an orphaned kernel
is reaped by whoever adopted it, not by us).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import ConnectError, MissingDependency, TransportTimeout
from jupyter_interp.local import launcher as _launcher
from jupyter_interp.local import local_server
from jupyter_interp.local.launcher import LocalJupyterServer, launch_jupyter_server
from jupyter_interp.protocol.result import ExecutionStatus

from .conftest import TEST_CLIENT_SETTINGS
from .servers import RunningServer, child_pids, free_port, is_running, run_server

pytestmark = pytest.mark.anyio

_TEST_TIMEOUT = 90
_WRONG_TOKEN = "0" * 48


# A server that ignores SIGTERM and starts a "kernel" in a session of its own.
_STUBBORN_SERVER = """
import http.server, signal, subprocess, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen(["sleep", "600"], start_new_session=True)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class _BodyFailed(Exception):
    pass


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def _status_code(url: str, path: str, token: str | None) -> int:
    # A fresh client each time: a token-authenticated answer sets a login cookie that
    # would authenticate later requests whatever token they carry.
    async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
        response = await http.get(path, headers=_auth(token) if token else {})
        return response.status_code


async def _start_kernels(server: LocalJupyterServer, count: int = 1) -> set[int]:
    """Start kernels over REST; return the pids of the server's children (the kernels)."""
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as http:
        for _ in range(count):
            response = await http.post("api/kernels", json={}, headers=_auth(server.token))
            assert response.status_code == 201, response.text
    kernels = child_pids(server.pid)
    assert len(kernels) == count
    return kernels


def _runtime_dir_of(pid: int) -> Path:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    prefix = b"JUPYTER_RUNTIME_DIR="
    (value,) = (entry[len(prefix) :] for entry in entries if entry.startswith(prefix))
    return Path(os.fsdecode(value))


def _assert_all_gone(pids: set[int]) -> None:
    assert {pid for pid in pids if is_running(pid)} == set()


async def test_server_authenticates_and_leaves_nothing_behind() -> None:
    with anyio.fail_after(_TEST_TIMEOUT):
        async with launch_jupyter_server() as server:
            assert server.url.startswith("http://127.0.0.1:")
            assert server.token not in repr(server)
            assert await _status_code(server.url, "api", server.token) == 200
            assert await _status_code(server.url, "api/status", server.token) == 200
            assert await _status_code(server.url, "api/status", _WRONG_TOKEN) == 403
            assert await _status_code(server.url, "api/status", None) == 403
            assert await _status_code(server.url, "api/terminals", server.token) == 404
            assert await anyio.Path(server.root_dir).is_dir()
            runtime_dir = _runtime_dir_of(server.pid)
            assert (runtime_dir / f"jpserver-{server.pid}.json").is_file()
            kernels = await _start_kernels(server, count=2)
        _assert_all_gone({server.pid, *kernels})
        assert not await anyio.Path(server.root_dir).exists()
        assert not await anyio.Path(runtime_dir.parent).exists()


async def _serve_then_fail(root_dir: Path, started: set[int]) -> None:
    async with launch_jupyter_server(root_dir=root_dir) as server:
        started.add(server.pid)
        assert server.root_dir == str(root_dir)
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            listing = await http.get("api/contents", headers=_auth(server.token))
        assert [item["name"] for item in listing.json()["content"]] == ["hello.txt"]
        started.update(await _start_kernels(server))
        raise _BodyFailed


async def test_body_error_stops_everything_and_keeps_callers_root(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi")
    started: set[int] = set()
    with anyio.fail_after(_TEST_TIMEOUT), pytest.raises(_BodyFailed):
        await _serve_then_fail(tmp_path, started)
    assert len(started) == 2  # the server and its kernel
    _assert_all_gone(started)
    assert (tmp_path / "hello.txt").read_text() == "hi"


async def test_cancellation_with_an_unresponsive_server_still_kills_everything() -> None:
    with anyio.fail_after(_TEST_TIMEOUT):
        with anyio.CancelScope() as scope:
            async with launch_jupyter_server(shutdown_timeout=0.5) as server:
                kernels = await _start_kernels(server)
                os.kill(server.pid, signal.SIGSTOP)  # SIGTERM stays pending; SIGKILL works
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
        # The server never shut its kernel down: the sweep killed the orphan at once
        # (an ipykernel would only notice its parent's death up to a second later).
        _assert_all_gone({server.pid, *kernels})


async def test_server_exiting_during_startup_raises_connect_error(tmp_path: Path) -> None:
    """A stand-in ``jupyter_server`` reports what it got, then exits at once."""
    fake = tmp_path / "jupyter_server"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "serverapp.py").write_text(
        "import os, sys\n"
        "def main():\n"
        "    print('argv:', sys.argv[1:])\n"
        "    print('JUPYTER_TOKEN:', os.environ.get('JUPYTER_TOKEN'))\n"
        "    print('token file:', open(os.environ['JUPYTER_TOKEN_FILE']).read())\n"
        "    return 3\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "JUPYTER_TOKEN": "callers-token"}
    with anyio.fail_after(_TEST_TIMEOUT), pytest.raises(ConnectError) as caught:
        async with launch_jupyter_server(env=env):
            pytest.fail("the stand-in server never becomes ready")
    message = str(caught.value)
    assert "exited with code 3" in message
    assert "--ServerApp.ip=127.0.0.1" in message
    assert "JUPYTER_TOKEN: None" in message
    assert "token file: <token>" in message
    assert re.search("[0-9a-f]{48}", message) is None


async def test_startup_timeout_raises_and_kills_the_server() -> None:
    children_before = child_pids(os.getpid())
    with anyio.fail_after(_TEST_TIMEOUT), pytest.raises(TransportTimeout, match=r"within 0\.2 s"):
        async with launch_jupyter_server(startup_timeout=0.2):
            pytest.fail("no server starts in 0.2 s")
    assert child_pids(os.getpid()) == children_before


async def test_hung_interpreter_times_out_and_leaves_no_process(tmp_path: Path) -> None:
    hung = tmp_path / "python"
    hung.write_text("#!/bin/sh\nexec sleep 600\n")
    hung.chmod(0o755)
    children_before = child_pids(os.getpid())
    timeout = pytest.raises(TransportTimeout, match=r"did not answer within 0\.2 s")
    with anyio.fail_after(_TEST_TIMEOUT), timeout:
        async with launch_jupyter_server(python=str(hung), startup_timeout=0.2):
            pytest.fail("the interpreter never answers")
    assert child_pids(os.getpid()) == children_before


@pytest.fixture(scope="module")
def python_without_jupyter(tmp_path_factory: pytest.TempPathFactory) -> str:
    venv = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return str(venv / "bin" / "python")


async def test_interpreter_without_jupyter_server_raises_missing_dependency(
    python_without_jupyter: str,
) -> None:
    with anyio.fail_after(_TEST_TIMEOUT), pytest.raises(MissingDependency) as caught:
        async with launch_jupyter_server(python=python_without_jupyter):
            pytest.fail("the bare interpreter has no jupyter_server")
    assert "pip install 'jupyter-interp[local]'" in str(caught.value)
    assert python_without_jupyter in str(caught.value)


async def test_own_interpreter_missing_a_module_raises_missing_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    modules = ("jupyter_server", "jupyter_interp_no_such_module")
    monkeypatch.setattr(_launcher, "_REQUIRED_MODULES", modules)
    with anyio.fail_after(_TEST_TIMEOUT), pytest.raises(MissingDependency, match="jupyter-interp"):
        async with launch_jupyter_server():
            pytest.fail("a required module is missing")


async def test_a_relative_interpreter_path_is_taken_from_the_callers_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the server runs in the launcher's private directory
    interpreter = Path(sys.executable)
    monkeypatch.chdir(interpreter.parent.parent)  # a venv's bin/.. holds its pyvenv.cfg
    relative = os.path.join(interpreter.parent.name, interpreter.name)
    with anyio.fail_after(_TEST_TIMEOUT):
        async with launch_jupyter_server(python=relative) as server:
            assert await _status_code(server.url, "api/status", server.token) == 200


async def test_interpreter_that_cannot_run_raises_connect_error(tmp_path: Path) -> None:
    absent = str(tmp_path / "no-python")
    with anyio.fail_after(_TEST_TIMEOUT), pytest.raises(ConnectError, match="no-python"):
        async with launch_jupyter_server(python=absent):
            pytest.fail("there is no interpreter to run")


# The kernel's transport, and whether its IPC sockets sit beside its connection file.
_TRANSPORT = """
import os
from ipykernel.kernelapp import IPKernelApp
app = IPKernelApp.instance()
beside = os.path.dirname(app.ip) == os.path.dirname(app.connection_file)
print(app.transport, beside)
"""


def _kernelspec_not_run_as_module(jupyter_path: Path) -> str:
    """A kernelspec that starts ipykernel through ``-c``: not recognisably ipykernel."""
    name = "python-through-c"
    spec_dir = jupyter_path / "kernels" / name
    spec_dir.mkdir(parents=True)
    launch = "from ipykernel import kernelapp; kernelapp.launch_new_instance()"
    argv = [sys.executable, "-c", launch, "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": name, "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return name


async def _transport(
    client: Client, kernel_name: str | None = None, *, then_die: bool = False
) -> str:
    """The kernel's transport, the same after a restart and, with ``then_die``, after
    the kernel died (the server's autorestart binds the same sockets again)."""
    async with client.session(kernel_name) as session:
        first = await session.execute(_TRANSPORT)
        await session.restart()
        restarted = await session.execute(_TRANSPORT)
        if then_die:
            died = await session.execute("import os; os._exit(1)")
            assert died.status is ExecutionStatus.KERNEL_DIED, died.describe()
            reborn = await session.execute(_TRANSPORT)
            assert reborn.ok, reborn.describe()
            assert reborn.stdout == first.stdout
    assert first.ok, first.describe()
    assert restarted.stdout == first.stdout
    return first.stdout.strip()


async def test_ipykernel_kernels_run_over_ipc_and_others_keep_tcp(tmp_path: Path) -> None:
    other = _kernelspec_not_run_as_module(tmp_path)
    env = {"JUPYTER_PATH": str(tmp_path)}
    with anyio.fail_after(_TEST_TIMEOUT):
        async with local_server(env=env, **TEST_CLIENT_SETTINGS) as client:
            ipykernel = await _transport(client, then_die=True)
            not_recognised = await _transport(client, other)
    assert ipykernel == "ipc True"
    assert not_recognised == "tcp False"


async def test_a_transport_the_caller_chose_wins() -> None:
    with anyio.fail_after(_TEST_TIMEOUT):
        async with local_server(
            extra_args=["--KernelManager.transport=tcp"], **TEST_CLIENT_SETTINGS
        ) as client:
            assert await _transport(client) == "tcp False"


async def test_an_interpreter_without_our_kernel_manager_runs_kernels_over_tcp(
    tmp_path: Path,
) -> None:
    # Another interpreter whose jupyter_interp (an older one, say) has no embedded kernel manager.
    older = tmp_path / "older" / "jupyter_interp"
    older.mkdir(parents=True)
    (older / "__init__.py").write_text("")
    interpreter = tmp_path / "python"
    interpreter.write_text(f'#!/bin/sh\nPYTHONPATH={older.parent} exec {sys.executable} "$@"\n')
    interpreter.chmod(0o755)
    with anyio.fail_after(_TEST_TIMEOUT):
        async with local_server(python=str(interpreter), **TEST_CLIENT_SETTINGS) as client:
            assert await _transport(client) == "tcp False"


def test_session_server_answers_with_its_token(jupyter_server: RunningServer) -> None:
    assert jupyter_server.root_dir.is_dir()
    assert jupyter_server.token not in repr(jupyter_server)
    for token, expected in ((jupyter_server.token, 200), (_WRONG_TOKEN, 403)):
        with httpx.Client(base_url=jupyter_server.url, trust_env=False) as http:
            assert http.get("api").status_code == 200
            assert http.get("api/status", headers=_auth(token)).status_code == expected


def test_run_server_kills_a_stubborn_server_with_its_children_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-c", _STUBBORN_SERVER, str(port)]
    started: set[int] = set()
    with (
        pytest.raises(RuntimeError, match=r"ignored SIGTERM for 0\.2 s") as caught,
        run_server(
            command,
            url=f"http://127.0.0.1:{port}/",
            token="",
            root_dir=tmp_path,
            log_path=tmp_path / "stubborn.log",
            shutdown_timeout=0.2,
        ) as server,
    ):
        started.update({server.pid, *child_pids(server.pid)})
    assert len(started) == 2  # the server and its "kernel"
    _assert_all_gone(started)
    assert "GET /api" in str(caught.value)  # the log tail
