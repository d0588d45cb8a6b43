"""jupyter_interp: a code interpreter client for Jupyter Server, Kernel Gateway and
Enterprise Gateway.

The errors and the sans-I/O ``protocol`` package load eagerly; the I/O-bound names
(``Client``, ``Session``, ``local_server``, ...) load on first attribute access, so
``import jupyter_interp.protocol`` never pulls in anyio, httpx or wsproto.

Layout (``docs/architecture.md``), bottom layer first: ``errors``; ``protocol``
(sans-I/O); ``telemetry``; ``io``, ``config`` and ``notebook``; ``files``; ``session``;
``client``; ``pool`` and ``local``; ``provider``, ``mcp`` and ``blocking``; ``cli``.
Each imports only the layers below it (``tests/test_layers.py``); this facade may name
any of them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import *  # noqa: F403
from .errors import __all__ as _error_names

if TYPE_CHECKING:  # the lazy names below, for type checkers and IDEs
    from .client import Client as Client
    from .config import ClientConfig as ClientConfig
    from .config import StdinPolicy as StdinPolicy
    from .local import LocalJupyterServer as LocalJupyterServer
    from .local import launch_jupyter_server as launch_jupyter_server
    from .local import local_server as local_server
    from .pool import KernelPool as KernelPool
    from .protocol.budget import OutputBudget as OutputBudget
    from .protocol.result import ErrorInfo as ErrorInfo
    from .protocol.result import ExecutionFailed as ExecutionFailed
    from .protocol.result import ExecutionResult as ExecutionResult
    from .protocol.result import ExecutionStatus as ExecutionStatus
    from .protocol.result import Recovery as Recovery
    from .protocol.result import RichOutput as RichOutput
    from .session import Session as Session

# the library convention: records reach the application's handlers, never stderr by
# default (Python's last-resort handler would print warnings when none is configured)
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY: dict[str, str] = {
    "Client": ".client",
    "ClientConfig": ".config",
    "StdinPolicy": ".config",
    "Session": ".session",
    "local_server": ".local",
    "launch_jupyter_server": ".local",
    "LocalJupyterServer": ".local",
    "ExecutionResult": ".protocol.result",
    "ExecutionStatus": ".protocol.result",
    "ExecutionFailed": ".protocol.result",
    "ErrorInfo": ".protocol.result",
    "Recovery": ".protocol.result",
    "RichOutput": ".protocol.result",
    "OutputBudget": ".protocol.budget",
    "KernelPool": ".pool",
}

__all__ = ["__version__", *_error_names, *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'jupyter_interp' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
