"""The gateway provider without a Jupyter server: configuration, ids, dict shapes, errors,
the session directory (on ``httpx.MockTransport``) and the runtime's lifecycle.

Async tests run on asyncio and trio; the only servers they meet are a refused port on
127.0.0.1 and in-memory HTTP handlers.
"""

from __future__ import annotations

import abc
import json
import logging
import socket
import subprocess
import sys
import threading
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from jupyter_interp.errors import (
    ConnectError,
    JupyterInterpError,
    LocalProtocolError,
    RemoteFileNotFound,
)
from jupyter_interp.io.http import HttpTransport
from jupyter_interp.protocol.result import (
    ErrorInfo,
    ExecutionResult,
    ExecutionStatus,
    Recovery,
    RichOutput,
)
from jupyter_interp.provider import (
    HealthProblem,
    JupyterCodeInterpreterProvider,
    SessionFileNotFound,
    SessionNotFound,
)
from jupyter_interp.provider.directory import SessionDirectory, SessionMeta
from jupyter_interp.provider.outputs import SavedOutput, output_files
from jupyter_interp.provider.results import execution_dict, history_entry, language_refusal
from jupyter_interp.provider.runtime import Claims

SEED_ENV = ("JUPYTER_URL", "JUPYTER_TOKEN", "JUPYTER_KERNEL", "JUPYTER_FILE_ROOT")
GATEWAY_BASE = "agentic_primitives_gateway.primitives.code_interpreter.base"
KID = "0b8e3f5c-2f35-4a4e-9a36-2a4c2f7f6b1e"
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(autouse=True)
def no_seed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SEED_ENV:
        monkeypatch.delenv(name, raising=False)


def refused_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# -- configuration ------------------------------------------------------------------------


def test_seed_defaults() -> None:
    settings = JupyterCodeInterpreterProvider().settings

    assert settings.base_url == "http://localhost:8888"
    assert settings.token == ""
    assert settings.kernel_name == "python3"
    assert settings.execution_timeout == 30.0
    assert settings.file_root == "/tmp"
    assert settings.max_output_bytes == 64 * 1024
    assert settings.history_limit == 100
    assert settings.cleanup_files is True
    assert settings.stop_sessions_on_close is False
    assert settings.client_config().start_env() == {"KERNEL_LAUNCH_TIMEOUT": "120"}


def test_the_environment_fills_in_missing_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_URL", "http://jupyter.internal:9999")
    monkeypatch.setenv("JUPYTER_TOKEN", "env-token")
    monkeypatch.setenv("JUPYTER_KERNEL", "ir")
    monkeypatch.setenv("JUPYTER_FILE_ROOT", "/data")

    from_env = JupyterCodeInterpreterProvider().settings
    given_url = JupyterCodeInterpreterProvider(base_url="http://given:1").settings

    assert (from_env.base_url, from_env.token, from_env.kernel_name, from_env.file_root) == (
        "http://jupyter.internal:9999",
        "env-token",
        "ir",
        "/data",
    )
    assert given_url.base_url == "http://given:1"
    assert given_url.token == "env-token"


def test_blank_keywords_fall_back_but_a_blank_token_means_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUPYTER_URL", "http://from-env:8888")
    monkeypatch.setenv("JUPYTER_TOKEN", "env-token")

    settings = JupyterCodeInterpreterProvider(
        base_url="", token="", kernel_name="", file_root=""
    ).settings

    assert settings.base_url == "http://from-env:8888"
    assert settings.token == ""
    assert settings.kernel_name == "python3"
    assert settings.file_root == "/tmp"


def test_string_values_from_yaml_are_parsed() -> None:
    provider = JupyterCodeInterpreterProvider(
        execution_timeout="12.5",
        launch_timeout="90",
        request_timeout="7",
        healthcheck_timeout="2",
        max_output_bytes="none",
        history_limit="7",
        cleanup_files="false",
        stop_sessions_on_close="yes",
        verify="false",
        kernel_env='{"KERNEL_NAMESPACE": "agents"}',
        headers='{"X-Team": "blue"}',
        kernel_username="alice",
        stdin_answer="",
    )
    settings = provider.settings
    config = settings.client_config()

    assert settings.execution_timeout == 12.5
    assert settings.history_limit == 7
    assert settings.cleanup_files is False
    assert settings.stop_sessions_on_close is True
    assert config.verify is False
    assert config.request_timeout == 7.0
    assert config.output_budget.max_stream_bytes is None
    assert config.stdin.answer == ""
    assert config.headers == {"X-Team": "blue"}
    assert config.start_env() == {
        "KERNEL_LAUNCH_TIMEOUT": "90",
        "KERNEL_USERNAME": "alice",
        "KERNEL_NAMESPACE": "agents",
    }


