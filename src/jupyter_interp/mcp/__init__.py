"""jupyter_interp.mcp: the Model Context Protocol server (``jupyter-interp mcp``).

Needs the ``mcp`` extra (``pip install 'jupyter-interp[mcp]'``). The names below load on
first access, so ``jupyter_interp.mcp.command`` (the command line) imports without the
SDK and can say which extra to install.

Embedding::

    async with Client(url, token=token) as client:
        server = create_server(client, ServerSettings(file_root="work"))
        app = http_app(server, token="secret")      # mount it in any ASGI server
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .http import http_app as http_app
    from .server import create_server as create_server
    from .settings import Limits as Limits
    from .settings import ServerSettings as ServerSettings

_LAZY = {
    "Limits": ".settings",
    "http_app": ".http",
    "ServerSettings": ".settings",
    "create_server": ".server",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'jupyter_interp.mcp' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value
