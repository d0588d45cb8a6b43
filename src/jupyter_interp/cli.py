"""The ``jupyter-interp`` command line.

``jupyter-interp exec CODE`` (or ``-f FILE``, or ``-`` for stdin) runs code on the server
named by ``--url``/``--token`` or ``JUPYTER_URL``/``JUPYTER_TOKEN`` (that token only for
that URL's server), else on a private
Jupyter Server started on 127.0.0.1 for the occasion (or the shared one that
``jupyter-interp server start`` left running). Streams are printed as they
arrive; rich outputs (images, HTML, PDF) are saved under ``--output-dir`` and their paths
printed; ``--json`` prints the aggregated result instead. ``jupyter-interp server
start|stop|status`` manages the shared local server (``local.shared``).

Exit status: 0 success, 1 the code failed (error, timeout, kernel death, ...), 2 usage or
connection errors; 130 after Ctrl-C and 143 after SIGTERM, both of which shut the kernel
and the embedded server down first.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio

from .errors import JupyterInterpError
from .io.signals import cancel_on_signals
from .mcp import command as mcp_command
from .protocol.events import ExecutionFinished, StreamText
from .protocol.result import ExecutionResult, RichOutput

__all__ = ["main"]

EXIT_OK, EXIT_CODE_FAILED, EXIT_USAGE = 0, 1, 2
#: the shell's status for a process ended by SIGTERM
EXIT_TERMINATED = 128 + signal.SIGTERM

_SAVED_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/svg+xml": ".svg",
    "application/pdf": ".pdf",
    "text/html": ".html",
}
_BINARY_TYPES = {"image/png", "image/jpeg", "image/gif", "application/pdf"}
_DESCRIPTION = "Run code on a Jupyter server, or on a private one started for the occasion."


def _seconds(text: str) -> float:
    """``--timeout``: a positive, finite number of seconds (else a usage error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jupyter-interp", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("exec", help="execute code and print its output")
    run.add_argument("code", nargs="?", help="code to run; '-' reads it from stdin")
    run.add_argument("-f", "--file", help="read the code from this file")
    add_server_options(run)
    run.add_argument("--output-dir", default="jupyter-interp-outputs", help="where rich outputs go")
    run.add_argument("--json", action="store_true", help="print the aggregated result as JSON")
    run.add_argument(
        "--notebook", default=None, help="also save the run as a notebook (.ipynb; needs nbformat)"
    )
    mcp_command.add_server_options(add_server_options(mcp_command.add_parser(commands)))
    shared = commands.add_parser(
        "server", help="start, stop or show the shared local server later commands use"
    )
    shared.add_argument("action", choices=("start", "stop", "status"))
    shared.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=3600.0,
        help="start: seconds without kernels or requests after which it stops itself",
    )
    return parser