def test_native_values_work_too() -> None:
    settings = JupyterCodeInterpreterProvider(
        execution_timeout=5, max_output_bytes=10, kernel_env={"KERNEL_UID": "1000"}, verify=True
    ).settings

    assert settings.execution_timeout == 5.0
    assert settings.max_output_bytes == 10
    assert settings.kernel_env == {"KERNEL_UID": "1000"}
    assert settings.verify is True


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("execution_timeout", "soon"),
        ("execution_timeout", "-1"),
        ("execution_timeout", "inf"),
        ("execution_timeout", True),
        ("launch_timeout", "0"),
        ("history_limit", "0"),
        ("history_limit", "1.5"),
        ("max_output_bytes", "-5"),
        ("cleanup_files", "maybe"),
        ("kernel_env", "[1]"),
        ("kernel_env", '{"KERNEL_UID": 1000}'),
        ("headers", "not json"),
        ("headers", '{"Origin": "http://evil"}'),
        ("base_url", "ftp://files.example"),
        ("base_url", 8888),
        ("file_root", "   "),
        ("verify", "maybe"),
        ("verify", "/nope/ca.pem"),
    ],
)
def test_bad_values_fail_at_construction(keyword: str, value: object) -> None:
    keywords: dict[str, Any] = {keyword: value}
    with pytest.raises(LocalProtocolError):
        JupyterCodeInterpreterProvider(**keywords)


def test_unknown_keywords_are_logged_by_name_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jupyter_interp.provider"):
        JupyterCodeInterpreterProvider(zz_future_option="hunter2", aa_other=1)

    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["ignoring unknown configuration keys: aa_other, zz_future_option"]
    assert "hunter2" not in caplog.text


def test_the_token_stays_out_of_reprs() -> None:
    provider = JupyterCodeInterpreterProvider(token="very-secret-token")

    assert "very-secret-token" not in repr(provider)
    assert "very-secret-token" not in repr(provider.settings)
    assert provider.settings.client_config().token == "very-secret-token"


def test_construction_does_no_io_and_starts_nothing() -> None:
    threads = threading.active_count()
    provider = JupyterCodeInterpreterProvider(base_url=refused_url())  # no loop running here

    assert threading.active_count() == threads
    assert provider.settings.base_url.startswith("http://127.0.0.1:")


# -- the gateway's type check --------------------------------------------------------------


class _StandIn(abc.ABC):
    @abc.abstractmethod
    async def start_session(self, session_id: str | None = None) -> dict[str, Any]: ...


def test_instances_pass_the_gateway_check_when_it_is_importable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType(GATEWAY_BASE)
    module.CodeInterpreterProvider = _StandIn  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, GATEWAY_BASE, module)

    provider = JupyterCodeInterpreterProvider()

    assert isinstance(provider, _StandIn)


def test_the_module_registers_itself_at_import(tmp_path: Path) -> None:
    package = tmp_path / "agentic_primitives_gateway" / "primitives" / "code_interpreter"
    package.mkdir(parents=True)
    for folder in (package, package.parent, package.parent.parent):
        (folder / "__init__.py").write_text("")
    (package / "base.py").write_text(
        "import abc\n"
        "class CodeInterpreterProvider(abc.ABC):\n"
        "    @abc.abstractmethod\n"
        "    async def execute(self, session_id, code, language='python'): ...\n"
    )
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from jupyter_interp.provider import JupyterCodeInterpreterProvider as P\n"
        "from agentic_primitives_gateway.primitives.code_interpreter.base import "
        "CodeInterpreterProvider as B\n"
        "print(issubclass(P, B), 'agentic_primitives_gateway' in sys.modules)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert ran.stdout.split() == ["True", "True"]


# -- errors ---------------------------------------------------------------------------------


