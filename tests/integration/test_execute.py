"""Session.execute against a real ipykernel: streams, results, errors, rich outputs, state.

The tests share one kernel per backend (``shared_session``: a kernel start costs about a
second on a small machine), so they use names of their own and compare execution
counts relative to each other, never to absolute values.
"""

from __future__ import annotations

import base64

import anyio
import pytest

from jupyter_interp.protocol.result import ExecutionFailed, ExecutionStatus
from jupyter_interp.session import Session

from .shared_kernel import module_backend, shared_kernel  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

_TIMEOUT = 30


async def test_stdout_stderr_result_and_execution_count(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        first = await session.execute(
            "import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n6 * 7"
        )
        second = await session.execute("'second'")

    assert first.status is ExecutionStatus.OK
    assert first.ok
    assert first.stdout == "to out\n"
    assert first.stderr == "to err\n"
    assert first.result == "42"
    assert first.error is None
    assert first.execution_count is not None
    assert first.execution_count >= 1
    assert first.generation == 0
    assert first.stdout_size == len(b"to out\n")
    assert not first.truncated
    assert [o.kind for o in first.outputs] == ["execute_result"]
    assert second.execution_count == first.execution_count + 1
    assert second.result == "'second'"
    assert second.stdout == second.stderr == ""


async def test_a_statement_has_no_result(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute("statement_only = 1")

    assert result.ok
    assert result.result is None
    assert result.outputs == ()


async def test_store_history_false_leaves_the_count_alone(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        before = await session.execute("1")
        hidden = await session.execute("2", store_history=False)
        visible = await session.execute("3")

    assert hidden.ok
    assert hidden.result == "2"
    assert before.execution_count is not None
    assert visible.execution_count == before.execution_count + 1


async def test_user_expressions_are_evaluated_after_the_code(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute("twenty = 20", user_expressions={"double": "twenty * 2"})

    double = result.user_expressions["double"]
    assert double["status"] == "ok"
    assert double["data"]["text/plain"] == "40"


async def test_unicode_text_survives_both_ways(session: Session) -> None:
    text = "héllo wörld ✓ 中文 🌍"
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute(f"print({text!r}); len({text!r})")

    assert result.stdout == text + "\n"
    assert result.result == str(len(text))


async def test_error_is_data_with_ansi_stripped_and_raw_kept(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute("print('before')\ndef boom():\n    1 / 0\nboom()")

    assert result.status is ExecutionStatus.ERROR
    assert not result.ok
    assert result.stdout == "before\n"
    assert result.execution_count is not None
    assert result.error is not None
    assert result.error.ename == "ZeroDivisionError"
    assert result.error.evalue == "division by zero"
    assert result.error.summary() == "ZeroDivisionError: division by zero"
    traceback = "\n".join(result.error.traceback)
    raw = "\n".join(result.error.raw_traceback)
    assert "\x1b" not in traceback
    assert "\x1b[" in raw  # IPython colours its tracebacks
    assert "boom" in traceback
    assert "ZeroDivisionError" in traceback
    assert len(result.error.traceback) == len(result.error.raw_traceback)
    with pytest.raises(ExecutionFailed) as caught:
        result.raise_for_error()
    assert caught.value.result is result
    assert "ZeroDivisionError" in str(caught.value)


async def test_syntax_error_is_reported(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute("def broken(:\n    pass")

    assert result.status is ExecutionStatus.ERROR
    assert result.error is not None
    assert result.error.ename == "SyntaxError"


async def test_state_persists_between_executes(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        first = await session.execute("import math\ncounter = 40\ndef bump(n):\n    return n + 1")
        await session.execute("counter = bump(counter)")
        result = await session.execute("bump(counter), math.floor(2.5)")

    assert result.result == "(42, 2)"
    assert first.execution_count is not None
    assert result.execution_count == first.execution_count + 2


async def test_an_error_does_not_lose_state(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        await session.execute("kept = 'yes'")
        failed = await session.execute("raise ValueError('nope')")
        after = await session.execute("kept")

    assert failed.status is ExecutionStatus.ERROR
    assert after.result == "'yes'"


async def test_png_and_html_land_in_outputs(session: Session, tiny_png: bytes) -> None:
    code = (
        "from IPython.display import HTML, Image, display\n"
        f"display(Image(data={tiny_png!r}, format='png'))\n"
        "display(HTML('<b>bold</b>'))\n"
    )
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute(code)

    assert result.ok
    assert result.result is None
    assert [o.kind for o in result.outputs] == ["display_data", "display_data"]
    image, html = result.outputs
    assert base64.b64decode(image.data["image/png"]) == tiny_png
    assert html.data["text/html"] == "<b>bold</b>"
    assert "text/plain" in html.data


async def test_rich_execute_result_keeps_every_mime_type(session: Session) -> None:
    code = (
        "class Table:\n"
        "    def _repr_html_(self):\n"
        "        return '<table><tr><td>1</td></tr></table>'\n"
        "    def __repr__(self):\n"
        "        return 'Table(1)'\n"
        "Table()"
    )
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute(code)

    assert result.result == "Table(1)"
    (output,) = result.outputs
    assert output.kind == "execute_result"
    assert output.data["text/html"] == "<table><tr><td>1</td></tr></table>"


async def test_clear_output_drops_earlier_outputs_but_keeps_streams(session: Session) -> None:
    code = (
        "from IPython.display import HTML, clear_output, display\n"
        "print('log line')\n"
        "display(HTML('old'))\n"
        "clear_output()\n"
        "display(HTML('new'))\n"
    )
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute(code)

    assert [o.data["text/html"] for o in result.outputs] == ["new"]
    assert result.stdout == "log line\n"


async def test_clear_output_wait_clears_when_the_next_output_arrives(session: Session) -> None:
    code = (
        "from IPython.display import HTML, clear_output, display\n"
        "display(HTML('first'))\n"
        "clear_output(wait=True)\n"
        "display(HTML('second'))\n"
        "clear_output(wait=True)\n"
    )
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute(code)

    # the second wait=True clear has nothing after it: 'second' stays
    assert [o.data["text/html"] for o in result.outputs] == ["second"]


async def test_update_display_replaces_the_bundle_in_place(session: Session) -> None:
    code = (
        "from IPython.display import HTML, display\n"
        "progress = display(HTML('0%'), display_id=True)\n"
        "display(HTML('other'))\n"
        "progress.update(HTML('50%'))\n"
        "progress.update(HTML('100%'))\n"
    )
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute(code)

    assert [o.data["text/html"] for o in result.outputs] == ["100%", "other"]
    first, other = result.outputs
    assert first.display_id is not None
    assert other.display_id is None


async def test_a_long_output_is_complete(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute("for i in range(2000):\n    print(i)")

    assert result.ok
    assert result.stdout == "".join(f"{i}\n" for i in range(2000))
