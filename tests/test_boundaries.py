"""The protocol core is sans-I/O: importing it loads no I/O library."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("anyio", "httpx", "wsproto", "asyncio", "trio", "socket", "ssl", "select")


def _modules_loaded_by(statement: str) -> set[str]:
    probe = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def _forbidden(modules: set[str]) -> set[str]:
    return {name for name in modules if name.split(".")[0] in FORBIDDEN}


def test_protocol_imports_no_io_library() -> None:
    """Nothing forbidden beyond what attrs, the core's one dependency, loads itself.

    On Python 3.10 attrs imports ``platform``, which imports ``subprocess`` and with it
    ``select``; on 3.11+ attrs loads none of them, and neither may the core.
    """
    loaded = _modules_loaded_by("import jupyter_interp.protocol")
    assert "jupyter_interp.protocol" in loaded
    assert _forbidden(loaded) - _forbidden(_modules_loaded_by("import attrs")) == set()


def test_package_root_defers_io_until_asked() -> None:
    loaded = _modules_loaded_by("import jupyter_interp; jupyter_interp.JupyterInterpError")
    assert _forbidden(loaded) == set()