def test_an_unknown_session_is_a_key_and_a_value_error_with_a_readable_str() -> None:
    error = SessionNotFound("run-7")

    assert isinstance(error, KeyError)
    assert isinstance(error, ValueError)
    assert isinstance(error, JupyterInterpError)
    assert str(error) == "session 'run-7' not found (never started, stopped or gone)"
    assert error.session_id == "run-7"


def test_a_missing_file_is_a_value_error_and_a_file_not_found_error() -> None:
    error = SessionFileNotFound("no file 'x' in session 's'")

    assert isinstance(error, ValueError)
    assert isinstance(error, FileNotFoundError)
    assert isinstance(error, RemoteFileNotFound)


def test_a_health_problem_is_a_falsy_message() -> None:
    problem = HealthProblem("the server is down")
    report = {"code_interpreter/jupyter": problem, "memory/noop": True}

    assert not problem
    assert problem == "the server is down"
    assert json.dumps(report) == (
        '{"code_interpreter/jupyter": "the server is down", "memory/noop": true}'
    )
    assert not all(report.values())  # what the gateway's readiness check computes


# -- execute results ------------------------------------------------------------------------


def result(**fields: Any) -> ExecutionResult:
    fields.setdefault("status", ExecutionStatus.OK)
    return ExecutionResult(msg_id="m1", **fields)


def test_a_success_has_exactly_the_seed_keys_and_status() -> None:
    outcome = execution_dict("s", result(stdout="3.14\n", result="42"), cap=100)

    assert outcome == {
        "session_id": "s",
        "stdout": "3.14\n",
        "stderr": "",
        "exit_code": 0,
        "result": "42",
        "error": None,
        "status": "ok",
    }


def test_an_error_carries_its_traceback_in_stderr_and_a_short_error() -> None:
    error = ErrorInfo(ename="ZeroDivisionError", evalue="division by zero", traceback=("a", "b"))
    outcome = execution_dict(
        "s", result(status=ExecutionStatus.ERROR, stderr="warning", error=error), cap=100
    )

    assert outcome["exit_code"] == 1
    assert outcome["error"] == "ZeroDivisionError: division by zero"
    assert outcome["stderr"] == "warning\na\nb"
    assert outcome["status"] == "error"


@pytest.mark.parametrize(
    ("fields", "exit_code", "phrases"),
    [
        (
            {
                "status": ExecutionStatus.TIMED_OUT,
                "recovery": Recovery.INTERRUPTED,
                "detail": "the execution exceeded its 30 s deadline; the kernel was interrupted",
            },
            124,
            ["timed out", "30 s deadline", "interrupted"],
        ),
        (
            {"status": ExecutionStatus.TIMED_OUT, "recovery": Recovery.RESTARTED},
            124,
            ["timed out", "state (variables, imports) was lost"],
        ),
        ({"status": ExecutionStatus.KERNEL_DIED}, 1, ["kernel died", "was lost"]),
        ({"output_dropped": True}, 1, ["dropped some output"]),
        ({"status": ExecutionStatus.INPUT_REQUIRED, "detail": "asked"}, 1, ["input required"]),
    ],
)
def test_failures_are_never_a_silent_zero(
    fields: dict[str, Any], exit_code: int, phrases: list[str]
) -> None:
    outcome = execution_dict("s", result(**fields), cap=100)

    assert outcome["exit_code"] == exit_code
    for phrase in phrases:
        assert phrase in outcome["error"]


def test_truncation_keeps_exit_zero_but_says_so() -> None:
    cut = result(stdout="head\n[... omitted ...]\ntail", stdout_truncated=True, stdout_size=10**6)
    outcome = execution_dict("s", cut, cap=1000)

    assert outcome["exit_code"] == 0
    assert outcome["truncated"] is True
    assert outcome["error"] == (
        "output truncated (stdout kept 1000 of 1000000 bytes); the middle was omitted"
    )


def test_long_tracebacks_and_errors_are_capped() -> None:
    error = ErrorInfo(ename="RecursionError", evalue="x" * 5000, traceback=("frame",) * 1000)
    outcome = execution_dict("s", result(status=ExecutionStatus.ERROR, error=error), cap=200)

    assert len(outcome["stderr"].encode()) < 300
    assert "omitted" in outcome["stderr"]
    assert len(outcome["error"]) == 500
    assert outcome["error"].endswith("...")
    assert outcome["truncated"] is True


