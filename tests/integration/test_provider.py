"""The gateway provider against real servers, loaded the way the gateway's registry does.

``load_provider`` imitates agentic-primitives-gateway's registry: import the backend by
dotted path, construct it from a mapping of *string* values (as YAML substitution yields
them), refuse it unless ``isinstance(instance, CodeInterpreterProvider)``, wrap it in an
attribute-forwarding proxy (the metrics proxy) and, at the end, ``close()`` it the way a
config reload does. The gateway is not installable here, so ``gateway_abc`` installs a
stand-in ``CodeInterpreterProvider`` with the gateway's abstract methods under the
gateway's module name; the provider registers itself with whatever class is found there.

Every test runs on asyncio and trio: the provider starts its owner task with the running
loop's own primitive on either backend. Each test uses its own kernels and its own file
root (``tmp_path``), and stops what it starts.
"""

from __future__ import annotations

import abc
import base64
import importlib
import inspect
import json
import math
import sys
import types
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import jupyter_interp as ji
from jupyter_interp.protocol import rest
from jupyter_interp.provider import SessionInUse

from .conftest import ServerUnderTest
from .servers import RunningServer

pytestmark = pytest.mark.anyio

BACKEND = "jupyter_interp.provider.JupyterCodeInterpreterProvider"
GATEWAY_BASE = "agentic_primitives_gateway.primitives.code_interpreter.base"
#: a 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
_LIMIT = 120


