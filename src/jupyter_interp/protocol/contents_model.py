"""A Contents API model as this library reads it, and whether it is a kernel's file.

Strategy: ``ContentsModel.from_wire`` checks and converts the fields of a decoded model
(name, path, type, size, last_modified, hash); ``same_file`` compares one with what a
kernel's ``stat`` snippet reported, a cheap identity check before any byte is read.

Invariants: sizes are non-negative integers, digests lowercase hex sha256 (a server
hashing with anything else is refused), times are read as RFC 3339 the same way on
every Python version and kept as integer nanoseconds since the epoch (UTC when the
server gives no zone).
"""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import FileTransferError, RemoteProtocolError
from .files.replies import EntryKind, FileStat
from .files.snippets import SHA256_HEX

__all__ = ["MTIME_SLACK_NS", "ContentsKind", "ContentsModel", "parse_rfc3339", "same_file"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
#: a time as RFC 3339 writes it: date and time, then an optional fraction and zone
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)?")
#: How far a Contents model's mtime may be from ``st_mtime_ns``: the server rounds the
#: float ``st_mtime`` (about 0.5 us apart at today's dates) to microseconds.
MTIME_SLACK_NS = 2_000


class ContentsKind(enum.Enum):
    """A Contents model's ``type``."""

    FILE = "file"
    NOTEBOOK = "notebook"
    DIRECTORY = "directory"

    @property
    def entry_kind(self) -> EntryKind:
        """The matching snippet entry kind (a notebook is a regular file)."""
        return EntryKind.DIRECTORY if self is ContentsKind.DIRECTORY else EntryKind.FILE


def parse_rfc3339(text: str) -> datetime.datetime:
    """``datetime.fromisoformat`` as Python 3.11+ reads RFC 3339, on 3.10 too.

    Python 3.10 refuses the ``Z`` Jupyter Server writes and fractions of other than 3 or
    6 digits: such text is rewritten first (``+00:00``; the fraction cut or padded to 6
    digits, as 3.11 reads it), on every version alike.
    """
    match = _RFC3339.fullmatch(text)
    if match is not None:
        base, fraction, zone = match.groups()
        text = base + (f".{fraction[:6]:0<6}" if fraction else "")
        text += "+00:00" if zone in ("Z", "z") else zone or ""
    return datetime.datetime.fromisoformat(text)


def _mtime_ns(value: object) -> int:
    try:
        stamp = parse_rfc3339(str(value))
    except ValueError as exc:
        raise RemoteProtocolError(f"a Contents model's last_modified {value!r} is no time") from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return (stamp - _EPOCH) // datetime.timedelta(microseconds=1) * 1000


@attrs.frozen(kw_only=True)
class ContentsModel:
    """The fields of a Contents model this library reads."""

    name: str
    path: str
    kind: ContentsKind
    size: int | None
    mtime_ns: int
    sha256: str | None

    @classmethod
    def from_wire(cls, model: Mapping[str, Any]) -> ContentsModel:
        """Check and convert a decoded model.

        Raises:
            RemoteProtocolError: a field is missing or of the wrong type.
        """
        name, path, kind, size = (model.get(k) for k in ("name", "path", "type", "size"))
        if not isinstance(name, str) or not isinstance(path, str):
            raise RemoteProtocolError("a Contents model needs string 'name' and 'path'")
        if kind not in {k.value for k in ContentsKind}:
            raise RemoteProtocolError(f"unknown Contents model type {kind!r}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise RemoteProtocolError(f"a Contents model's size {size!r} is no byte count")
        digest, algorithm = model.get("hash"), model.get("hash_algorithm")
        if digest is not None and (algorithm != "sha256" or not isinstance(digest, str)):
            raise FileTransferError(
                f"the server hashes files with {algorithm!r}; sha256 is needed "
                "(FileContentsManager.hash_algorithm)"
            )
        if digest is not None and not SHA256_HEX.fullmatch(digest):
            raise RemoteProtocolError("a Contents model's hash is not a lowercase sha256")
        return cls(
            name=name,
            path=path,
            kind=ContentsKind(kind),
            size=size,
            mtime_ns=_mtime_ns(model.get("last_modified")),
            sha256=digest,
        )


def same_file(model: ContentsModel, stat: FileStat) -> bool:
    """Whether ``model`` (the server's view) describes the file a kernel's ``stat``
    describes: a regular file of the same size and mtime (within ``MTIME_SLACK_NS``).

    A cheap identity check before any byte is read: another file at a wrongly mapped
    path differs in size or mtime unless it was copied with its mtime; only the
    sha256 of the bytes read proves them.
    """
    return (
        model.kind is ContentsKind.FILE
        and model.size == stat.size
        and abs(model.mtime_ns - stat.mtime_ns) <= MTIME_SLACK_NS
    )