def test_displays_become_the_result_and_rich_outputs_become_file_references() -> None:
    outputs = (
        RichOutput(kind="display_data", data={"text/plain": "   a  b\n0  1  2"}),
        RichOutput(
            kind="display_data",
            data={"image/png": PNG_B64, "text/plain": "<IPython.core.display.Image object>"},
        ),
        RichOutput(kind="display_data", data={"image/svg+xml": ["<svg>", "</svg>"]}),
        RichOutput(kind="display_data", data={"image/jpeg": "a"}),  # bad base64: skipped
        RichOutput(kind="display_data", data={"text/markdown": "# Title", "text/plain": "T"}),
        RichOutput(kind="display_data", data={"application/json": {"a": [1]}}),
        RichOutput(kind="execute_result", data={"text/html": "<table/>", "text/plain": "df"}),
    )
    drawn = result(outputs=outputs, execution_count=3)
    saved = [SavedOutput(name="output-3-1.png", mime_type="image/png", size=70)]
    outcome = execution_dict("s", drawn, cap=100, saved=saved)
    quiet = execution_dict("s", drawn, cap=100, saved=saved, notes=False)
    files = list(output_files(drawn))

    assert outcome["display"] == "   a  b\n0  1  2\n# Title"
    assert outcome["result"] == outcome["display"]  # no expression value: the displays
    assert outcome["files"] == ["output-3-1.png"]
    assert outcome["outputs"] == [{"file": "output-3-1.png", "mime_type": "image/png", "size": 70}]
    assert outcome["stdout"] == (
        "[jupyter-interp] displayed:\n   a  b\n0  1  2\n# Title\n"
        "[jupyter-interp] 1 rich output saved as files in this session: output-3-1.png "
        "(image/png, 70 bytes). Download each by name from the session's files.\n"
    )
    assert quiet["stdout"] == ""
    assert PNG_B64[:20] not in json.dumps(outcome)
    assert [(f.mime_type, f.extension) for f in files] == [
        ("image/png", "png"),
        ("image/svg+xml", "svg"),
        ("text/markdown", "md"),
        ("application/json", "json"),
    ]
    assert files[0].data.startswith(b"\x89PNG")
    assert files[1].data == b"<svg></svg>"
    assert json.loads(files[3].data) == {"a": [1]}


def test_an_expression_value_stays_the_result_beside_displays() -> None:
    shown = (RichOutput(kind="display_data", data={"text/plain": "shown"}),)
    outcome = execution_dict("s", result(outputs=shown, result="42"), cap=100)

    assert outcome["result"] == "42"
    assert outcome["display"] == "shown"


def test_the_history_keeps_errors_where_the_gateway_keeps_them() -> None:
    timed_out = execution_dict(
        "s", result(status=ExecutionStatus.TIMED_OUT, stdout="begun\n"), cap=None
    )
    error = ErrorInfo(ename="ZeroDivisionError", evalue="division by zero", traceback=("tb",))
    raised = execution_dict(
        "s", result(status=ExecutionStatus.ERROR, error=error, stderr="ZeroDivisionError: "
        "division by zero\n"), cap=None,
    )  # fmt: skip

    late = history_entry("sleep()", "python", timed_out)
    failed = history_entry("1/0", "python", raised)

    assert late["stderr"] == f"[jupyter-interp] {timed_out['error']}\n"
    assert failed["stderr"] == raised["stderr"]  # the traceback already says it


