"""A private, cached virtual environment for Jupyter Enterprise Gateway.

Theory of operation
-------------------
Enterprise Gateway 3.3.0 pins ``jupyter-server<2``, ``jupyter-client<7`` and
``pyzmq<25``, so it cannot share the test venv (Jupyter Server 2.x, jupyter-client 8).
``ensure_enterprise_gateway()`` builds ``<repo>/.venv-gateways/eg`` with ``venv`` and
``pip install`` of ``EG_REQUIREMENTS`` (pinned, including the ipykernel that provides
its ``python3`` kernelspec) from the configured package index, and returns the
interpreter to run it with (``python -m enterprise_gateway``). Kernel Gateway 3.x is
built on jupyter_server 2 and lives in the test venv itself, so it needs nothing here.

The gateway is a separate process, so its venv need not use the tests' Python: pyzmq
24 ships wheels up to CPython 3.11 and does not compile on 3.12+, so the venv is built
on the tests' Python only when that is one of ``EG_PYTHONS`` (3.11, 3.10). Otherwise
it takes the first of those that runs, 3.11 first: ``python3.11`` on ``PATH``, then
pyenv's newest 3.11.x, then the same for 3.10.

Invariants:

* The marker file inside the venv is written last, after ``pip`` succeeded, and holds
  the requirements and the base interpreter's version; a venv whose marker differs
  (or is missing: an interrupted install) is deleted and built again. A matching one
  is reused without running ``pip``.
* Builders are serialised by an exclusive ``flock`` on a lock file beside the venv,
  so a CI pre-install and a test session (or two sessions) never build at once.
* ``pip`` output goes to a log file next to the venv and is shown only on failure.

``python -m tests.integration.gateway_env`` pre-installs and prints the timing.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "EG_PYTHONS",
    "EG_REQUIREMENTS",
    "base_interpreter",
    "enterprise_gateway_dir",
    "ensure_enterprise_gateway",
    "main",
]

#: What the Enterprise Gateway venv holds (the server, its pinned stack, its kernel).
EG_REQUIREMENTS: tuple[str, ...] = (
    "jupyter-enterprise-gateway==3.3.0",
    "jupyter-server==1.24.0",
    "jupyter-client==6.1.12",
    "pyzmq==24.0.1",
    "ipykernel==6.29.5",
)

#: the Pythons ``EG_REQUIREMENTS`` install on (from binary wheels), preferred first
EG_PYTHONS: tuple[tuple[int, int], ...] = ((3, 11), (3, 10))

_REPO_ROOT = Path(__file__).resolve().parents[2]
_MARKER_NAME = "jupyter-interp-spec.json"
_PIP_TIMEOUT = 900.0
_LOG_TAIL_LINES = 40


def enterprise_gateway_dir() -> Path:
    """Where the Enterprise Gateway venv lives: ``<repo>/.venv-gateways/eg``."""
    return _REPO_ROOT / ".venv-gateways" / "eg"


@functools.cache
def base_interpreter() -> tuple[str, str]:
    """The interpreter the venv is built on and its version: ours if one of ``EG_PYTHONS``.

    Raises:
        RuntimeError: we run on another Python and none of ``EG_PYTHONS`` is found.
    """
    if sys.version_info[:2] in EG_PYTHONS:
        return sys.executable, ".".join(str(part) for part in sys.version_info[:3])
    for candidate in _candidates():
        try:
            version = subprocess.run(
                [candidate, "-c", "import sys; print(*sys.version_info[:3], sep='.')"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue  # e.g. a pyenv shim for a version that is not selected
        if tuple(int(part) for part in version.split(".")[:2]) in EG_PYTHONS:
            return candidate, version
    wanted = " or ".join(f"{major}.{minor}" for major, minor in EG_PYTHONS)
    raise RuntimeError(
        f"Enterprise Gateway's pinned stack (pyzmq 24) needs Python {wanted}; "
        f"this is {sys.version_info.major}.{sys.version_info.minor} and neither "
        f"python{EG_PYTHONS[0][0]}.{EG_PYTHONS[0][1]} on PATH nor a pyenv version was found"
    )


def _candidates() -> list[str]:
    """``python3.X`` on PATH, then pyenv's newest patch release, for each of ``EG_PYTHONS``."""
    pyenv_versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found: list[str] = []
    for major, minor in EG_PYTHONS:
        name = f"python{major}.{minor}"
        on_path = shutil.which(name)
        if on_path is not None:
            found.append(on_path)
        releases = sorted(
            pyenv_versions.glob(f"{major}.{minor}.*/bin/{name}"),
            key=lambda path: [int(p) for p in path.parts[-3].split(".") if p.isdigit()],
        )
        found.extend(str(path) for path in reversed(releases))
    return found


def _wanted_spec() -> dict[str, object]:
    return {"requirements": list(EG_REQUIREMENTS), "python": base_interpreter()[1]}


def _python_of(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def _is_current(venv_dir: Path) -> bool:
    try:
        recorded = json.loads((venv_dir / _MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == _wanted_spec() and _python_of(venv_dir).exists())


def ensure_enterprise_gateway(venv_dir: Path | None = None) -> Path:
    """Build (or reuse) the Enterprise Gateway venv and return its interpreter.

    Args:
        venv_dir: Where the venv lives; ``enterprise_gateway_dir()`` when None.

    Returns:
        The venv's ``python``; run the gateway as ``<python> -m enterprise_gateway``.

    Raises:
        RuntimeError: ``pip`` failed or timed out (the message holds the log tail).
    """
    venv_dir = enterprise_gateway_dir() if venv_dir is None else venv_dir
    if _is_current(venv_dir):
        return _python_of(venv_dir)
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    with (venv_dir.parent / f"{venv_dir.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_current(venv_dir):  # another builder may have finished meanwhile
            _build(venv_dir)
    return _python_of(venv_dir)


def _build(venv_dir: Path) -> None:
    shutil.rmtree(venv_dir, ignore_errors=True)
    log_path = venv_dir.parent / f"{venv_dir.name}-pip.log"
    create = [base_interpreter()[0], "-m", "venv", "--clear", str(venv_dir)]
    install = [
        str(_python_of(venv_dir)),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        *EG_REQUIREMENTS,
    ]
    with log_path.open("wb") as log:
        for command in (create, install):
            try:
                code = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=_PIP_TIMEOUT,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                code = None
            if code != 0:
                break
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:])
        outcome = "timed out" if code is None else f"exited with code {code}"
        raise RuntimeError(f"installing Enterprise Gateway into {venv_dir} {outcome}:\n{tail}")
    (venv_dir / _MARKER_NAME).write_text(json.dumps(_wanted_spec(), indent=2) + "\n")


def main() -> int:
    """Pre-install the gateway venvs; print where and how long it took."""
    started = time.monotonic()
    python = ensure_enterprise_gateway()
    elapsed = time.monotonic() - started
    base, version = base_interpreter()
    print(f"enterprise gateway: {python} on Python {version} ({base}; {elapsed:.1f} s)")
    return os.EX_OK


if __name__ == "__main__":
    sys.exit(main())
