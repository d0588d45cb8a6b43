"""What the gateway provider hands back, without a Jupyter server: execute results,
history entries, rich outputs as files, language refusals and the errors it raises.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_interp.errors import JupyterInterpError, RemoteFileNotFound
from jupyter_interp.protocol.result import (
    ErrorInfo,
    ExecutionResult,
    ExecutionStatus,
    Recovery,
    RichOutput,
)
from jupyter_interp.provider import HealthProblem, SessionFileNotFound, SessionNotFound
from jupyter_interp.provider.outputs import SavedOutput, output_files
from jupyter_interp.provider.results import execution_dict, history_entry, language_refusal

from .offline import no_seed_environment  # noqa: F401 (an autouse fixture)

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


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