def test_a_ca_bundle_that_cannot_be_loaded_is_named_at_construction(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")

    with pytest.raises(LocalProtocolError, match=r"/nope/ca\.pem"):
        JupyterCodeInterpreterProvider(base_url="http://127.0.0.1:9/", verify="/nope/ca.pem")
    with pytest.raises(LocalProtocolError, match=r"ca\.pem"):
        JupyterCodeInterpreterProvider(verify=str(garbage))
    assert JupyterCodeInterpreterProvider(verify=str(tmp_path)).settings.verify == str(tmp_path)


def test_html_displays_give_the_model_their_text_not_an_object_repr() -> None:
    html = "<h1>Sales</h1><table><tr><th>q</th><th>n</th></tr><tr><td>1</td><td>5</td></tr>"
    outputs = (
        RichOutput(
            kind="display_data",
            data={
                "text/html": html + "<script>track()</script><style>h1 {}</style>",
                "text/plain": "<IPython.core.display.HTML object>",
            },
        ),
        RichOutput(
            kind="display_data",
            data={
                "text/markdown": "**bold**",
                "text/plain": "<IPython.core.display.Markdown object>",
            },
        ),
        RichOutput(kind="display_data", data={"text/html": "<b>x</b>", "text/plain": "df"}),
    )
    outcome = execution_dict("s", result(outputs=outputs), cap=1000)

    assert outcome["display"] == "Sales\nq n\n1 5\n**bold**\ndf"


@pytest.mark.parametrize(
    ("asked", "spoken", "runs"),
    [
        ("python", "python", True),
        ("Python3", "python", True),
        ("", "bash", True),
        ("python", "bash", True),  # the contract's default: the caller named none
        ("bash", "python", False),
        ("r", "python", False),
        ("bash", "", True),  # a kernel that did not say its language
    ],
)
def test_code_in_another_language_is_refused_as_data(asked: str, spoken: str, runs: bool) -> None:
    refused = language_refusal("s", asked, spoken)

    assert (refused is None) is runs
    if refused is not None:
        assert refused["exit_code"] == 1
        assert refused["status"] == "language_mismatch"
        assert f"runs {spoken}, not {asked}" in refused["error"]


def test_a_history_entry_has_the_contract_keys() -> None:
    outcome = execution_dict("s", result(stdout="1\n"), cap=None)
    entry = history_entry("print(1)", "python", outcome)

    assert set(entry) == {
        "timestamp",
        "code",
        "language",
        "stdout",
        "stderr",
        "exit_code",
        "result",
        "error",
    }
    assert entry["code"] == "print(1)"
    assert entry["stdout"] == "1\n"
    assert entry["timestamp"].endswith("+00:00")


# -- the session directory -------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]
META = SessionMeta(
    session_id="run-1",
    kernel_id=KID,
    kernel_name="python3",
    language="python",
    created_at="2026-01-01T00:00:00+00:00",
)


def record_row(meta: SessionMeta, **changes: Any) -> dict[str, Any]:
    name = {"session_id": meta.session_id, "created_at": meta.created_at, "language": "python"}
    row: dict[str, Any] = {
        "id": "s-1",
        "path": f"jupyter-interp/{meta.kernel_id}",
        "type": "jupyter-interp",
        "name": json.dumps(name),
        "kernel": {"id": meta.kernel_id, "name": "python3", "execution_state": "idle"},
    }
    row.update(changes)
    return row


def directory_on(handler: Handler, seen: list[httpx.Request]) -> SessionDirectory:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return SessionDirectory(HttpTransport("http://jupyter.test/", client=client, retries=0))


def jupyter_server(routes: dict[tuple[str, str], httpx.Response]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        if key == ("GET", "/api/status"):
            return httpx.Response(200, json={"started": "2026-01-01T00:00:00Z"})
        return routes.get(key, httpx.Response(404, json={"message": "no"}))

    return handle


@pytest.mark.anyio
async def test_registering_keeps_the_first_record() -> None:
    older = {"session_id": "run-1", "created_at": "2025-12-31T00:00:00+00:00", "language": "py"}
    first = record_row(META, name=json.dumps(older))
    seen: list[httpx.Request] = []
    directory = directory_on(
        jupyter_server({("POST", "/api/sessions"): httpx.Response(201, json=first)}), seen
    )

    registered = await directory.register(META)

    assert registered.created_at == "2025-12-31T00:00:00+00:00"
    assert registered.language == "py"
    posted = json.loads(seen[-1].content)
    assert posted["path"] == f"jupyter-interp/{KID}"
    assert posted["type"] == "jupyter-interp"
    assert posted["kernel"] == {"id": KID}
    assert json.loads(posted["name"])["session_id"] == "run-1"


@pytest.mark.anyio
async def test_gateways_get_no_session_records() -> None:
    seen: list[httpx.Request] = []
    directory = directory_on(lambda request: httpx.Response(404, json={}), seen)

    registered = await directory.register(META)
    listed = await directory.list()

    assert registered == META
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/api/status"),
        ("GET", "/api/kernels"),
    ]
    assert listed is None


@pytest.mark.anyio
async def test_a_record_bound_to_another_kernel_is_deleted_at_once() -> None:
    stray = record_row(META, id="s-stray", kernel={"id": str(uuid.uuid4()), "name": "python3"})
    seen: list[httpx.Request] = []
    directory = directory_on(
        jupyter_server({("POST", "/api/sessions"): httpx.Response(201, json=stray)}), seen
    )

    registered = await directory.register(META)

    assert registered == META
    assert (seen[-1].method, seen[-1].url.path) == ("DELETE", "/api/sessions/s-stray")


@pytest.mark.anyio
async def test_listing_reads_our_records_and_skips_the_rest() -> None:
    rows = [
        record_row(META),
        record_row(META, type="notebook"),
        record_row(META, name="not json"),
        record_row(META, path="jupyter-interp/another"),
        {"unexpected": True},
        "junk",
    ]
    seen: list[httpx.Request] = []
    directory = directory_on(
        jupyter_server({("GET", "/api/sessions"): httpx.Response(200, json=rows)}), seen
    )

    listed = await directory.list()

    assert listed == [(META, "idle")]


@pytest.mark.anyio
async def test_a_gateway_that_lists_kernels_lists_them_as_sessions() -> None:
    kernels = [
        {"id": KID, "name": "python3", "execution_state": "busy"},
        {"id": "not-a-kernel-id", "name": "python3"},
    ]

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/kernels":
            return httpx.Response(200, json=kernels)
        return httpx.Response(404, json={})

    listed = await directory_on(gateway, []).list()

    assert listed == [
        (
            SessionMeta(
                session_id=KID, kernel_id=KID, kernel_name="python3", language="", created_at=""
            ),
            "busy",
        )
    ]


@pytest.mark.anyio
async def test_an_unreachable_server_degrades_quietly() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    directory = directory_on(refuse, [])

    assert await directory.register(META) == META
    assert await directory.list() is None
    assert not await directory.has_registry()


# -- the runtime -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_claims_serialise_one_key_and_forget_it_afterwards() -> None:
    claims = Claims()
    order: list[str] = []

    async def hold(key: str, name: str) -> None:
        async with claims.hold(key):
            order.append(f"{name}+")
            await anyio.sleep(0.05)
            order.append(f"{name}-")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold, "a", "first")
            await anyio.sleep(0.01)
            tg.start_soon(hold, "a", "second")
            tg.start_soon(hold, "b", "other")

    assert order.index("first-") < order.index("second+")
    assert order.index("other+") < order.index("first-")
    assert claims._locks == {}


