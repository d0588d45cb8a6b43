"""jupyter_interp: a code interpreter client for Jupyter Server, Kernel Gateway and
Enterprise Gateway.

The errors and the sans-I/O ``protocol`` package load eagerly; the I/O-bound names
(``Client``, ``Session``, ``local_server``, ...) load on first attribute access, so
``import jupyter_interp.protocol`` never pulls in anyio, httpx or wsproto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import *  # noqa: F403
from .errors import __all__ as _error_names

if TYPE_CHECKING:
    pass

_LAZY: dict[str, str] = {}

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
