"""The gateway provider's session lifecycle on a real Jupyter Server, loaded the way the
gateway's registry loads it (``provider_harness``): every method of the contract, stops
that are idempotent, kernels that vanish, concurrent starts and calls, and health checks.
Every test runs on asyncio and trio.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import anyio
import pytest

from jupyter_interp.provider import SessionInUse

from .provider_harness import (
    _LIMIT,
    BACKEND,
    delete_kernel,
    load_provider,
    provider_on,
    retire,
    settings,
)
from .servers import RunningServer

pytestmark = pytest.mark.anyio


async def test_the_registry_loads_it_and_every_method_works(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    config = {**settings(jupyter_server, tmp_path), "an_option_of_a_newer_gateway": "x"}
    provider = load_provider(BACKEND, config, gateway_abc)
    assert inspect.iscoroutinefunction(provider.close)
    with anyio.fail_after(_LIMIT):
        assert await provider.healthcheck() is True
        started = await provider.start_session(config={"language": "python"})
        sid = started["session_id"]
        executed = await provider.execute(sid, "import math\nprint(math.pi)")
        uploaded = await provider.upload_file(sid, "data.bin", bytes(range(256)) * 40)
        downloaded = await provider.download_file(sid, "data.bin")
        listed = await provider.list_sessions()
        described = await provider.get_session(sid)
        history = await provider.get_execution_history(sid, limit=10)
        await provider.stop_session(sid)
        after = await provider.list_sessions()
        with pytest.raises(KeyError) as missing:
            await provider.get_session(sid)
        await retire(provider)

    assert started["status"] == "active"
    assert started["language"] == "python"
    assert started["created_at"].endswith("+00:00")
    assert executed == {
        "session_id": sid,
        "stdout": f"{math.pi}\n",
        "stderr": "",
        "exit_code": 0,
        "result": "",
        "error": None,
        "status": "ok",
    }
    assert uploaded["size"] == 10240
    assert uploaded["filename"] == "data.bin"
    assert uploaded["session_id"] == sid
    assert downloaded == bytes(range(256)) * 40
    assert sid in [entry["session_id"] for entry in listed]
    assert described == started
    assert [entry["code"] for entry in history] == ["import math\nprint(math.pi)"]
    assert history[0]["stdout"] == f"{math.pi}\n"
    assert sid not in [entry["session_id"] for entry in after]
    assert str(missing.value).startswith(f"session {sid!r} not found")


async def test_stop_is_idempotent_even_after_the_kernel_vanished(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as provider:
            sid = (await provider.start_session())["session_id"]
            await provider.stop_session(sid)
            await provider.stop_session(sid)
            await provider.stop_session("never-started")
            vanishing = await provider.start_session("vanishing")
            await provider.execute("vanishing", "1")
            await delete_kernel(jupyter_server, vanishing["metadata"]["kernel_id"])
            started = anyio.current_time()
            await provider.stop_session("vanishing")
            took = anyio.current_time() - started
            with pytest.raises(ValueError, match="'vanishing' not found"):
                await provider.execute("vanishing", "1")
            with pytest.raises(KeyError):
                await provider.get_execution_history("vanishing")

    assert took < 5


async def test_a_vanished_kernel_is_an_unknown_session(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, execution_timeout="1"
        ) as provider:
            started = await provider.start_session("culled")
            await provider.execute("culled", "1")
            await delete_kernel(jupyter_server, started["metadata"]["kernel_id"])
            with pytest.raises(ValueError, match="not found"):
                await provider.upload_file("culled", "a.txt", b"a")
            await provider.start_session("culled-too")
            await provider.execute("culled-too", "1")
            kernel_id = (await provider.get_session("culled-too"))["metadata"]["kernel_id"]
            await delete_kernel(jupyter_server, kernel_id)
            with pytest.raises(KeyError):
                await provider.execute("culled-too", "2")
            listed = await provider.list_sessions()

    assert listed == []


async def test_many_sessions_and_concurrent_calls(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    starts: list[dict[str, Any]] = []
    same: list[dict[str, Any]] = []
    refused: list[ValueError] = []
    results: dict[int, dict[str, Any]] = {}

    async def start() -> None:
        starts.append(await provider.start_session())

    async def start_same() -> None:
        try:
            same.append(await provider.start_session("one-id"))
        except ValueError as exc:
            refused.append(exc)

    async def run(sid: str, index: int) -> None:
        code = f"import time\ntime.sleep(0.1)\nprint({index})"
        results[index] = await provider.execute(sid, code)

    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as provider:
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(start)
                for _ in range(3):
                    tg.start_soon(start_same)
            sid = starts[0]["session_id"]
            async with anyio.create_task_group() as tg:
                for index in range(5):
                    tg.start_soon(run, sid, index)
                tg.start_soon(provider.upload_file, sid, "during.txt", b"x" * 1000)
            history = await provider.get_execution_history(sid)
            for session in [*starts, same[0]]:
                await provider.stop_session(session["session_id"])

    assert len({session["session_id"] for session in starts}) == 3
    assert len(same) == 1  # one start won; the others were refused, not handed its kernel
    assert [str(exc) for exc in refused] == [str(SessionInUse("one-id"))] * 2
    assert {index: result["stdout"] for index, result in results.items()} == {
        index: f"{index}\n" for index in range(5)
    }
    assert len(history) == 5


async def test_healthcheck_says_what_is_wrong(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, token="not-the-token"
        ) as wrong_token:
            refused = await wrong_token.healthcheck()
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, kernel_name="cobol"
        ) as wrong_kernel:
            no_kernel = await wrong_kernel.healthcheck()

    assert not refused
    assert "refused our token" in refused
    assert "not-the-token" not in refused
    assert not no_kernel
    assert "no kernelspec 'cobol'" in no_kernel
    assert "python3" in no_kernel
