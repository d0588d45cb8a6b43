"""The ``jupyter-interp exec`` command line, run as a real subprocess.

Most runs target the shared Jupyter Server with ``--url``/``--token``; one runs on the
embedded default (no URL: the CLI starts and stops a private server itself). The
``client_factory`` fixture is requested only for its teardown, which fails a test that
leaves a kernel running on the shared server. The few in-process runs (``main``) cover
argument errors that never reach a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from jupyter_interp.cli import main
from jupyter_interp.client import Client

from .servers import RunningServer, free_port, pids_with_env

_MARKER = "JUPYTER_INTERP_CLI_TEST"


@pytest.fixture
def no_kernel_left(client_factory: Callable[..., Client]) -> None:
    """Request ``client_factory`` for its leak check only."""


def _cli(
    *args: str,
    cwd: Path,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 90,
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_URL", "JUPYTER_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "jupyter_interp.cli", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, **(env or {})},
        timeout=timeout,
        check=False,
    )


def _server_args(server: RunningServer) -> list[str]:
    return ["--url", server.url, "--token", server.token]


@pytest.mark.usefixtures("no_kernel_left")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_exec_prints_streams_and_the_result(
    jupyter_server: RunningServer, tmp_path: Path, backend: str
) -> None:
    code = "import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n6 * 7"
    done = _cli("exec", *_server_args(jupyter_server), "--backend", backend, code, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout == "to out\n42\n"
    assert done.stderr == "to err\n"
    assert list(tmp_path.iterdir()) == []  # no output directory without rich outputs


@pytest.mark.usefixtures("no_kernel_left")
def test_failing_code_exits_1_with_a_plain_traceback(
    jupyter_server: RunningServer, tmp_path: Path
) -> None:
    done = _cli("exec", *_server_args(jupyter_server), "print('before')\n1 / 0", cwd=tmp_path)

    assert done.returncode == 1
    assert done.stdout == "before\n"
    assert "ZeroDivisionError" in done.stderr
    assert "\x1b" not in done.stderr


@pytest.mark.usefixtures("no_kernel_left")
def test_a_timeout_exits_1_and_says_so(jupyter_server: RunningServer, tmp_path: Path) -> None:
    code = "import time\nprint('started', flush=True)\ntime.sleep(60)"
    done = _cli(
        "exec", *_server_args(jupyter_server), "--timeout", "1", code, cwd=tmp_path, timeout=60
    )

    assert done.returncode == 1
    assert done.stdout.startswith("started\n")
    assert "timed out" in done.stderr
    assert "interrupted" in done.stderr


@pytest.mark.usefixtures("no_kernel_left")
def test_json_output(jupyter_server: RunningServer, tmp_path: Path) -> None:
    done = _cli("exec", *_server_args(jupyter_server), "--json", "print('x')\n1 + 1", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # nothing but the JSON document on stdout
    assert report["status"] == "ok"
    assert report["ok"] is True
    assert report["stdout"] == "x\n"
    assert report["result"] == "2"
    assert report["error"] is None
    assert report["outputs"] == [{"kind": "execute_result", "mime_types": ["text/plain"]}]
    assert report["generation"] == 0


@pytest.mark.usefixtures("no_kernel_left")
def test_json_output_of_an_error_exits_1(jupyter_server: RunningServer, tmp_path: Path) -> None:
    done = _cli(
        "exec", *_server_args(jupyter_server), "--json", "raise KeyError('k')", cwd=tmp_path
    )

    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["status"] == "error"
    assert report["error"]["ename"] == "KeyError"
    assert all("\x1b" not in line for line in report["error"]["traceback"])


@pytest.mark.usefixtures("no_kernel_left")
def test_code_from_a_file_and_from_stdin(jupyter_server: RunningServer, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("print('from the file: é')\n", encoding="utf-8")
    from_file = _cli("exec", *_server_args(jupyter_server), "-f", str(script), cwd=tmp_path)
    from_stdin = _cli(
        "exec", *_server_args(jupyter_server), "-", stdin="print('from stdin')\n", cwd=tmp_path
    )

    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout == "from the file: é\n"
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == "from stdin\n"


@pytest.mark.usefixtures("no_kernel_left")
def test_url_and_token_from_the_environment(jupyter_server: RunningServer, tmp_path: Path) -> None:
    env = {"JUPYTER_URL": jupyter_server.url, "JUPYTER_TOKEN": jupyter_server.token}
    done = _cli("exec", "print('via env')", cwd=tmp_path, env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout == "via env\n"


def test_the_environments_token_is_not_sent_to_another_url(
    jupyter_server: RunningServer, tmp_path: Path
) -> None:
    # JUPYTER_TOKEN belongs to JUPYTER_URL's server: a --url elsewhere must not get it
    env = {"JUPYTER_URL": "http://127.0.0.1:9/", "JUPYTER_TOKEN": jupyter_server.token}
    done = _cli("exec", "print('leaked')", "--url", jupyter_server.url, cwd=tmp_path, env=env)

    assert done.returncode == 2, done.stderr
    assert "leaked" not in done.stdout
    assert "403" in done.stderr or "401" in done.stderr


@pytest.mark.usefixtures("no_kernel_left")
def test_rich_outputs_are_saved_under_the_output_dir(
    jupyter_server: RunningServer, tmp_path: Path, tiny_png: bytes
) -> None:
    code = (
        "from IPython.display import HTML, Image, display\n"
        f"display(Image(data={tiny_png!r}, format='png'))\n"
        "display(HTML('<p>page</p>'))\n"
    )
    out_dir = tmp_path / "outputs"
    done = _cli(
        "exec", *_server_args(jupyter_server), "--output-dir", str(out_dir), code, cwd=tmp_path
    )
    as_json = _cli(
        "exec",
        *_server_args(jupyter_server),
        "--json",
        "--output-dir",
        str(tmp_path / "json-outputs"),
        code,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert (out_dir / "output-1.png").read_bytes() == tiny_png
    assert (out_dir / "output-2.html").read_text(encoding="utf-8") == "<p>page</p>"
    assert f"saved {out_dir / 'output-1.png'}" in done.stdout
    assert f"saved {out_dir / 'output-2.html'}" in done.stdout
    report = json.loads(as_json.stdout)
    assert report["files"] == [
        str(tmp_path / "json-outputs" / "output-1.png"),
        str(tmp_path / "json-outputs" / "output-2.html"),
    ]
    assert [o["kind"] for o in report["outputs"]] == ["display_data", "display_data"]


@pytest.mark.usefixtures("no_kernel_left")
def test_an_unknown_kernel_exits_2(jupyter_server: RunningServer, tmp_path: Path) -> None:
    done = _cli(
        "exec", *_server_args(jupyter_server), "--kernel", "no-such-kernel", "1", cwd=tmp_path
    )

    assert done.returncode == 2
    assert "no-such-kernel" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_wrong_token_exits_2_without_echoing_it(
    jupyter_server: RunningServer, tmp_path: Path
) -> None:
    wrong = secrets.token_hex(16)
    done = _cli("exec", "--url", jupyter_server.url, "--token", wrong, "1", cwd=tmp_path)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert wrong not in done.stderr + done.stdout


def test_an_unreachable_server_exits_2(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    done = _cli("exec", "--url", url, "--token", "x", "1", cwd=tmp_path)

    assert done.returncode == 2
    assert done.stderr.startswith("jupyter-interp: ")
    assert "Traceback" not in done.stderr


@pytest.mark.usefixtures("no_kernel_left")
def test_a_kernel_that_dies_exits_1_and_is_deleted(
    jupyter_server: RunningServer, tmp_path: Path
) -> None:
    done = _cli("exec", *_server_args(jupyter_server), "import os; os._exit(1)", cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    assert "kernel" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "soon"])
def test_a_timeout_that_is_no_positive_number_is_a_usage_error(
    timeout: str, tmp_path: Path
) -> None:
    done = _cli("exec", "--url", "http://127.0.0.1:9/", "--timeout", timeout, "1", cwd=tmp_path)

    assert done.returncode == 2
    assert "--timeout" in done.stderr


def test_help_is_plain_text(tmp_path: Path) -> None:
    done = _cli("--help", cwd=tmp_path)

    assert done.returncode == 0
    assert "``" not in done.stdout
    assert "Jupyter server" in done.stdout


@pytest.mark.usefixtures("no_kernel_left")
def test_a_reader_that_leaves_early_gets_no_traceback(
    jupyter_server: RunningServer, tmp_path: Path
) -> None:
    code = "print('x' * 300_000)"  # more than a pipe holds: the writer must block
    clean = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_URL", "JUPYTER_TOKEN")}
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_interp.cli",
            "exec",
            "--json",
            *_server_args(jupyter_server),
            code,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=clean,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        head = process.stdout.read(5)  # as ``| head -c 5`` does, then it leaves
        process.stdout.close()
        stderr = process.stderr.read().decode()
        status = process.wait(timeout=90)

    assert head == b'{\n  "'
    assert status == 1
    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr


@pytest.mark.parametrize(
    "argv",
    [["exec"], ["exec", "1", "-f", "script.py"], ["exec", "-f", "missing.py"]],
    ids=["no-code", "code-and-file", "missing-file"],
)
def test_usage_errors_exit_2(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "script.py").write_text("1\n")

    status = main(argv)

    assert status == 2
    assert "jupyter-interp: " in capsys.readouterr().err


def test_the_embedded_default_runs_without_a_url(tmp_path: Path) -> None:
    marker = secrets.token_hex(8)
    done = _cli(
        "exec",
        "import os\nprint(os.environ.get('JUPYTER_INTERP_CLI_TEST'))",
        cwd=tmp_path,
        env={_MARKER: marker},
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{marker}\n"  # it ran in a kernel of the CLI's own server
    deadline = time.monotonic() + 10
    while pids_with_env(_MARKER, marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids_with_env(_MARKER, marker) == set()  # server and kernel are gone


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_ends_the_embedded_server_and_kernel_too(tmp_path: Path, backend: str) -> None:
    # Python's own SIGTERM ends a process at once: `timeout 10 jupyter-interp exec ...`
    # left the embedded server and its kernel running for good
    marker = secrets.token_hex(8)
    clean = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_URL", "JUPYTER_TOKEN")}
    code = "import time\nprint('running', flush=True)\ntime.sleep(120)"
    with subprocess.Popen(
        [sys.executable, "-m", "jupyter_interp.cli", "exec", "--backend", backend, code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env={**clean, _MARKER: marker},
        text=True,
    ) as cli:
        assert cli.stdout is not None
        assert cli.stdout.readline() == "running\n"
        assert len(pids_with_env(_MARKER, marker)) >= 3  # this command, its server, the kernel
        cli.send_signal(signal.SIGTERM)
        status = cli.wait(timeout=60)

    assert status == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while pids_with_env(_MARKER, marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids_with_env(_MARKER, marker) == set()


def test_a_sigkilled_command_leaves_no_server_kernel_or_directory(tmp_path: Path) -> None:
    # no handler runs on SIGKILL: the embedded server notices its parent is gone, shuts
    # its kernel down and removes its private directories (the launcher's docstring)
    marker = secrets.token_hex(8)
    temp = tmp_path / "tmp"
    temp.mkdir()
    clean = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_URL", "JUPYTER_TOKEN")}
    code = "import time\nprint('running', flush=True)\ntime.sleep(120)"
    with subprocess.Popen(
        [sys.executable, "-m", "jupyter_interp.cli", "exec", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env={**clean, _MARKER: marker, "TMPDIR": str(temp)},
        text=True,
    ) as cli:
        assert cli.stdout is not None
        assert cli.stdout.readline() == "running\n"
        assert len(pids_with_env(_MARKER, marker)) >= 3  # this command, its server, the kernel
        private = set(temp.glob("jupyter-interp-*"))
        assert len(private) == 2  # the server's private directory and its root
        cli.kill()
        cli.wait(timeout=10)

    deadline = time.monotonic() + 30
    while (pids_with_env(_MARKER, marker) or private & set(temp.iterdir())) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    left = pids_with_env(_MARKER, marker)
    for pid in left:  # so that a failure leaves nothing running either
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == set()
    assert private & set(temp.iterdir()) == set()
