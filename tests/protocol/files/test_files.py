"""File-transfer snippet builders: confinement, argument checks, rendering, and what
Python snippets leave behind in a real in-process IPython shell.

Each generated snippet runs in an ``InteractiveShell`` (``store_history=False``, as the
I/O layer runs it) with IPython's output capture; the captured display outputs pass
through JSON (as on the wire) into an ``ExecutionResult``. What every language's
snippets do to files is ``test_files_languages``; the reply parsers ``test_replies``.
"""

from __future__ import annotations

import ast
import json
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_interp.errors import (
    LocalProtocolError,
    PathNotConfined,
    RemoteFileNotFound,
    UnsupportedKernel,
)
from jupyter_interp.protocol.files import (
    CHUNK_SIZE,
    FileOperation,
    FileSnippets,
    confine,
    snippets_for,
)
from jupyter_interp.protocol.files.python import PythonFileSnippets
from jupyter_interp.protocol.files.replies import (
    FileStat,
)
from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.result import ErrorInfo, ExecutionResult, ExecutionStatus, RichOutput

from .snippet_runners import SHA_OF_NOTHING, download, upload

WEIRD_NAME = "we\"ird 'name' ü 😀 \u2028 tab\t.txt"


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    with tempfile.TemporaryDirectory() as ipython_dir, pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", ipython_dir)
        config = Config()
        config.HistoryManager.enabled = False
        yield InteractiveShell.instance(config=config)


def run(shell: InteractiveShell, code: str) -> ExecutionResult:
    """Run ``code`` as the I/O layer would and build the ExecutionResult it would see."""
    with capture_output() as captured:
        outcome = shell.run_cell(code, store_history=False, silent=False)  # type: ignore[no-untyped-call]
    assert outcome.result is None  # the snippet ends with a statement: no execute_result
    outputs = tuple(
        RichOutput(kind="display_data", data=json.loads(json.dumps(out.data)))
        for out in captured.outputs
    )
    exc = outcome.error_in_exec or outcome.error_before_exec
    error = None if exc is None else ErrorInfo(ename=type(exc).__name__, evalue=str(exc))
    if error is None:
        assert captured.stdout == captured.stderr == ""
    return ExecutionResult(
        msg_id="m",
        status=ExecutionStatus.OK if error is None else ExecutionStatus.ERROR,
        stdout=captured.stdout,
        outputs=outputs,
        error=error,
    )


# --- confine -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.txt", "a.txt"),
        ("./a/./b/", "a/b"),
        ("a//b", "a/b"),
        ("dir with spaces/ü 😀.txt", "dir with spaces/ü 😀.txt"),
        ("...", "..."),
        ("..a/b..", "..a/b.."),
    ],
)
def test_confine_normalises(path: str, expected: str) -> None:
    assert confine(path) == expected


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "names no file"),
        (".", "names no file"),
        ("./", "names no file"),
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("../x", "'..'"),
        ("a/../b", "'..'"),
        ("a/..", "'..'"),
        ("a\x00b", "NUL"),
        ("a\\b", "backslash"),
        ("..\\x", "backslash"),
        ("a\udcffb", "Unicode"),
    ],
)
def test_confine_rejects(path: str, why: str) -> None:
    with pytest.raises(PathNotConfined, match=why) as info:
        confine(path)
    assert isinstance(info.value, ValueError)


def test_confine_root_only_when_allowed() -> None:
    assert confine("", allow_root=True) == ""
    assert confine("./.", allow_root=True) == ""
    with pytest.raises(PathNotConfined):
        confine("..", allow_root=True)


def test_confine_rejects_non_text() -> None:
    with pytest.raises(LocalProtocolError, match="str"):
        confine(b"a")  # type: ignore[arg-type]


# --- builders --------------------------------------------------------------------------


def test_snippets_for_python_and_unsupported_languages() -> None:
    snippets = snippets_for(" Python ", root="/tmp/x")
    assert isinstance(snippets, PythonFileSnippets)
    assert snippets.root == "/tmp/x"
    with pytest.raises(UnsupportedKernel, match=r"'typescript'.*supported: bash, python, r"):
        snippets_for("typescript", root="")


@pytest.mark.parametrize("root", ["/a\x00b", "/a\udcff", 3])
def test_bad_root_is_refused(root: Any) -> None:
    with pytest.raises(LocalProtocolError, match="root"):
        snippets_for("python", root=root)


def test_file_snippets_is_abstract() -> None:
    with pytest.raises(TypeError):
        FileSnippets(root="")  # type: ignore[abstract]


