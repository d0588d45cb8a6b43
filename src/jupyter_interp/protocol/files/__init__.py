"""Kernel-side file transfer, sans-I/O: the snippets kernels run and their replies.

``snippets`` holds the language-neutral contract (``FileSnippets``, ``confine``, chunk
sizes); ``python``, ``bash`` and ``r`` render it for one kernel language each;
``languages`` picks one by the kernel's language; ``replies`` parses what a snippet
publishes back.

May import: the standard library, attrs, ``jupyter_interp.errors`` and the rest of
``jupyter_interp.protocol``; never an I/O library.
"""

from __future__ import annotations

from . import bash, languages, python, r, replies, snippets
from .bash import *  # noqa: F403
from .languages import *  # noqa: F403
from .python import *  # noqa: F403
from .r import *  # noqa: F403
from .replies import *  # noqa: F403
from .snippets import *  # noqa: F403

__all__ = [
    *snippets.__all__,
    *languages.__all__,
    *python.__all__,
    *bash.__all__,
    *r.__all__,
    *replies.__all__,
]