class StandInCodeInterpreterProvider(abc.ABC):
    """The gateway's abstract base class, method for method."""

    @abc.abstractmethod
    async def start_session(
        self, session_id: str | None = None, config: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def stop_session(self, session_id: str) -> None: ...

    @abc.abstractmethod
    async def execute(
        self, session_id: str, code: str, language: str = "python"
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def upload_file(
        self, session_id: str, filename: str, content: bytes
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def download_file(self, session_id: str, filename: str) -> bytes: ...

    @abc.abstractmethod
    async def list_sessions(self, status: str | None = None) -> list[dict[str, Any]]: ...

    async def healthcheck(self) -> bool:
        return True


class MetricsProxy:
    """Forwards every attribute, like the gateway's metrics wrapper."""

    def __init__(self, target: object) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@pytest.fixture
def gateway_abc(monkeypatch: pytest.MonkeyPatch) -> type[StandInCodeInterpreterProvider]:
    module = types.ModuleType(GATEWAY_BASE)
    module.CodeInterpreterProvider = StandInCodeInterpreterProvider  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, GATEWAY_BASE, module)
    return StandInCodeInterpreterProvider


def load_provider(backend: str, config: Mapping[str, str], base: type) -> Any:
    """What the registry does: import by dotted path, construct, type-check, wrap."""
    module_name, _, class_name = backend.rpartition(".")
    provider_class = getattr(importlib.import_module(module_name), class_name)
    instance = provider_class(**config)
    if not isinstance(instance, base):
        raise TypeError(f"{backend} is not a {base.__name__}")
    return MetricsProxy(instance)


async def retire(provider: Any) -> None:
    """What a config reload does with the old provider."""
    close = getattr(provider, "close", None)
    if close is not None:
        outcome = close()
        if inspect.isawaitable(outcome):
            await outcome


def settings(server: RunningServer, file_root: Path, **extra: str) -> dict[str, str]:
    return {
        "base_url": server.url,
        "token": server.token,
        "kernel_name": "python3",
        "execution_timeout": "30",
        "file_root": str(file_root),
        **extra,
    }


@asynccontextmanager
async def provider_on(
    server: RunningServer, file_root: Path, base: type, **extra: str
) -> AsyncIterator[Any]:
    provider = load_provider(BACKEND, settings(server, file_root, **extra), base)
    try:
        yield provider
    finally:
        with anyio.CancelScope(shield=True):
            await retire(provider)


async def kernel_exists(server: RunningServer | ServerUnderTest, kernel_id: str) -> bool:
    async with ji.Client(server.url, token=server.token) as client:
        try:
            await client.get_kernel(kernel_id)
        except ji.KernelNotFound:
            return False
        return True


async def delete_kernel(server: RunningServer, kernel_id: str) -> None:
    async with ji.Client(server.url, token=server.token) as client:
        await client.http.call(rest.delete_kernel(kernel_id), rest.parse_delete_kernel)


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


async def test_a_second_instance_re_attaches_and_lists_the_sessions(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as first:
            generated = await first.start_session()
            named = await first.start_session("agent-run-42")
            for session in (generated, named):
                await first.execute(session["session_id"], "x = 41")
        # the first instance is gone (a restart, or another replica): kernels live on
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as second:
            listed = {entry["session_id"]: entry for entry in await second.list_sessions()}
            with pytest.raises(ValueError, match="already in use"):
                await second.start_session("agent-run-42")  # never handed out again
            again = await second.get_session("agent-run-42")
            answers = [
                await second.execute(session["session_id"], "x + 1")
                for session in (generated, named)
            ]
            for session in (generated, named):
                await second.stop_session(session["session_id"])

    assert listed[generated["session_id"]] == generated
    assert listed["agent-run-42"] == named
    assert named["metadata"]["kernel_id"] != "agent-run-42"
    assert again == named  # re-attached by a call on the session, not by a start
    assert [answer["result"] for answer in answers] == ["42", "42"]
    assert not await kernel_exists(jupyter_server, named["metadata"]["kernel_id"])


@pytest.mark.parametrize("gateway", ["kernel_gateway", "enterprise_gateway"])
async def test_gateways_re_attach_by_the_derived_kernel_id(
    gateway: str, request: pytest.FixtureRequest, tmp_path: Path, gateway_abc: type
) -> None:
    server: RunningServer = request.getfixturevalue(gateway)
    with anyio.fail_after(_LIMIT):
        async with provider_on(server, tmp_path, gateway_abc) as first:
            healthy = await first.healthcheck()
            named = await first.start_session("agent-on-a-gateway")
            await first.execute("agent-on-a-gateway", "x = 41")
            known_to_first = await first.list_sessions()
        async with provider_on(server, tmp_path, gateway_abc) as second:
            before = await second.list_sessions()  # the gateway refuses listing
            answer = await second.execute("agent-on-a-gateway", "x + 1")
            after = await second.list_sessions()
            await second.stop_session("agent-on-a-gateway")
            await second.stop_session("agent-on-a-gateway")

    assert healthy is True
    assert [entry["session_id"] for entry in known_to_first] == ["agent-on-a-gateway"]
    assert before == []
    assert answer["result"] == "42"
    assert [entry["session_id"] for entry in after] == ["agent-on-a-gateway"]
    assert after[0]["metadata"]["kernel_id"] == named["metadata"]["kernel_id"]
    assert not await kernel_exists(server, named["metadata"]["kernel_id"])


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


async def test_a_timeout_is_a_failure_and_the_session_goes_on(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, execution_timeout="2"
        ) as provider:
            sid = (await provider.start_session())["session_id"]
            await provider.execute(sid, "y = 7")
            slow = await provider.execute(
                sid, "import time\nprint('begun', flush=True)\ntime.sleep(60)"
            )
            after = await provider.execute(sid, "y")
            await provider.stop_session(sid)

    assert slow["exit_code"] == 124
    assert slow["status"] == "timed_out"
    assert "timed out" in slow["error"]
    assert "interrupted" in slow["error"]
    assert slow["stdout"] == "begun\n"  # the partial output is kept
    assert after["exit_code"] == 0
    assert after["result"] == "7"


async def test_code_in_a_language_the_kernel_does_not_speak_is_not_run(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as provider:
            sid = (await provider.start_session())["session_id"]
            refused = await provider.execute(sid, "x = 1\necho hi", language="bash")
            after = await provider.execute(sid, "'x' in globals()", language="python")
            history = await provider.get_execution_history(sid)
            await provider.stop_session(sid)

    assert refused["exit_code"] == 1
    assert refused["status"] == "language_mismatch"
    assert "runs python, not bash" in refused["error"]
    assert after["result"] == "False"  # the refused code did not run
    assert [(h["language"], h["exit_code"]) for h in history] == [("bash", 1), ("python", 0)]


async def test_a_restart_says_state_was_lost_and_restores_the_working_dir(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    stubborn = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"
    with anyio.fail_after(_LIMIT):
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, execution_timeout="2"
        ) as provider:
            started = await provider.start_session()
            sid = started["session_id"]
            stuck = await provider.execute(sid, stubborn)
            where = await provider.execute(sid, "import os\nos.getcwd()")
            await provider.stop_session(sid)

    assert stuck["exit_code"] == 124
    assert "restarted" in stuck["error"]
    assert "state (variables, imports) was lost" in stuck["error"]
    assert where["result"] == repr(started["metadata"]["working_dir"])


async def test_images_are_saved_as_files_not_inlined(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    code = (
        f"from IPython.display import Image, display\ndisplay(Image(data={PNG!r}))\nprint('drawn')"
    )
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as provider:
            sid = (await provider.start_session())["session_id"]
            drawn = await provider.execute(sid, code)
            saved = [await provider.download_file(sid, name) for name in drawn["files"]]
            await provider.stop_session(sid)

    assert drawn["exit_code"] == 0
    assert drawn["stdout"].startswith("drawn\n[jupyter-interp] 1 rich output saved as files")
    assert drawn["files"] == ["output-1-1.png"]
    assert saved == [PNG]
    as_text = json.dumps(drawn)
    assert base64.b64encode(PNG).decode()[:16] not in as_text
    assert len(as_text) < 600


async def test_files_live_in_the_session_folder(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as provider:
            started = await provider.start_session()
            sid = started["session_id"]
            await provider.upload_file(sid, "data/in.csv", b"a,b\n1,2\n")
            read = await provider.execute(sid, "open('data/in.csv').read()")
            await provider.execute(sid, "open('out.txt', 'w').write('written by the code')")
            written = await provider.download_file(sid, "out.txt")
            with pytest.raises(ValueError, match=r"no file 'nothing-here\.txt'") as missing:
                await provider.download_file(sid, "nothing-here.txt")
            with pytest.raises(ValueError, match="'\\.\\.'"):
                await provider.upload_file(sid, "../escape.txt", b"no")
            folder = Path(started["metadata"]["working_dir"])
            existed = await anyio.Path(folder / "data" / "in.csv").read_bytes()
            await provider.stop_session(sid)

    assert folder.parent == tmp_path
    assert read["result"] == repr("a,b\n1,2\n")
    assert written == b"written by the code"
    assert isinstance(missing.value, FileNotFoundError)
    assert existed == b"a,b\n1,2\n"
    assert not await anyio.Path(folder).exists()  # stop_session removed it
    assert not await anyio.Path(tmp_path / "escape.txt").exists()


async def test_big_output_is_cut_visibly(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, max_output_bytes="2000"
        ) as provider:
            sid = (await provider.start_session())["session_id"]
            loud = await provider.execute(sid, "print('head' + 'x' * 100_000 + 'tail')")
            await provider.stop_session(sid)

    assert loud["exit_code"] == 0
    assert loud["truncated"] is True
    assert "output truncated" in loud["error"]
    assert len(loud["stdout"].encode()) < 2200
    assert loud["stdout"].startswith("head")
    assert loud["stdout"].rstrip().endswith("tail")
    assert "omitted" in loud["stdout"]


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


async def test_close_keeps_kernels_unless_told_to_stop_them(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as keeping:
            kept = await keeping.start_session()
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, stop_sessions_on_close="true"
        ) as stopping:
            attached = await stopping.get_session(kept["session_id"])
            owned = await stopping.start_session()
        kept_alive = await kernel_exists(jupyter_server, kept["metadata"]["kernel_id"])
        owned_alive = await kernel_exists(jupyter_server, owned["metadata"]["kernel_id"])
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as cleaner:
            reused = await cleaner.execute(kept["session_id"], "'still here'")
            await cleaner.stop_session(kept["session_id"])

    assert attached == kept
    assert kept_alive  # attached, not started, by the stopping instance
    assert not owned_alive
    assert reused["result"] == "'still here'"


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
