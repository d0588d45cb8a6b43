"""Install and register the kernels the integration tests run: ipykernel (and
ipykernel 7.3 in a venv of its own), xeus-python, bash_kernel, IRkernel and Deno.

Theory of operation
-------------------
``ensure_kernels()`` makes sure that the interpreter running it (the test venv) sees one
kernelspec per kernel the tests use, and does only what is missing, so calling it again
is cheap (a few kernelspec look-ups):

* Python packages (``xeus-python``, ``bash_kernel``, ``deno``) come from the package
  index with ``python -m pip install``; the ``xeus-python`` wheel ships its ``xpython``
  kernelspec under ``sys.prefix`` itself.
* ``bash`` is registered with ``python -m bash_kernel.install --sys-prefix``.
* ``deno`` is registered by ``deno jupyter --install --force`` run with ``XDG_DATA_HOME``
  pointing at a scratch directory (Deno writes only to the user's data directory), and
  that kernelspec is then installed under ``sys.prefix``, so each venv has one naming
  its own ``deno`` binary and nothing is written to the user's home.
* ipykernel 7.3 (one of the releases that can leave a shell request unread, see
  docs/operations.md) gets a venv of its own under ``sys.prefix/kernel-venvs`` (so the
  test venv keeps its own ipykernel), made with this interpreter's ``venv``. Only
  ipykernel itself is installed there (``pip --no-deps --target``); a ``.pth`` file
  appends the test venv's site-packages after the venv's own, so its dependencies
  (IPython, jupyter_client, pyzmq, ...) come from the test venv and building it takes
  seconds, with one wheel to fetch. ``python -m ipykernel install --prefix`` run by
  that venv registers ``ipykernel73`` under ``sys.prefix``, naming its interpreter.
* R comes from the Debian packages ``r-base-core`` and ``r-cran-irkernel`` (``apt-get``,
  as root); the package registers the ``ir`` kernelspec system-wide. Should no R
  kernelspec be visible anyway, ``IRkernel::installspec(user = FALSE, prefix = ...)``
  registers one under ``sys.prefix``.

Invariants: a kernel that cannot be installed raises ``RuntimeError`` naming the failed
command and the tail of its output (never a silent skip); runs are serialised by an
exclusive ``flock`` on a lock file under ``sys.prefix``.

``python -m tests.integration.kernels_env`` does the same and prints what it did.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager

__all__ = [
    "APT_PACKAGES",
    "KERNEL_NAMES",
    "IPYKERNEL_73",
    "PIP_PACKAGES",
    "ensure_kernels",
    "main",
]

#: Package-index distributions that bring the non-IPython kernels (with their versions).
PIP_PACKAGES: Mapping[str, str] = {
    "xeus-python": "xeus-python>=0.17",
    "bash_kernel": "bash_kernel>=0.10",
    "deno": "deno>=2.0",
}
#: Debian packages that bring R and IRkernel.
APT_PACKAGES: tuple[str, ...] = ("r-base-core", "r-cran-irkernel")
#: The kernelspec name of each kernel the tests start, by what it is.
KERNEL_NAMES: Mapping[str, str] = {
    "ipykernel": "python3",
    "xeus-python": "xpython",
    "bash_kernel": "bash",
    "IRkernel": "ir",
    "deno": "deno",
    "ipykernel 7.3": "ipykernel73",
}
#: the ipykernel release the ``ipykernel73`` kernel runs, in its own venv
IPYKERNEL_73 = "ipykernel==7.3.0"

_COMMAND_TIMEOUT = 1200.0
_LOG_TAIL_LINES = 30


def _run(command: Sequence[str], *, env: Mapping[str, str] | None = None) -> None:
    """Run ``command``; on failure raise ``RuntimeError`` with its output's tail."""
    try:
        completed = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            timeout=_COMMAND_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{' '.join(command)} could not run: {exc}") from exc
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.decode(errors="replace").splitlines()[-_LOG_TAIL_LINES:])
        raise RuntimeError(f"{' '.join(command)} exited with code {completed.returncode}:\n{tail}")


def _specs() -> dict[str, Path]:
    """Every kernelspec this interpreter's Jupyter sees, by name."""
    return {name: Path(path) for name, path in KernelSpecManager().find_kernel_specs().items()}


