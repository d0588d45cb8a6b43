"""The drop-in ``CodeInterpreterProvider`` for the agentic-primitives-gateway registry.

``adapter`` is ``JupyterCodeInterpreterProvider`` (the dotted path users put in the
gateway's YAML is ``jupyter_interp.provider.JupyterCodeInterpreterProvider``);
``config`` reads the seed's settings; ``identity`` derives kernel ids and folders from
session ids; ``sessions`` and ``runtime`` keep the gateway's sessions on kernels;
``lifetime`` ends idle ones and caps their number; ``directory`` finds them again on
the server; ``results`` and ``outputs`` turn results into the gateway's dictionaries
and saved files.

May import: everything below it (``client``, ``session``, ``files``, ``io``,
``protocol``, ``config``, ``errors``); nothing imports it.
"""

from __future__ import annotations

from . import adapter
from .adapter import *  # noqa: F403

__all__ = [*adapter.__all__]
