"""The Client: one server, its kernels' lifecycle, and the sessions it opens.

Layer: above ``session`` (it opens Sessions), ``files``, ``io``, ``protocol`` and
``config``; below ``pool``, ``local``, ``provider``, ``mcp``, ``blocking`` and ``cli``.

* ``client``: the ``Client`` (its task group, starts and attaches, closing);
* ``server``: what it asks the server besides kernels' lifecycle (``ServerQueries``);
* ``start_retry``: which start failures are retried, and how (``start_with_retries``).
"""

from .client import CLOSE_CONCURRENCY, Client, shutdown_on_exit

__all__ = ["CLOSE_CONCURRENCY", "Client", "shutdown_on_exit"]
