"""Which snippets a kernel gets: ``snippets_for`` maps a kernel's language to the
``FileSnippets`` implementation that renders file operations in it.

Strategy: one table, language name (lowercase, as a kernelspec or kernel_info names it)
to class; a language missing from it has no kernel-side file transfer (callers fall
back to the server's Contents API where there is one).
"""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import UnsupportedKernel
from .bash import BashFileSnippets
from .python import PythonFileSnippets
from .r import RFileSnippets
from .snippets import FileSnippets

__all__ = ["snippets_for"]

_LANGUAGES: Mapping[str, type[FileSnippets]] = {
    "python": PythonFileSnippets,
    "bash": BashFileSnippets,
    "r": RFileSnippets,
}


def snippets_for(language: str, *, root: str) -> FileSnippets:
    """The snippet builder for a kernel's language (its kernelspec ``language``).

    Raises:
        UnsupportedKernel: no snippets exist for ``language``; the message lists those that do.
        LocalProtocolError: ``root`` is not a string, contains NUL or is not valid text.
    """
    implementation = _LANGUAGES.get(str(language).strip().lower())
    if implementation is None:
        supported = ", ".join(sorted(_LANGUAGES))
        raise UnsupportedKernel(
            f"file transfer is not supported for kernel language {language!r}; "
            f"supported: {supported}"
        )
    return implementation(root=root)
