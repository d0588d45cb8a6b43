"""A new user's first day (issue 23): each defect found by trying the public surface.

Sessions, kernels and files on the shared Jupyter Server, under asyncio and trio; most
tests share one kernel per backend (``shared_session``).
"""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import (
    AuthenticationError,
    FileTransferError,
    KernelUnavailable,
    LocalProtocolError,
    PathNotConfined,
)
from jupyter_interp.protocol import rest
from jupyter_interp.protocol.events import ExecutionEvent
from jupyter_interp.protocol.files.replies import EntryKind
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus
from jupyter_interp.session import Session

from .conftest import server_kernel_ids
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_TIMEOUT = 90


@pytest.fixture(
    scope="module", params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_kernel_that_dies_just_before_shutdown_is_deleted(
    client: Client, jupyter_server: RunningServer
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with client.session() as session:
            result = await session.execute("import os; os._exit(1)", timeout=60)

    assert result.status in (ExecutionStatus.KERNEL_DIED, ExecutionStatus.KERNEL_RESTARTED)
    assert session.kernel_id not in server_kernel_ids(jupyter_server)


async def test_a_wrong_token_is_named_as_the_cause_and_api_status_checks_it(
    jupyter_server: RunningServer,
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with Client(jupyter_server.url, token="wrong-token-0123456789abcdef") as client:
            with pytest.raises(AuthenticationError) as started:
                await client.start_session()
            with pytest.raises(AuthenticationError):
                await client.api_status()
        async with Client(jupyter_server.url, token=jupyter_server.token) as client:
            status = await client.api_status()

    assert "refused our credentials" in str(started.value)
    assert "xsrf" not in str(started.value).lower()
    assert status.version


@pytest.mark.parametrize("timeout", [0, -1, math.nan])
async def test_a_timeout_that_is_no_positive_number_is_refused(
    shared_session: Session, timeout: float
) -> None:
    with anyio.fail_after(_TIMEOUT):
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            await shared_session.execute("1", timeout=timeout)
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            async for _ in shared_session.stream("1", timeout=timeout):
                pass
        after = await shared_session.execute("2 + 2", timeout=30)

    assert after.result == "4"


async def test_an_upload_to_a_path_ending_in_a_slash_is_refused(shared_session: Session) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}"
    with anyio.fail_after(_TIMEOUT), pytest.raises(PathNotConfined, match="ends with '/'"):
        await shared_session.upload(f"{name}/", b"x")

    assert not (Path(shared_session.file_root) / name).exists()


async def test_download_to_a_missing_local_directory_names_that_path(
    shared_session: Session, tmp_path: Path
) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}.txt"
    destination = tmp_path / "no" / "such" / "dir" / "f.txt"
    with anyio.fail_after(_TIMEOUT):
        await shared_session.upload(name, b"hello")
        with pytest.raises(FileNotFoundError) as caught:
            await shared_session.download_to(name, destination)

    assert caught.value.filename == str(destination)
    assert ".part" not in str(caught.value)
    assert not (tmp_path / "no").exists()


async def test_a_client_used_after_its_block_says_so(
    client_factory: Callable[..., Client],
) -> None:
    async with client_factory() as client:
        pass
    with anyio.fail_after(_TIMEOUT), pytest.raises(LocalProtocolError) as caught:
        await client.kernelspecs()

    assert "Client" in str(caught.value)
    assert "closed" in str(caught.value)
    assert "HttpTransport" not in str(caught.value)


async def test_a_client_without_a_url_reads_the_environment(
    jupyter_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_URL", jupyter_server.url)
    monkeypatch.setenv("JUPYTER_TOKEN", jupyter_server.token)
    with anyio.fail_after(_TIMEOUT):
        async with Client() as client:
            specs = await client.kernelspecs()  # refused without the token
        async with Client(token="given") as explicit:
            pass

    assert client.config.base_url == jupyter_server.url
    assert "python3" in specs.specs
    assert explicit.config.token == "given"  # an argument wins over the environment


def test_the_library_prints_nothing_when_logging_is_not_configured() -> None:
    code = (
        "import logging, jupyter_interp.client\n"
        "logging.getLogger('jupyter_interp.client').warning('should stay quiet')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0
    assert done.stderr == ""


async def test_a_stream_left_early_does_not_block_the_session(shared_session: Session) -> None:
    code = "import time\nprint('begun', flush=True)\ntime.sleep(60)\nprint('finished')"
    with anyio.fail_after(_TIMEOUT):
        async for _ in shared_session.stream(code):
            break  # no aclosing: the execution must not hold the session
        after = await shared_session.execute("'free'", timeout=30)

    assert after.result == "'free'"


async def test_a_stream_as_a_context_manager_is_closed_on_leaving(
    shared_session: Session,
) -> None:
    code = "import time\nprint('begun', flush=True)\ntime.sleep(60)"
    seen: list[ExecutionEvent] = []
    with anyio.fail_after(_TIMEOUT):
        async with shared_session.stream(code) as events:
            async for event in events:
                seen.append(event)
                break
        # another task may run the next execution: the session is free already
        async with anyio.create_task_group() as tg:
            results: list[ExecutionResult] = []

            async def run() -> None:
                results.append(await shared_session.execute("'free'", timeout=30))

            tg.start_soon(run)

    assert seen
    assert [r.result for r in results] == ["'free'"]


async def test_a_kernel_deleted_from_outside_while_busy_is_gone_at_once(
    client: Client,
) -> None:
    code = "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)"
    results: list[ExecutionResult] = []
    with anyio.fail_after(_TIMEOUT):
        async with client.session() as session:
            async with anyio.create_task_group() as tg:

                async def run() -> None:
                    results.append(await session.execute(code))

                tg.start_soon(run)
                await anyio.sleep(2)
                await client.http.call(
                    rest.delete_kernel(session.kernel_id), rest.parse_delete_kernel
                )
            # typed at once: no keep-alive check (30 s) is needed to find out
            with pytest.raises(KernelUnavailable, match="gone"):
                await session.execute("1")

    assert results[0].status is ExecutionStatus.CONNECTION_LOST  # not a kernel quirk
    assert "is gone from the server" in results[0].detail
    assert results[0].stdout.startswith("0\n1\n")


async def test_stat_of_a_directory_says_directory(shared_session: Session) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}"
    with anyio.fail_after(_TIMEOUT):
        await shared_session.upload(f"{name}/f.txt", b"abc")
        directory = await shared_session.files.stat(name)
        file = await shared_session.files.stat(f"{name}/f.txt")
        with pytest.raises(FileTransferError, match="is a directory"):
            await shared_session.download(name)

    assert directory.kind is EntryKind.DIRECTORY
    assert (directory.size, directory.sha256) == (0, "")
    assert directory.mtime_ns == (Path(shared_session.file_root) / name).stat().st_mtime_ns
    assert (file.kind, file.size) == (EntryKind.FILE, 3)
