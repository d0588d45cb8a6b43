"""Run file snippets offline the way each kernel would, and build the ``ExecutionResult``.

* Python: an in-process IPython ``InteractiveShell`` with output capture.
* Bash: ``bash`` runs the code from a file (stdout and stderr merged, as bash_kernel's
  pseudo-terminal merges them); the output then goes through bash_kernel's own
  ``extract_contents``, which turns its "saved html data" lines into display data.
* R: one ``Rscript`` process per runner evaluates snippets in its global environment;
  ``jupyter.base_display_func`` (the hook IRdisplay publishes through) prints each MIME
  bundle serialised as IRkernel serialises it (``jsonlite::toJSON(auto_unbox = TRUE)``).

Every runner's working directory is ``workdir`` while a snippet runs. ``upload`` and
``download`` drive a whole transfer, chunk by chunk, through any ``run`` callable.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol

from bash_kernel.display import extract_contents  # type: ignore[import-untyped]
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_interp.protocol.files import CHUNK_SIZE, FileSnippets
from jupyter_interp.protocol.files.replies import ChunkStored, FileChunk, FileStat, UploadCommitted
from jupyter_interp.protocol.result import ErrorInfo, ExecutionResult, ExecutionStatus, RichOutput

__all__ = [
    "SHA_OF_NOTHING",
    "BashRunner",
    "PythonRunner",
    "RRunner",
    "Runner",
    "download",
    "runner_for",
    "upload",
]

SHA_OF_NOTHING = hashlib.sha256(b"").hexdigest()


class Runner(Protocol):
    language: str
    workdir: Path

    def run(self, code: str) -> ExecutionResult: ...


def _result(stdout: str, outputs: list[RichOutput], error: ErrorInfo | None) -> ExecutionResult:
    return ExecutionResult(
        msg_id="m",
        status=ExecutionStatus.OK if error is None else ExecutionStatus.ERROR,
        stdout=stdout,
        outputs=tuple(outputs),
        error=error,
    )


def _wire(data: object) -> dict[str, object]:
    """A MIME bundle as it arrives after a trip through JSON."""
    bundle = json.loads(json.dumps(data))
    assert isinstance(bundle, dict)
    return bundle


class PythonRunner:
    language = "python"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        config = Config()
        config.HistoryManager.enabled = False
        self.shell = InteractiveShell.instance(config=config)

    def run(self, code: str) -> ExecutionResult:
        before = os.getcwd()
        os.chdir(self.workdir)
        try:
            with capture_output() as captured:
                outcome = self.shell.run_cell(code, store_history=False, silent=False)  # type: ignore[no-untyped-call]
        finally:
            os.chdir(before)
        assert outcome.result is None  # a snippet ends with a statement: no execute_result
        exc = outcome.error_in_exec or outcome.error_before_exec
        error = None if exc is None else ErrorInfo(ename=type(exc).__name__, evalue=str(exc))
        if error is None:
            assert captured.stdout == captured.stderr == ""
        outputs = [RichOutput(kind="display_data", data=_wire(o.data)) for o in captured.outputs]
        return _result(captured.stdout, outputs, error)


class BashRunner:
    language = "bash"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def run(self, code: str, *, prelude: str = "", epilogue: str = "") -> ExecutionResult:
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as script:
            script.write(f"{prelude}\n{code}\n{epilogue}\n")
        try:
            completed = subprocess.run(
                ["bash", "--norc", "--noprofile", script.name],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=False,
            )
        finally:
            os.unlink(script.name)
        plain, rich = extract_contents(completed.stdout.decode("utf-8", "replace"))
        outputs = [RichOutput(kind="display_data", data=_wire(content["data"])) for content in rich]
        error = None
        if completed.returncode:
            error = ErrorInfo(ename="", evalue=str(completed.returncode))
        return _result(plain, outputs, error)


_R_SERVER = r"""
options(warn = 1)
options(jupyter.base_display_func = function(data, metadata = NULL) {
  cat("\036display ", jsonlite::toJSON(data, auto_unbox = TRUE), "\n", sep = "")
})
input <- file("stdin", "rb")
repeat {
  header <- readBin(input, "raw", 12)
  if (length(header) < 12) break
  code <- rawToChar(readBin(input, "raw", as.integer(rawToChar(header))))
  status <- tryCatch({ eval(parse(text = code), envir = globalenv()); "ok" },
                     error = function(e) paste("error", gsub("\n", " ", conditionMessage(e))))
  cat("\036done ", status, "\n", sep = "")
  flush(stdout())
}
"""


class RRunner:
    language = "r"

    def __init__(self, workdir: Path, process: subprocess.Popen[bytes]) -> None:
        self.workdir = workdir
        self._process = process

    def run(self, code: str) -> ExecutionResult:
        stdin, stdout = self._pipes()
        body = code.encode()
        stdin.write(f"{len(body):012d}".encode() + body)
        stdin.flush()
        lines: list[str] = []
        outputs: list[RichOutput] = []
        while True:
            line = stdout.readline().decode("utf-8", "replace")
            assert line, "Rscript exited"
            if line.startswith("\x1edisplay "):
                outputs.append(RichOutput(kind="display_data", data=_wire(json.loads(line[9:]))))
            elif line.startswith("\x1edone "):
                status = line[6:].rstrip("\n")
                break
            else:
                lines.append(line)
        error = None if status == "ok" else ErrorInfo(ename="ERROR", evalue=status[6:])
        return _result("".join(lines), outputs, error)

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        return self._process.stdin, self._process.stdout


@contextmanager
def runner_for(language: str, workdir: Path) -> Iterator[Runner]:
    """A runner for ``language`` whose snippets run in ``workdir``."""
    if language == "python":
        yield PythonRunner(workdir)
    elif language == "bash":
        yield BashRunner(workdir)
    else:
        with (workdir.parent / "r-stderr.log").open("wb") as log:
            process = subprocess.Popen(
                ["Rscript", "--vanilla", "-e", _R_SERVER],
                cwd=workdir,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        try:
            yield RRunner(workdir, process)
        finally:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=30)
            assert process.stdout is not None
            process.stdout.close()


def upload(
    run: Callable[[str], ExecutionResult],
    snippets: FileSnippets,
    path: str,
    data: bytes,
    chunk_size: int = CHUNK_SIZE,
) -> UploadCommitted:
    """Upload ``data`` to ``path`` chunk by chunk, running each snippet with ``run``."""
    transfer_id = uuid.uuid4().hex
    for index, start in enumerate(range(0, len(data), chunk_size)):
        chunk = data[start : start + chunk_size]
        code = snippets.upload_chunk(path, transfer_id, index, chunk)
        assert ChunkStored.from_reply(run(code)).size == start + len(chunk)
    sha = hashlib.sha256(data).hexdigest()
    return UploadCommitted.from_reply(
        run(snippets.upload_commit(path, transfer_id, len(data), sha))
    )


def download(
    run: Callable[[str], ExecutionResult],
    snippets: FileSnippets,
    path: str,
    chunk_size: int = CHUNK_SIZE,
) -> bytes:
    """Read ``path`` back chunk by chunk, verified against its stat."""
    stat = FileStat.from_reply(run(snippets.stat(path)))
    chunks = [
        FileChunk.from_reply(run(snippets.read_chunk(path, offset, chunk_size)))
        for offset in range(0, stat.size, chunk_size)
    ]
    return stat.assemble(chunks)
