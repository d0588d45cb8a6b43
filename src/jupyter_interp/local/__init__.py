"""The embedded default: a private Jupyter Server on loopback, and a Client on it.

``server`` is ``local_server()`` (launcher plus Client); ``launcher`` owns the
``jupyter server`` subprocess and everything it spawns; ``kernels`` is the kernel
manager that server loads by name (it imports jupyter_server, so only the server
process imports it); ``shared`` is the opt-in shared local server that outlives one
command (``jupyter-interp server start``), and ``shared_or_private()`` the Client that
``exec`` and ``mcp`` use without a URL.

The names load on first attribute access, so the server process importing
``jupyter_interp.local.kernels`` does not load the client stack.

May import: ``jupyter_interp.errors`` and ``client`` (and, in ``kernels`` only,
jupyter_server and pyzmq).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .launcher import LocalJupyterServer as LocalJupyterServer
    from .launcher import launch_jupyter_server as launch_jupyter_server
    from .server import local_server as local_server

_LAZY = {
    "LocalJupyterServer": ".launcher",
    "launch_jupyter_server": ".launcher",
    "local_server": ".server",
}

__all__ = ["LocalJupyterServer", "launch_jupyter_server", "local_server"]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value