def add_server_options(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options ``exec`` and ``mcp`` share: where to run code, on which kernel."""
    command.add_argument("--url", default=os.environ.get("JUPYTER_URL"), help="server URL")
    command.add_argument(  # default: JUPYTER_TOKEN, for JUPYTER_URL's server only (Client)
        "--token", default=None, help="server token (default: JUPYTER_TOKEN, for JUPYTER_URL)"
    )
    command.add_argument("--kernel", default=None, help="kernelspec name (default: the server's)")
    command.add_argument("--language", default=None, help="pick a kernel by language")
    command.add_argument("--timeout", type=_seconds, default=None, help="total seconds per run")
    command.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return command


def _read_code(args: argparse.Namespace) -> str:
    if args.file is not None and args.code is not None:
        raise ValueError("give the code or --file, not both")
    if args.file is not None:
        return Path(args.file).read_text(encoding="utf-8")
    if args.code is None:
        raise ValueError("no code given (pass CODE, -f FILE, or - for stdin)")
    if args.code == "-":
        return sys.stdin.read()
    return str(args.code)


def save_outputs(outputs: Sequence[RichOutput], directory: Path) -> list[Path]:
    """Write every saveable MIME item to ``directory``; return the paths written."""
    saved: list[Path] = []
    for index, output in enumerate(outputs, start=1):
        for mime, suffix in _SAVED_TYPES.items():
            value = output.data.get(mime)
            if value is None:
                continue
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"output-{index}{suffix}"
            text = "".join(value) if isinstance(value, list) else str(value)
            if mime in _BINARY_TYPES:
                path.write_bytes(base64.b64decode(text))
            else:
                path.write_text(text, encoding="utf-8")
            saved.append(path)
    return saved


def result_to_json(result: ExecutionResult, saved: Sequence[Path]) -> dict[str, Any]:
    """The aggregated result as plain JSON (rich outputs by MIME type, not inline)."""
    return {
        "status": result.status.value,
        "ok": result.ok,
        "execution_count": result.execution_count,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "result": result.result,
        "error": None
        if result.error is None
        else {
            "ename": result.error.ename,
            "evalue": result.error.evalue,
            "traceback": list(result.error.traceback),
        },
        "outputs": [{"kind": o.kind, "mime_types": sorted(o.data)} for o in result.outputs],
        "files": [str(p) for p in saved],
        "truncated": result.truncated,
        "output_dropped": result.output_dropped,
        "recovery": None if result.recovery is None else result.recovery.value,
        "generation": result.generation,
        "detail": result.detail,
    }


async def _run(args: argparse.Namespace, code: str, out: TextIO, err: TextIO) -> int:
    from .client import Client
    from .local.shared import shared_or_private

    if args.url:
        client_cm: Any = Client(args.url, token=args.token)
    else:
        client_cm = shared_or_private()
    result: ExecutionResult | None = None
    async with client_cm as client, client.session(args.kernel, language=args.language) as session:
        async for event in session.stream(code, timeout=args.timeout):
            if isinstance(event, StreamText) and not args.json:
                sink = err if event.name == "stderr" else out
                sink.write(event.text)
                sink.flush()
            elif isinstance(event, ExecutionFinished):
                result = event.result
        if args.notebook:
            session.save_notebook(args.notebook)
    assert result is not None
    saved = save_outputs(result.outputs, Path(args.output_dir))
    if args.json:
        json.dump(result_to_json(result, saved), out, indent=2)
        out.write("\n")
    else:
        _print_summary(result, saved, out, err)
    return EXIT_OK if result.ok else EXIT_CODE_FAILED


def _print_summary(
    result: ExecutionResult, saved: Sequence[Path], out: TextIO, err: TextIO
) -> None:
    for output in result.outputs:
        if output.kind == "execute_result" or not any(m in output.data for m in _SAVED_TYPES):
            text = output.data.get("text/plain")
            if text is not None:
                out.write(("".join(text) if isinstance(text, list) else str(text)) + "\n")
    for path in saved:
        out.write(f"saved {path}\n")
    if result.error is not None:
        err.write("\n".join(result.error.traceback or (result.error.summary(),)) + "\n")
    if (not result.ok and result.error is None) or result.detail:
        err.write(f"jupyter-interp: {result.describe()}\n")
    if result.truncated:
        err.write("jupyter-interp: output was truncated by the output budget\n")


def _serve_mcp(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        mcp_command.check(args)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"jupyter-interp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JupyterInterpError as exc:
        print(f"jupyter-interp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        anyio.run(mcp_command.run, args, backend=args.backend)
    except JupyterInterpError as exc:
        print(f"jupyter-interp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return EXIT_OK


def _manage_shared(args: argparse.Namespace, out: TextIO) -> int:
    from .local import shared

    if args.action == "start":
        server = shared.start_shared_server(idle_timeout=args.idle_timeout)
        out.write(f"shared server at {server.url} (root {server.root_dir}, pid {server.pid})\n")
        return EXIT_OK
    if args.action == "stop":
        stopped = shared.stop_shared_server()
        out.write("stopped\n" if stopped else "no shared server is running\n")
        return EXIT_OK
    running = shared.read_shared_server()
    if running is None:
        out.write("no shared server is running\n")
        return EXIT_CODE_FAILED
    out.write(f"shared server at {running.url} (root {running.root_dir}, pid {running.pid})\n")
    return EXIT_OK


async def _until_terminated(run: Callable[..., Awaitable[int]], *args: Any) -> int:
    """``run(*args)``, cancelled by SIGTERM as Ctrl-C cancels it, so that its clean-up
    (the kernel, the embedded server) runs: Python's own SIGTERM ends the process at
    once and leaves them running. ``run``'s errors come out as they are, not grouped."""
    status, error = EXIT_TERMINATED, None
    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_on_signals, tg.cancel_scope, signal.SIGTERM)
        try:
            status = await run(*args)
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:  # raised below, outside the task group
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "mcp":
        return _serve_mcp(parser, args)
    if args.command == "server":
        try:
            return _manage_shared(args, sys.stdout)
        except (JupyterInterpError, OSError) as exc:
            print(f"jupyter-interp: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        code = _read_code(args)
    except (ValueError, OSError) as exc:
        parser.print_usage(sys.stderr)
        print(f"jupyter-interp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return anyio.run(
            _until_terminated, _run, args, code, sys.stdout, sys.stderr, backend=args.backend
        )
    except JupyterInterpError as exc:
        print(f"jupyter-interp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader left (``| head``): no traceback, and nothing more to flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CODE_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
