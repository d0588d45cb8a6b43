"""The library on every kernel it supports: ipykernel, xeus-python, bash_kernel, IRkernel
and Deno, each installed and registered by ``kernels_env.ensure_kernels()``.

Each kernel is started once per module and event loop (asyncio, trio): tests share that
session and do not depend on each other's state or counters; those that kill or restart
the kernel come last in the file, and the session recovers from them. ``KernelCase``
holds, per kernel, the code that triggers each behaviour and what that kernel is known
to answer (docs/kernels.md explains the differences).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import KernelSpecNotFound, UnsupportedKernel
from jupyter_interp.protocol.files import CHUNK_SIZE
from jupyter_interp.protocol.files.replies import EntryKind
from jupyter_interp.protocol.result import ExecutionStatus, Recovery, strip_ansi
from jupyter_interp.provider.results import execution_dict
from jupyter_interp.session import Session

from .conftest import TEST_CLIENT_SETTINGS
from .kernels_env import KERNEL_NAMES, ensure_kernels
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_TIMEOUT = 60


@attrs.frozen(kw_only=True)
class KernelCase:
    name: str
    language: str
    #: prints "out" to stdout and "err" to stderr
    streams: str
    stdout: str
    stderr: str
    #: evaluates 6 * 7 as the cell's value
    value: str
    #: shows <b>x</b> as HTML
    html: str
    #: fails; ``ename`` must contain ``ename``, ``evalue`` must match ``evalue``
    failing: str
    ename: str
    evalue: str
    #: asks for input
    ask: str
    ask_status: ExecutionStatus
    sleep: str
    fail_later: str
    set_x: str
    show_x: str
    x_unset: str
    die: str
    interrupt_status: ExecutionStatus = ExecutionStatus.INTERRUPTED
    aborts_queue: bool = True
    files: bool = True


PYTHON: dict[str, Any] = {
    "streams": "import sys; print('out'); print('err', file=sys.stderr)",
    "stdout": "out\n",
    "stderr": "err\n",
    "value": "6 * 7",
    "html": "from IPython.display import HTML, display; display(HTML('<b>x</b>'))",
    "failing": "1 / 0",
    "ename": "ZeroDivisionError",
    "evalue": "division by zero",
    "ask": "input('name? ')",
    "sleep": "import time; time.sleep(30)",
    "fail_later": "import time; time.sleep(2); 1 / 0",
    "set_x": "x = 5",
    "show_x": "print(globals().get('x', 'unset'))",
    "x_unset": "unset\n",
    "die": "import os; os._exit(1)",
}
CASES = [
    KernelCase(
        name=KERNEL_NAMES["ipykernel"],
        language="python",
        ask_status=ExecutionStatus.INPUT_REQUIRED,
        **PYTHON,
    ),
    KernelCase(
        name=KERNEL_NAMES["xeus-python"],
        language="python",
        # xeus-python refuses input() itself (RuntimeError) since we send allow_stdin=false
        ask_status=ExecutionStatus.ERROR,
        # SIGINT kills xeus kernels (jupyter-xeus/xeus#272): the server restarts it
        interrupt_status=ExecutionStatus.KERNEL_DIED,
        # xeus-python mishandles a request queued behind a running one (see docs)
        aborts_queue=False,
        **PYTHON,
    ),
    KernelCase(
        name=KERNEL_NAMES["bash_kernel"],
        language="bash",
        streams="echo out; echo err >&2",
        stdout="out\nerr\n",  # one pseudo-terminal: stderr arrives as stdout
        stderr="",
        value="echo $((6 * 7))",
        html="echo '<b>x</b>' | displayHTML",
        failing="false",
        ename="",
        evalue="^1$",
        ask="read x",  # blocks on the terminal until interrupted
        ask_status=ExecutionStatus.TIMED_OUT,
        sleep="sleep 30",
        fail_later="sleep 2; false",
        set_x="x=5",
        show_x="echo ${x:-unset}",
        x_unset="unset\n",
        die="kill -9 $PPID",
    ),
    KernelCase(
        name=KERNEL_NAMES["IRkernel"],
        language="r",
        streams="cat('out\\n'); message('err')",
        stdout="out\n",
        stderr="err\n\n",  # IRkernel ends every message() with an extra newline
        value="6 * 7",
        html="IRdisplay::display_html('<b>x</b>')",
        failing="stop('boom')",
        ename="ERROR",
        evalue="boom",
        ask="readline('name? ')",
        ask_status=ExecutionStatus.INPUT_REQUIRED,
        sleep="Sys.sleep(30)",
        fail_later="Sys.sleep(2); stop('late')",
        set_x="x <- 5",
        show_x="cat(if (exists('x')) x else 'unset', '\\n', sep = '')",
        x_unset="unset\n",
        die="tools::pskill(Sys.getpid(), 9)",
    ),
    KernelCase(
        name=KERNEL_NAMES["deno"],
        language="typescript",
        # Deno may publish console output after idle unless the cell awaits once
        streams=(
            "console.log('out'); console.error('err');"
            " await new Promise((done) => setTimeout(done, 200));"
        ),
        stdout="out\n",
        stderr="err\n",
        value="6 * 7",
        html="Deno.jupyter.html`<b>x</b>`",
        failing="throw new Error('boom')",
        ename="Error",
        evalue="boom",
        ask="prompt('name? ')",  # answers null without stdin
        ask_status=ExecutionStatus.OK,
        sleep="await new Promise((done) => setTimeout(done, 30000))",
        fail_later="await new Promise((done) => setTimeout(done, 2000)); throw new Error('late')",
        set_x="var x = 5",
        show_x="console.log(typeof x === 'undefined' ? 'unset' : x);"
        " await new Promise((done) => setTimeout(done, 200));",
        x_unset="unset\n",
        die="Deno.exit(1)",
        # SIGINT ends the Deno kernel (denoland/deno#24491): the server restarts it
        interrupt_status=ExecutionStatus.KERNEL_DIED,
        aborts_queue=False,  # Deno runs the queued request after the failed one
        files=False,
    ),
]


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def kernels_ready() -> None:
    ensure_kernels()


@pytest.fixture(scope="module")
async def shared_client(
    anyio_backend: str, jupyter_server: RunningServer, kernels_ready: None
) -> AsyncIterator[Client]:
    async with Client(
        jupyter_server.url, token=jupyter_server.token, **TEST_CLIENT_SETTINGS
    ) as client:
        yield client


@pytest.fixture(scope="module", params=CASES, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> KernelCase:
    assert isinstance(request.param, KernelCase)
    return request.param


@pytest.fixture(scope="module")
async def kernel(
    shared_client: Client, case: KernelCase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Session]:
    root = tmp_path_factory.mktemp(f"files-{case.name}")
    async with shared_client.session(case.name, file_root=str(root)) as session:
        yield session


# --- language -> kernel selection -----------------------------------------------------------


async def test_language_picks_a_matching_kernelspec(shared_client: Client) -> None:
    with anyio.fail_after(_TIMEOUT):
        assert await shared_client.resolve_kernel_name(None, " R ") == KERNEL_NAMES["IRkernel"]
        assert await shared_client.resolve_kernel_name(None, "bash") == KERNEL_NAMES["bash_kernel"]
        assert await shared_client.resolve_kernel_name(None, "TypeScript") == "deno"
        # several Python kernels: the server's default wins
        assert await shared_client.resolve_kernel_name(None, "python") == "python3"
        assert await shared_client.resolve_kernel_name("bash", "r") == "bash"  # a name wins
        async with shared_client.session(language="r") as session:
            assert session.kernel_name == KERNEL_NAMES["IRkernel"]
            assert session.language == "r"


async def test_an_unknown_language_lists_what_the_server_offers(shared_client: Client) -> None:
    with anyio.fail_after(_TIMEOUT), pytest.raises(KernelSpecNotFound) as info:
        await shared_client.start_session(language="cobol")
    message = str(info.value)
    assert "'cobol'" in message
    for offered in ("bash (bash)", "deno (typescript)", "ir (R)", "python3 (python)"):
        assert offered in message


# --- execution --------------------------------------------------------------------------------


async def test_streams(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await kernel.execute(case.streams)
        assert result.ok, result.describe()
        assert (result.stdout, result.stderr) == (case.stdout, case.stderr)


async def test_the_value_of_the_cell(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await kernel.execute(case.value)
        assert result.ok, result.describe()
        if case.name == KERNEL_NAMES["bash_kernel"]:  # no values in bash: only output
            assert (result.result, result.stdout) == (None, "42\n")
        elif case.name == KERNEL_NAMES["IRkernel"]:  # its value comes as display_data
            assert result.result == "[1] 42"
            assert [(o.kind, o.data["text/plain"]) for o in result.outputs] == [
                ("execute_result", "[1] 42")
            ]
            outcome = execution_dict("s", result, cap=None)  # the provider shows it as such
            assert (outcome["result"], "display" in outcome) == ("[1] 42", False)
        else:
            assert strip_ansi(result.result or "") == "42"


async def test_rich_output(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await kernel.execute(case.html)
        assert result.ok, result.describe()
        assert [o.data["text/html"].strip() for o in result.outputs] == ["<b>x</b>"]
        assert result.result is None or case.name == KERNEL_NAMES["deno"]  # Deno: a value


#: per kernel: a cell that prints and displays but has no value; one with both
_SHOWN = {
    KERNEL_NAMES["ipykernel"]: (
        "from IPython.display import display; print(1); display(2)",
        "display(3); 6 * 7",
    ),
    KERNEL_NAMES["IRkernel"]: ("print(1); plot(1:3); invisible(7)", "6 * 7; plot(1:3)"),
}


async def test_a_display_is_never_the_value(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        assigned = await kernel.execute(case.set_x)
        assert (assigned.ok, assigned.result) == (True, None)
        if case.name not in _SHOWN:
            return
        shown, value_first = _SHOWN[case.name]
        result = await kernel.execute(shown)
        assert (result.ok, result.result) == (True, None), result.describe()
        assert [o.kind for o in result.outputs] == ["display_data"]
        result = await kernel.execute(value_first)
        assert strip_ansi(result.result or "") in ("42", "[1] 42")
        assert sorted(o.kind for o in result.outputs) == ["display_data", "execute_result"]


async def test_no_execution_loses_output_published_late(kernel: Session, case: KernelCase) -> None:
    # Deno publishes some results after its idle status (about one execution in ten
    # here); the session waits briefly for them on such kernels (``publishes_after_idle``)
    with anyio.fail_after(_TIMEOUT):
        for _ in range(15):
            result = await kernel.execute(case.html)
            assert result.ok, result.describe()
            assert [o.data["text/html"].strip() for o in result.outputs] == ["<b>x</b>"]


async def test_errors(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await kernel.execute(case.failing)
        assert result.status is ExecutionStatus.ERROR
        assert result.error is not None
        assert case.ename in result.error.ename
        assert re.search(case.evalue, result.error.evalue)
        assert all("\x1b" not in line for line in result.error.traceback)
        assert (await kernel.execute(case.streams)).ok  # the kernel goes on


async def test_stdin_policy(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await kernel.execute(case.ask, timeout=5)
        assert result.status is case.ask_status, result.describe()
        after = await kernel.execute(case.streams)
        assert (after.ok, after.stdout) == (True, case.stdout)


# --- files --------------------------------------------------------------------------------------


async def test_file_transfer(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        data = os.urandom(CHUNK_SIZE + 1000)  # two chunks
        if not case.files:
            with pytest.raises(UnsupportedKernel, match="'typescript'"):
                await kernel.upload("f.bin", data)
            return
        committed = await kernel.upload("dir ü/f.bin", data)
        assert committed.sha256 == hashlib.sha256(data).hexdigest()
        assert await kernel.download("dir ü/f.bin") == data
        listing = await kernel.files.list_dir("dir ü")
        assert [(e.name, e.kind, e.size) for e in listing.entries] == [
            ("f.bin", EntryKind.FILE, len(data))
        ]
        assert (await kernel.files.delete("dir ü", recursive=True)).kind is EntryKind.DIRECTORY
        assert (await kernel.files.list_dir()).entries == ()
        after = await kernel.execute(case.streams)  # the user's session is untouched
        assert (after.ok, after.stdout) == (True, case.stdout)


# --- interrupt, aborts, timeouts, restart, death (the kernel survives or is restarted) ----


async def test_interrupt(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        outcome = {}

        async def run() -> None:
            outcome["result"] = await kernel.execute(case.sleep)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await anyio.sleep(2)
            await kernel.interrupt()
        assert outcome["result"].status is case.interrupt_status, outcome["result"].describe()
        assert (await kernel.execute(case.streams)).stdout == case.stdout


async def test_a_request_queued_behind_a_failure(
    shared_client: Client, kernel: Session, case: KernelCase
) -> None:
    with anyio.fail_after(_TIMEOUT):
        if case.name == KERNEL_NAMES["xeus-python"]:
            return  # documented: xeus-python loses the first request's error (docs/kernels.md)
        other = await shared_client.attach_session(kernel.kernel_id)
        outcome = {}

        async def first() -> None:
            outcome["first"] = await kernel.execute(case.fail_later)

        async def second() -> None:
            await anyio.sleep(0.8)
            outcome["second"] = await other.execute(case.streams)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                tg.start_soon(second)
        finally:
            await other.detach()
        assert outcome["first"].status is ExecutionStatus.ERROR
        expected = ExecutionStatus.ABORTED if case.aborts_queue else ExecutionStatus.OK
        assert outcome["second"].status is expected, outcome["second"].describe()


async def test_a_timeout_recovers_the_kernel(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await kernel.execute(case.sleep, timeout=2)
        assert result.status is ExecutionStatus.TIMED_OUT
        assert result.recovery in (Recovery.INTERRUPTED, Recovery.RESTARTED)
        assert (await kernel.execute(case.streams)).stdout == case.stdout


async def test_restart_loses_the_state(kernel: Session, case: KernelCase) -> None:
    with anyio.fail_after(_TIMEOUT):
        assert (await kernel.execute(case.set_x)).ok
        generation = kernel.generation
        await kernel.restart()
        assert kernel.generation > generation
        assert (await kernel.execute(case.show_x)).stdout == case.x_unset


async def test_kernel_death(shared_client: Client, case: KernelCase) -> None:
    # a kernel of its own: the module's kernel already died on interrupts (xeus, Deno),
    # and Jupyter Server stops restarting a kernel after 5 quick deaths in a row
    with anyio.fail_after(_TIMEOUT):
        async with shared_client.session(case.name) as kernel:
            generation = kernel.generation
            result = await kernel.execute(case.die)
            assert result.status is ExecutionStatus.KERNEL_DIED, result.describe()
            assert kernel.generation > generation
            restarted = await kernel.execute(case.streams)  # restarted by the server
            assert restarted.stdout == case.stdout