def _spec_json(name: str) -> dict[str, Any]:
    """Kernelspec ``name``'s kernel.json, or ``{}`` (read directly: ``KernelSpec`` warns
    about extra fields such as bash_kernel's ``codemirror_mode``)."""
    directory = _specs().get(name)
    if directory is None:
        return {}
    try:
        spec = json.loads((directory / "kernel.json").read_text())
    except (OSError, ValueError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _spec_runs(name: str) -> bool:
    """Whether kernelspec ``name`` exists and its program is an existing executable."""
    argv = _spec_json(name).get("argv") or [""]
    return shutil.which(str(argv[0])) is not None


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def _missing_distributions() -> list[str]:
    missing = []
    for distribution, requirement in PIP_PACKAGES.items():
        try:
            importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


def _ensure_pip_packages(done: list[str]) -> None:
    missing = _missing_distributions()
    if missing:
        _run([sys.executable, "-m", "pip", "install", "-q", *missing])
        done.append(f"pip install {' '.join(missing)}")


def _ensure_bash(done: list[str]) -> None:
    if not _spec_runs(KERNEL_NAMES["bash_kernel"]):
        _run([sys.executable, "-m", "bash_kernel.install", "--sys-prefix"])
        done.append("python -m bash_kernel.install --sys-prefix")


def _deno_binary() -> Path:
    from deno import find_deno_bin  # type: ignore[import-untyped]  # ships the binary

    return Path(find_deno_bin())


def _ensure_deno(done: list[str]) -> None:
    name = KERNEL_NAMES["deno"]
    binary = _deno_binary()
    if _spec_json(name).get("argv", [])[:1] == [str(binary)]:
        return
    with tempfile.TemporaryDirectory() as scratch:
        _run([str(binary), "jupyter", "--install", "--force"], env={"XDG_DATA_HOME": scratch})
        generated = Path(scratch) / "jupyter" / "kernels" / name
        KernelSpecManager().install_kernel_spec(str(generated), name, prefix=sys.prefix)
    done.append("deno jupyter --install --force (kernelspec moved under sys.prefix)")


def _ensure_ipykernel73(done: list[str]) -> None:
    name = KERNEL_NAMES["ipykernel 7.3"]
    if _spec_runs(name):
        return
    venv = Path(sys.prefix) / "kernel-venvs" / name
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)])
    own = Path(sysconfig.get_path("purelib", vars={"base": str(venv)}))
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(own),
            IPYKERNEL_73,
        ]
    )
    (own / "test-venv-site-packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    display = "Python 3 (ipykernel 7.3)"
    install = ["-m", "ipykernel", "install", f"--prefix={sys.prefix}", f"--name={name}"]
    _run([str(python), *install, f"--display-name={display}"])
    done.append(f"{IPYKERNEL_73} in {venv}, registered as {name!r}")


def _r_spec_exists() -> bool:
    return any(
        str(_spec_json(name).get("language", "")).lower() == "r" and _spec_runs(name)
        for name in _specs()
    )


def _ensure_r(done: list[str]) -> None:
    if _r_spec_exists():
        return
    if shutil.which("Rscript") is None or not _irkernel_installed():
        if os.geteuid() != 0:
            raise RuntimeError(
                f"R with IRkernel is missing; as root run: apt-get update && "
                f"apt-get install -y {' '.join(APT_PACKAGES)}"
            )
        _run(["apt-get", "update"])
        _run(["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES])
        done.append(f"apt-get install -y --no-install-recommends {' '.join(APT_PACKAGES)}")
    if not _r_spec_exists():
        # installspec() runs 'jupyter kernelspec install': our venv's jupyter must be first.
        path = f"{_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"
        code = f"IRkernel::installspec(user = FALSE, prefix = {sys.prefix!r})"
        _run(["Rscript", "-e", code], env={"PATH": path})
        done.append(f"Rscript -e {code!r}")


def _irkernel_installed() -> bool:
    completed = subprocess.run(
        ["Rscript", "-e", "quit(status = !requireNamespace('IRkernel', quietly = TRUE))"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return completed.returncode == 0


@contextmanager
def _locked() -> Iterator[None]:
    lock_path = Path(sys.prefix) / ".jupyter-interp-kernels.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_kernels() -> list[str]:
    """Install and register whatever kernel is missing; return the steps taken.

    Raises:
        RuntimeError: a kernel could not be installed or registered (the message names
            the command and shows its output), or a kernelspec is still missing after.
    """
    done: list[str] = []
    with _locked():
        _ensure_pip_packages(done)
        _ensure_bash(done)
        _ensure_deno(done)
        _ensure_ipykernel73(done)
        _ensure_r(done)
        missing = [name for name in KERNEL_NAMES.values() if not _spec_runs(name)]
        if missing:
            raise RuntimeError(f"kernelspecs still missing after installing: {missing}")
    return done


def main() -> None:
    started = time.monotonic()
    steps = ensure_kernels()
    for step in steps or ["nothing to do: every kernel is installed and registered"]:
        print(step)
    for name, path in sorted(_specs().items()):
        print(f"  {name:12} {path}")
    print(f"kernels ready in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
