"""Notebook export from a real session: valid v4, only the user's code, and re-runnable.

The session runs through the blocking API, so ``nbclient`` (which runs its own event
loop) re-executes the exported notebook in the test's thread. One run of the CLI's
``--notebook`` on the shared server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat

from jupyter_interp import blocking

from .conftest import TEST_CLIENT_SETTINGS
from .servers import RunningServer

_CELLS = [
    "print('hello')\n21 * 2",
    "from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))",
    "import sys\nprint('to err', file=sys.stderr)\nprint('to out')",
    "1 / 0",
]


def _read(path: Path) -> nbformat.NotebookNode:
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return notebook


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(
        o["text"] for o in cell["outputs"] if o["output_type"] == "stream" and o["name"] == "stdout"
    )


def test_a_session_exports_a_valid_notebook_that_reruns_the_same(
    jupyter_server: RunningServer, tmp_path: Path
) -> None:
    with (
        blocking.Client(
            jupyter_server.url, token=jupyter_server.token, **TEST_CLIENT_SETTINGS
        ) as client,
        client.session("python3", file_root=str(tmp_path)) as session,
    ):
        session.execute(_CELLS[0])
        session.upload("not-a-cell.txt", b"file transfers are no cells")
        assert session.download("not-a-cell.txt")
        for code in _CELLS[1:3]:
            session.execute(code)
        assert list(session.stream(_CELLS[3]))[-1] is not None
        session.save_notebook(tmp_path / "run.ipynb")

    notebook = _read(tmp_path / "run.ipynb")
    nbformat.validate(notebook)
    assert [cell.source for cell in notebook.cells] == _CELLS
    assert [cell.execution_count for cell in notebook.cells] == [1, 2, 3, 4]
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.metadata.language_info.name == "python"
    first, display, streams, error = notebook.cells
    assert [o.output_type for o in first.outputs] == ["stream", "execute_result"]
    assert first.outputs[1].data["text/plain"] == "42"
    assert display.outputs[0].output_type == "display_data"
    assert display.outputs[0].data["text/html"] == "<b>bold</b>"
    assert {o.name: o.text for o in streams.outputs} == {"stdout": "to out\n", "stderr": "to err\n"}
    assert error.outputs[-1].ename == "ZeroDivisionError"
    assert error.metadata.jupyter_interp.status == "error"

    rerun = _read(tmp_path / "run.ipynb")
    nbclient.NotebookClient(rerun, timeout=120, kernel_name="python3", allow_errors=True).execute()
    assert [_stdout(cell) for cell in rerun.cells] == [_stdout(cell) for cell in notebook.cells]


def test_the_cli_saves_its_run_as_a_notebook(jupyter_server: RunningServer, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "jupyter_interp.cli", "exec",
            "--url", jupyter_server.url, "--token", jupyter_server.token,
            "--notebook", str(tmp_path / "cli.ipynb"), "print('from the cli')",
        ],
        capture_output=True, text=True, cwd=tmp_path, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    notebook = _read(tmp_path / "cli.ipynb")
    nbformat.validate(notebook)
    assert [cell.source for cell in notebook.cells] == ["print('from the cli')"]
    assert notebook.cells[0].outputs[0].text == "from the cli\n"
