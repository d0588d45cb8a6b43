"""Sans-I/O core of jupyter_interp: Jupyter messages, framings, execution tracking.

Everything here is pure: it never awaits, sleeps, reads a clock, makes randomness or
touches a socket; ids and clocks are injected. It imports only the standard library
and attrs (``tests/test_boundaries.py`` proves it), so gateways with their own I/O can
use it directly.

Layout: ``messages``/``message_factory`` (values and builders), ``wire``/``wire_json``
(frame codecs), ``events``/``result`` (what callers see), ``execution`` and its output
parsers, ``connection`` (one kernel channel), ``rest``/``rest_models``/``contents``
(REST requests as values; ``contents_swap``: the names and recovery plan of a replace)
and ``files/`` (kernel-side file snippets and their replies).

May import: the standard library, attrs and ``jupyter_interp.errors``; nothing else.
"""

from __future__ import annotations

from . import (
    budget,
    connection,
    events,
    execution,
    files,
    message_factory,
    messages,
    rest,
    result,
    wire,
)
from .budget import *  # noqa: F403
from .connection import *  # noqa: F403
from .events import *  # noqa: F403
from .execution import *  # noqa: F403
from .files.languages import *  # noqa: F403
from .files.python import *  # noqa: F403
from .files.replies import *  # noqa: F403
from .files.snippets import *  # noqa: F403
from .message_factory import *  # noqa: F403
from .messages import *  # noqa: F403
from .rest import HttpRequest
from .rest_models import ApiStatus, KernelModel, KernelSpec, KernelSpecs
from .result import *  # noqa: F403
from .wire import *  # noqa: F403

__all__ = [
    *messages.__all__,
    *message_factory.__all__,
    *result.__all__,
    *events.__all__,
    *wire.__all__,
    *files.snippets.__all__,
    *files.languages.__all__,
    *files.python.__all__,
    *files.replies.__all__,
    *budget.__all__,
    *execution.__all__,
    *connection.__all__,
    "rest",
    "ApiStatus",
    "HttpRequest",
    "KernelModel",
    "KernelSpec",
    "KernelSpecs",
]
