"""Parsers of snippet replies (``protocol.files.replies``), on synthetic results.

Each reply is built as the I/O layer would hand it over: an ``ExecutionResult`` whose
display outputs carry the ``FILE_MIME_TYPE`` payloads; no kernel runs here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from jupyter_interp.errors import (
    ChecksumMismatch,
    FileTransferError,
    LocalProtocolError,
    PathConflict,
    PathNotConfined,
    RemoteFileNotFound,
    RemoteProtocolError,
)
from jupyter_interp.protocol.files import FILE_MIME_TYPE
from jupyter_interp.protocol.files.replies import (
    ChunkStored,
    Deleted,
    DirListing,
    FileChunk,
    FileStat,
    UploadAborted,
    UploadCommitted,
    parse_reply,
)
from jupyter_interp.protocol.result import ErrorInfo, ExecutionResult, ExecutionStatus, RichOutput

from .snippet_runners import SHA_OF_NOTHING


def reply(*payloads: object, error: ErrorInfo | None = None) -> ExecutionResult:
    return ExecutionResult(
        msg_id="m",
        status=ExecutionStatus.OK if error is None else ExecutionStatus.ERROR,
        outputs=tuple(
            RichOutput(kind="display_data", data={FILE_MIME_TYPE: p, "text/plain": "x"})
            for p in payloads
        ),
        error=error,
    )


# --- parsers on synthetic replies -------------------------------------------------------------


def test_a_snippet_that_raised_is_a_transfer_error() -> None:
    error = ErrorInfo(ename="ModuleNotFoundError", evalue="No module named 'IPython'")
    with pytest.raises(FileTransferError, match="ModuleNotFoundError: No module named"):
        parse_reply(reply(error=error))


def test_a_missing_reply_is_a_transfer_error() -> None:
    dropped = ExecutionResult(msg_id="m", status=ExecutionStatus.OK, output_dropped=True)
    with pytest.raises(FileTransferError, match="rate limit"):
        parse_reply(dropped)
    died = ExecutionResult(msg_id="m", status=ExecutionStatus.KERNEL_DIED)
    with pytest.raises(FileTransferError, match="kernel died"):
        parse_reply(died)


def test_the_reply_wins_over_a_late_error() -> None:
    error = ErrorInfo(ename="KeyboardInterrupt", evalue="")
    assert UploadAborted.from_reply(reply({"ok": True, "removed": True}, error=error)).removed


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"ok": False, "error": "not_found", "message": "m"}, RemoteFileNotFound),
        ({"ok": False, "error": "not_confined", "message": "m"}, PathNotConfined),
        ({"ok": False, "error": "checksum_mismatch", "message": "m"}, ChecksumMismatch),
        ({"ok": False, "error": "is_directory", "message": "m"}, PathConflict),
        ({"ok": False, "error": "not_a_directory", "message": "m"}, PathConflict),
        ({"ok": False, "error": "something_new", "message": "m"}, FileTransferError),
        ({"ok": False, "error": "not_found"}, RemoteProtocolError),
        ({"ok": False, "error": 3, "message": "m"}, RemoteProtocolError),
        ({"ok": "yes"}, RemoteProtocolError),
        ({}, RemoteProtocolError),
        ("{}", RemoteProtocolError),
        (None, RemoteProtocolError),
    ],
)
def test_failure_payloads(payload: object, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        parse_reply(reply(payload))
    assert type(info.value) is error


def test_two_replies_are_a_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="got 2"):
        parse_reply(reply({"ok": True}, {"ok": True}))


GOOD_CHUNK = {
    "ok": True,
    "offset": 0,
    "data": "YWJj",
    "sha256": hashlib.sha256(b"abc").hexdigest(),
    "size": 3,
    "mtime_ns": -5,
}


@pytest.mark.parametrize(
    ("parser", "payload"),
    [
        (ChunkStored.from_reply, {"ok": True, "size": -1}),
        (ChunkStored.from_reply, {"ok": True, "size": True}),
        (UploadCommitted.from_reply, {"ok": True, "size": 1, "sha256": "ABC"}),
        (UploadAborted.from_reply, {"ok": True, "removed": 1}),
        (FileStat.from_reply, {"ok": True, "size": 1, "mtime_ns": 1.5, "sha256": SHA_OF_NOTHING}),
        (FileChunk.from_reply, {**GOOD_CHUNK, "data": "not base64!"}),
        (FileChunk.from_reply, {**GOOD_CHUNK, "offset": None}),
        (DirListing.from_reply, {"ok": True, "entries": {}}),
        (DirListing.from_reply, {"ok": True, "entries": ["x"]}),
        (DirListing.from_reply, {"ok": True, "entries": [{"name": "x", "kind": "fifo"}]}),
        (DirListing.from_reply, {"ok": True, "entries": [{"name": 1, "kind": "file"}]}),
        (
            DirListing.from_reply,
            {"ok": True, "entries": [{"name": "x", "kind": "file", "size": -1}]},
        ),
        (Deleted.from_reply, {"ok": True}),
    ],
)
def test_garbled_fields_are_protocol_errors(parser: Any, payload: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError, match=r"must be|base64"):
        parser(reply(payload))


def test_chunk_parser_checks_the_chunk_digest() -> None:
    assert FileChunk.from_reply(reply(GOOD_CHUNK)) == FileChunk(
        offset=0, data=b"abc", size=3, mtime_ns=-5
    )
    with pytest.raises(ChecksumMismatch, match="offset 0"):
        FileChunk.from_reply(reply({**GOOD_CHUNK, "data": "YWJk"}))


def test_assemble_checks_order_length_and_digest() -> None:
    data = b"abcdef"
    stat = FileStat(size=6, mtime_ns=5, sha256=hashlib.sha256(data).hexdigest())

    def chunk(offset: int, piece: bytes) -> FileChunk:
        return FileChunk(offset=offset, data=piece, size=6, mtime_ns=5)

    assert stat.assemble([chunk(0, b"abc"), chunk(3, b"def")]) == data
    with pytest.raises(LocalProtocolError):
        stat.assemble([chunk(3, b"def"), chunk(0, b"abc")])
    with pytest.raises(FileTransferError, match="received 3 of 6"):
        stat.assemble([chunk(0, b"abc")])
    with pytest.raises(ChecksumMismatch):
        stat.assemble([chunk(0, b"abcdeX")])
