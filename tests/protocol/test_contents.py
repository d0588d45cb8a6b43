"""protocol.contents: path mapping, request values and the parsers' error mapping.

Bodies are what Jupyter Server 2.21 sent on loopback (captured with curl): a file model
with ``hash=1``, the plain-text 404 body of ``GET api/contents``, JSON errors with
``message``/``reason``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from typing import Any
from urllib.parse import unquote

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_interp.errors import (
    AuthenticationError,
    FileTransferError,
    LocalProtocolError,
    PathNotConfined,
    RemoteFileNotFound,
    RemoteProtocolError,
    ServerError,
    UnsupportedKernel,
)
from jupyter_interp.protocol import contents
from jupyter_interp.protocol.files.replies import DirEntry, EntryKind, FileStat
from jupyter_interp.protocol.rest import HttpRequest

DIGEST = hashlib.sha256(b"hello\n").hexdigest()
FILE_MODEL: dict[str, Any] = {
    "name": "a.txt",
    "path": "sub/a.txt",
    "last_modified": "2026-11-27T14:27:39.711511Z",
    "created": "2026-11-27T14:27:39.711511Z",
    "content": None,
    "format": None,
    "mimetype": "text/plain",
    "size": 6,
    "writable": True,
    "hash": DIGEST,
    "hash_algorithm": "sha256",
    "type": "file",
}
DIR_MODEL: dict[str, Any] = {
    **FILE_MODEL,
    "name": "sub",
    "path": "sub",
    "type": "directory",
    "size": None,
    "hash": None,
    "hash_algorithm": None,
    "content": [
        {**FILE_MODEL, "hash": None, "hash_algorithm": None},
        {**FILE_MODEL, "name": "nb.ipynb", "type": "notebook", "size": 72},
        {**FILE_MODEL, "name": "deeper", "type": "directory", "size": None, "hash": None},
    ],
}
#: Jupyter Server 2.21 answers GET api/contents/<missing> with this text, not JSON.
MISSING = b"file or directory '/nope' does not exist"
#: 1 January 2026 00:00:00.5 UTC in nanoseconds since the epoch.
NEW_YEAR_NS = 1_767_225_600_500_000_000


def body(value: object) -> bytes:
    return json.dumps(value).encode()


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("file_root", "kernel_dir", "expected"),
    [
        ("", "", ""),
        (".", "", ""),
        ("data/in", "", "data/in"),
        ("data//in/", "work", "work/data/in"),
        ("", "a/b", "a/b"),
    ],
)
def test_contents_root_joins_kernel_dir_and_file_root(
    file_root: str, kernel_dir: str, expected: str
) -> None:
    assert contents.contents_root(file_root, kernel_dir=kernel_dir) == expected


def test_an_absolute_file_root_cannot_be_mapped() -> None:
    with pytest.raises(UnsupportedKernel, match="relative to the server root"):
        contents.contents_root("/tmp/files")


@pytest.mark.parametrize(("file_root", "kernel_dir"), [("../up", ""), ("x", "a/../.."), ("\0", "")])
def test_contents_root_refuses_escapes(file_root: str, kernel_dir: str) -> None:
    with pytest.raises(PathNotConfined):
        contents.contents_root(file_root, kernel_dir=kernel_dir)


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/\0b", "a\\b", "", "a/../../b"])
def test_api_path_refuses_what_confine_refuses(path: str) -> None:
    with pytest.raises(PathNotConfined):
        contents.api_path("root", path)


def test_api_path_appends_the_confined_path() -> None:
    assert contents.api_path("root", "./a//b.txt") == "root/a/b.txt"
    assert contents.api_path("", "a") == "a"
    assert contents.api_path("root", "", allow_root=True) == "root"


segment = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/\\\0"), min_size=1
).filter(lambda s: s not in (".", ".."))


@given(st.lists(segment, min_size=1, max_size=4))
def test_every_confined_path_stays_under_its_route(parts: list[str]) -> None:
    path = "/".join(parts)
    request = contents.get_model(path)
    assert request.path.startswith("api/contents/")
    encoded = request.path.removeprefix("api/contents/").split("/")
    assert [unquote(part) for part in encoded] == parts
    ranged = contents.read_range(path, 0, 1)
    assert ranged.path == "files/" + "/".join(encoded)


# --------------------------------------------------------------------------- requests


def test_request_values() -> None:
    assert contents.probe() == HttpRequest(
        method="GET", path="api/contents", query={"content": "0"}
    )
    assert contents.file_stat("a b.txt").path == "api/contents/a%20b.txt"
    assert contents.file_stat("a").query == {"type": "file", "content": "0", "hash": "1"}
    assert contents.list_directory("").query == {"type": "directory", "content": "1"}
    made = contents.make_directory("d")
    assert (made.method, made.json) == ("PUT", {"type": "directory"})
    assert made.success == frozenset({200, 201})
    assert contents.truncate("t").json == {"type": "file", "format": "text", "content": ""}
    renamed = contents.rename("old", "new/x")
    assert (renamed.method, renamed.json) == ("PATCH", {"path": "new/x"})
    deleted = contents.delete("x")
    assert (deleted.method, deleted.idempotent) == ("DELETE", True)
    assert deleted.success == frozenset({204})
    ranged = contents.read_range("x", 10, 5)
    assert ranged.headers == {"Range": "bytes=10-14"}
    assert ranged.idempotent


@given(st.binary(max_size=300), st.sampled_from([1, 2, 77, -1]))
def test_save_chunk_carries_its_own_base64(data: bytes, number: int) -> None:
    request = contents.save_chunk("t.part", number, data)
    assert request.method == "PUT"
    assert not request.idempotent
    assert request.json is not None
    assert request.json["chunk"] == number
    assert (request.json["type"], request.json["format"]) == ("file", "base64")
    assert base64.b64decode(request.json["content"], validate=True) == data


@pytest.mark.parametrize("number", [0, -2, True, 1.0])
def test_save_chunk_refuses_bad_numbers(number: Any) -> None:
    with pytest.raises(LocalProtocolError):
        contents.save_chunk("t", number, b"x")


@pytest.mark.parametrize(("offset", "length"), [(-1, 1), (0, 0)])
def test_read_range_refuses_empty_or_negative_ranges(offset: int, length: int) -> None:
    with pytest.raises(LocalProtocolError):
        contents.read_range("x", offset, length)


def test_rename_confines_the_new_path() -> None:
    with pytest.raises(PathNotConfined):
        contents.rename("a", "../b")


# --------------------------------------------------------------------------- answers


def test_probe_tells_a_contents_api_from_a_gateway() -> None:
    assert contents.parse_probe(200, body(DIR_MODEL)) is True
    assert contents.parse_probe(404, body({"reason": "Not Found"})) is False
    with pytest.raises(AuthenticationError):
        contents.parse_probe(401, b"")


def test_file_stat_reads_size_mtime_and_sha256() -> None:
    model = {**FILE_MODEL, "last_modified": "2026-01-01T00:00:00.500000Z"}
    stat = contents.parse_file_stat(200, body(model), path="sub/a.txt")
    assert stat == FileStat(size=6, mtime_ns=NEW_YEAR_NS, sha256=DIGEST)
    naive = {**model, "last_modified": "2026-01-01T00:00:00.500000"}
    assert contents.parse_file_stat(200, naive, path="x").mtime_ns == NEW_YEAR_NS


@pytest.mark.parametrize(
    ("stamp", "offset_ns"),
    [
        ("2026-01-01T00:00:00.5Z", 0),
        ("2026-01-01t00:00:00.500z", 0),
        ("2026-01-01T00:00:00.500000999Z", 0),  # past microseconds: cut, as 3.11+ does
        ("2026-01-01 01:00:00.5+01:00", 0),
        ("2025-12-31T23:00:00.500000-01:00", 0),
        ("2026-01-01T00:00:00Z", -500_000_000),
        ("2026-01-01T00:00:00.000001Z", -499_999_000),
    ],
)
def test_times_are_read_as_rfc_3339_on_every_python(stamp: str, offset_ns: int) -> None:
    model = {**FILE_MODEL, "last_modified": stamp}
    assert contents.parse_file_stat(200, model, path="x").mtime_ns == NEW_YEAR_NS + offset_ns


@pytest.mark.parametrize(
    "stamp", ["2026-13-01T00:00:00Z", "2026-01-01T25:00:00.5Z", "2026-01-01Z", "noon"]
)
def test_times_that_are_no_times_are_remote_protocol_errors(stamp: str) -> None:
    with pytest.raises(RemoteProtocolError, match="is no time"):
        contents.parse_file_stat(200, {**FILE_MODEL, "last_modified": stamp}, path="x")


def test_file_stat_needs_a_sha256() -> None:
    old_server = {k: v for k, v in FILE_MODEL.items() if k not in ("hash", "hash_algorithm")}
    with pytest.raises(FileTransferError, match=r"2\.11"):
        contents.parse_file_stat(200, body(old_server), path="a")
    md5 = {**FILE_MODEL, "hash": "0" * 32, "hash_algorithm": "md5"}
    with pytest.raises(FileTransferError, match="md5"):
        contents.parse_file_stat(200, body(md5), path="a")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", None),
        ("type", "symlink"),
        ("size", -1),
        ("size", True),
        ("last_modified", "yesterday"),
        ("hash", "ABC"),
    ],
)
def test_malformed_models_are_remote_protocol_errors(field: str, value: object) -> None:
    with pytest.raises(RemoteProtocolError):
        contents.parse_model(200, body({**FILE_MODEL, field: value}), path="a")


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]"])
def test_a_success_without_a_model_is_a_remote_protocol_error(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        contents.parse_model(200, raw, path="a")


def test_listing_maps_kinds_and_sorts_by_name() -> None:
    listing = contents.parse_listing(200, body(DIR_MODEL), path="sub")
    assert listing.entries == (
        DirEntry(name="a.txt", kind=EntryKind.FILE, size=6),
        DirEntry(name="deeper", kind=EntryKind.DIRECTORY, size=None),
        DirEntry(name="nb.ipynb", kind=EntryKind.FILE, size=72),
    )
    with pytest.raises(RemoteProtocolError):
        contents.parse_listing(200, body({**DIR_MODEL, "content": None}), path="sub")


def test_rename_reports_an_existing_target_as_false() -> None:
    assert contents.parse_renamed(200, body(FILE_MODEL), path="a") is True
    assert (
        contents.parse_renamed(409, body({"message": "File already exists: b"}), path="a") is False
    )
    with pytest.raises(FileTransferError, match="Unhandled error"):
        contents.parse_renamed(500, body({"message": "Unhandled error"}), path="a")


def test_delete_and_range_answers() -> None:
    contents.parse_deleted(204, b"", path="x")
    with pytest.raises(RemoteFileNotFound):
        contents.parse_deleted(404, body({"message": "File or directory does not exist"}), path="x")
    assert contents.parse_range(206, b"abc", path="x", length=3) == b"abc"
    assert contents.parse_range(200, b"abc", path="x", length=3) == b"abc"


@pytest.mark.parametrize(
    ("status", "raw", "error"),
    [
        (206, b"ab", FileTransferError),
        (416, b"", FileTransferError),
        (403, b"<html>", PathNotConfined),
        (302, b"", AuthenticationError),
        (404, b"<html>", RemoteFileNotFound),
    ],
)
def test_range_failures(status: int, raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        contents.parse_range(status, raw, path="x", length=3)


@pytest.mark.parametrize(
    ("status", "raw", "error", "text"),
    [
        (404, MISSING, RemoteFileNotFound, "no such file"),
        (403, body({"message": "Permission denied: x"}), FileTransferError, "Permission"),
        (403, body({"message": "Forbidden"}), AuthenticationError, "token"),
        (401, b"", AuthenticationError, "token"),
        (
            400,
            body({"message": "d is a directory, not a file", "reason": "bad type"}),
            FileTransferError,
            "is a directory",
        ),
        (
            400,
            body({"message": "Cannot create file or directory 'x'"}),
            FileTransferError,
            "Cannot create",
        ),
        (
            500,
            body({"message": "Unexpected error\n while saving", "reason": None}),
            FileTransferError,
            "Unexpected error while saving",
        ),
        (418, body({"message": "x" * 1000}), ServerError, "x" * 200),
    ],
)
def test_error_statuses_map_to_file_transfer_errors(
    status: int, raw: bytes, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as caught:
        contents.parse_model(status, raw, path="a")
    assert text in str(caught.value)
    assert len(str(caught.value)) < 400  # bounded quotes


def test_error_bodies_that_are_not_json_are_never_quoted() -> None:
    with pytest.raises(FileTransferError) as caught:
        contents.parse_model(500, b"<html>token=abc</html>", path="a")
    assert "token=abc" not in str(caught.value)


def test_contents_kind_maps_notebooks_to_files() -> None:
    assert contents.ContentsKind.NOTEBOOK.entry_kind is EntryKind.FILE
    assert contents.ContentsKind.DIRECTORY.entry_kind is EntryKind.DIRECTORY


@pytest.mark.parametrize(
    "options",
    [
        {"query": {"a": 1}},
        {"query": {"a": "b\nc"}},
        {"headers": {"Authorization": "token x"}},
        {"headers": {"origin": "http://evil"}},
    ],
)
def test_http_request_checks_query_and_headers(options: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        HttpRequest(method="GET", path="files/x", **options)


def _model(**changes: Any) -> contents.ContentsModel:
    return contents.parse_model(200, json.dumps({**FILE_MODEL, **changes}).encode(), path="p")


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))  # until 2100
def test_same_file_tolerates_the_servers_rounded_mtime(mtime_ns: int) -> None:
    # Jupyter Server: datetime.fromtimestamp(os.lstat(p).st_mtime, utc), st_mtime a float
    stamp = datetime.datetime.fromtimestamp(mtime_ns / 1e9, datetime.timezone.utc)
    stat = FileStat(size=6, mtime_ns=mtime_ns, sha256=DIGEST)
    assert contents.same_file(_model(last_modified=stamp.isoformat()), stat)


def test_same_file_needs_a_file_of_the_same_size_and_mtime() -> None:
    model = _model()
    stat = FileStat(size=6, mtime_ns=model.mtime_ns + 999, sha256="0" * 64)
    assert contents.same_file(model, stat)  # the sha256 is for the bytes to prove
    assert not contents.same_file(model, attrs.evolve(stat, size=7))
    assert not contents.same_file(model, attrs.evolve(stat, mtime_ns=model.mtime_ns + 10**6))
    assert not contents.same_file(model, attrs.evolve(stat, mtime_ns=model.mtime_ns - 10**6))
    assert not contents.same_file(_model(type="notebook"), stat)
    assert not contents.same_file(_model(type="directory", size=None, hash=None), stat)


@pytest.mark.parametrize(
    ("path", "hidden"),
    [("a/b.txt", False), ("a.b/c", False), (".a/b", True), ("a/.b", True), ("a/b/.", True)],
)
def test_is_hidden_looks_at_every_segment(path: str, hidden: bool) -> None:
    assert contents.is_hidden(path) is hidden