@pytest.mark.anyio
async def test_without_a_server_calls_fail_cleanly_and_close_is_idempotent() -> None:
    provider = JupyterCodeInterpreterProvider(base_url=refused_url(), healthcheck_timeout="2")

    with anyio.fail_after(30):
        listed = await provider.list_sessions()
        stopped = await provider.list_sessions(status="stopped")
        with pytest.raises(ConnectError):
            await provider.start_session()
        with pytest.raises(KeyError):
            await provider.execute("", "1")
        problem = await provider.healthcheck()
        await provider.close()
        await provider.close()
        reopened = await provider.list_sessions()  # usable again after close
        await provider.close()

    assert listed == stopped == reopened == []
    assert isinstance(problem, HealthProblem)
    assert not problem
    assert "is unreachable" in problem


@pytest.mark.anyio
async def test_another_event_loop_is_refused_while_ours_runs(anyio_backend: str) -> None:
    provider = JupyterCodeInterpreterProvider(base_url=refused_url(), healthcheck_timeout="2")

    def on_another_loop(call: Callable[[], Any]) -> Any:
        async def main() -> Any:
            return await call()

        try:
            return anyio.run(main, backend=anyio_backend)
        except LocalProtocolError as exc:
            return exc

    with anyio.fail_after(30):
        await provider.list_sessions()  # the runtime now lives on this loop
        refused = await anyio.to_thread.run_sync(on_another_loop, provider.list_sessions)
        health = await anyio.to_thread.run_sync(on_another_loop, provider.healthcheck)
        await provider.close()

        async def use_and_close() -> Any:
            listed = await provider.list_sessions()
            await provider.close()
            return listed

        moved = await anyio.to_thread.run_sync(on_another_loop, use_and_close)

    assert isinstance(refused, LocalProtocolError)
    assert "another event loop" in str(refused)
    assert isinstance(health, HealthProblem)  # checks run anywhere (the gateway: a fresh loop)
    assert moved == []