@pytest.mark.parametrize(
    "build",
    [
        lambda s: s.upload_chunk("a", "bad id!", 0, b""),
        lambda s: s.upload_chunk("a", "x" * 65, 0, b""),
        lambda s: s.upload_chunk("a", 7, 0, b""),
        lambda s: s.upload_chunk("a", "t", -1, b""),
        lambda s: s.upload_chunk("a", "t", True, b""),
        lambda s: s.upload_chunk("a", "t", 0, bytes(CHUNK_SIZE + 1)),
        lambda s: s.upload_commit("a", "t", -1, SHA_OF_NOTHING),
        lambda s: s.upload_commit("a", "t", 0, "ab"),
        lambda s: s.upload_commit("a", "t", 0, None),
        lambda s: s.upload_abort("a", ""),
        lambda s: s.read_chunk("a", -1, 1),
        lambda s: s.read_chunk("a", 0, 0),
        lambda s: s.read_chunk("a", 0, CHUNK_SIZE + 1),
        lambda s: s.delete("a", recursive="yes"),
    ],
)
def test_builders_validate_arguments(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build(PythonFileSnippets(root=""))


@pytest.mark.parametrize("path", ["/abs", "../up", "a/../../b", "nul\x00", ""])
def test_every_builder_confines_client_side(path: str) -> None:
    s = PythonFileSnippets(root="")
    builders: list[Callable[[], object]] = [
        lambda: s.upload_chunk(path, "t", 0, b"x"),
        lambda: s.upload_commit(path, "t", 1, SHA_OF_NOTHING),
        lambda: s.upload_abort(path, "t"),
        lambda: s.stat(path),
        lambda: s.read_chunk(path, 0, 1),
        lambda: s.delete(path),
    ]
    if path:
        builders.append(lambda: s.list_dir(path))
    for build in builders:
        with pytest.raises(PathNotConfined):
            build()


def test_snippet_is_ascii_ends_with_a_statement_and_fits_a_frame() -> None:
    s = PythonFileSnippets(root="/tmp/sessions/ü😀")
    code = s.upload_chunk(WEIRD_NAME, "t", 0, bytes(range(256)) * (CHUNK_SIZE // 256))
    assert code.isascii()
    assert isinstance(ast.parse(code).body[-1], ast.Try)
    factory = MessageFactory(session="s", new_id=lambda: "i", clock=lambda: _epoch())
    frame = json.dumps(factory.execute_request(code, store_history=False).to_wire())
    assert len(frame.encode()) < 6 * 1024 * 1024  # far below the 10 MiB frame limit


def _epoch() -> Any:
    from datetime import datetime, timezone

    return datetime(2020, 1, 1, tzinfo=timezone.utc)


@given(st.text(min_size=1))
def test_embedded_strings_survive_as_python_literals(text: str) -> None:
    code = PythonFileSnippets(root=text.replace("\x00", "")).list_dir()
    call = ast.parse(code).body[-1]
    assert isinstance(call, ast.Try)
    expr = call.body[0]
    assert isinstance(expr, ast.Expr)
    assert isinstance(expr.value, ast.Call)
    assert ast.literal_eval(expr.value.args[1]) == text.replace("\x00", "")


# --- in a real IPython shell ---------- ------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "sessions" / "abc"  # does not exist yet: uploads create it


@pytest.fixture
def snippets(root: Path) -> FileSnippets:
    return snippets_for("python", root=str(root))


def test_snippets_leave_no_names_and_no_history(
    shell: InteractiveShell, snippets: FileSnippets
) -> None:
    before, count = set(shell.user_ns), shell.execution_count
    upload(partial(run, shell), snippets, "a", b"abc", 2)
    download(partial(run, shell), snippets, "a", 2)
    with pytest.raises(RemoteFileNotFound):
        FileStat.from_reply(run(shell, snippets.stat("missing")))
    run(shell, snippets.list_dir())
    run(shell, snippets.delete("a"))
    assert set(shell.user_ns) == before
    assert shell.execution_count == count


# --- rendering ---------------------------------------------------------------------------


def test_render_receives_operation_and_checked_arguments() -> None:
    seen: list[tuple[FileOperation, dict[str, Any]]] = []

    class Recorder(FileSnippets):
        def render(self, operation: FileOperation, arguments: Any) -> str:
            seen.append((operation, dict(arguments)))
            return "code"

    recorder = Recorder(root="/r")
    assert recorder.list_dir("./a/") == "code"
    recorder.delete("b", recursive=True)
    recorder.upload_commit("c", "t", 0, SHA_OF_NOTHING.upper())
    assert seen == [
        (FileOperation.LIST_DIR, {"path": "a"}),
        (FileOperation.DELETE, {"path": "b", "recursive": True}),
        (
            FileOperation.UPLOAD_COMMIT,
            {"path": "c", "transfer_id": "t", "size": 0, "sha256": SHA_OF_NOTHING},
        ),
    ]
