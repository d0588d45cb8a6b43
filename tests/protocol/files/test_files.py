"""File-transfer snippets, run for real in an in-process IPython shell, and their parsers.

Each generated snippet runs in an ``InteractiveShell`` (``store_history=False``, as the
I/O layer runs it) with IPython's output capture; the captured display outputs pass
through JSON (as on the wire) into an ``ExecutionResult`` that the parsers consume.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_interp.errors import (
    ChecksumMismatch,
    FileTransferError,
    LocalProtocolError,
    PathNotConfined,
    RemoteFileNotFound,
    RemoteProtocolError,
    UnsupportedKernel,
)
from jupyter_interp.protocol.files import (
    CHUNK_SIZE,
    FILE_MIME_TYPE,
    FileOperation,
    FileSnippets,
    confine,
    snippets_for,
)
from jupyter_interp.protocol.files.python import PythonFileSnippets
from jupyter_interp.protocol.files.replies import (
    ChunkStored,
    Deleted,
    DirEntry,
    DirListing,
    EntryKind,
    FileChunk,
    FileStat,
    UploadAborted,
    UploadCommitted,
    parse_reply,
)
from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.result import ErrorInfo, ExecutionResult, ExecutionStatus, RichOutput

SHA_OF_NOTHING = hashlib.sha256(b"").hexdigest()
WEIRD_NAME = "we\"ird 'name' ü 😀 \u2028 tab\t.txt"


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    with tempfile.TemporaryDirectory() as ipython_dir, pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", ipython_dir)
        config = Config()
        config.HistoryManager.enabled = False
        yield InteractiveShell.instance(config=config)


def run(shell: InteractiveShell, code: str) -> ExecutionResult:
    """Run ``code`` as the I/O layer would and build the ExecutionResult it would see."""
    with capture_output() as captured:
        outcome = shell.run_cell(code, store_history=False, silent=False)  # type: ignore[no-untyped-call]
    assert outcome.result is None  # the snippet ends with a statement: no execute_result
    outputs = tuple(
        RichOutput(kind="display_data", data=json.loads(json.dumps(out.data)))
        for out in captured.outputs
    )
    exc = outcome.error_in_exec or outcome.error_before_exec
    error = None if exc is None else ErrorInfo(ename=type(exc).__name__, evalue=str(exc))
    if error is None:
        assert captured.stdout == captured.stderr == ""
    return ExecutionResult(
        msg_id="m",
        status=ExecutionStatus.OK if error is None else ExecutionStatus.ERROR,
        stdout=captured.stdout,
        outputs=outputs,
        error=error,
    )


def upload(
    shell: InteractiveShell,
    snippets: FileSnippets,
    path: str,
    data: bytes,
    chunk_size: int = CHUNK_SIZE,
) -> UploadCommitted:
    transfer_id = uuid.uuid4().hex
    for index, start in enumerate(range(0, len(data), chunk_size)):
        chunk = data[start : start + chunk_size]
        stored = ChunkStored.from_reply(
            run(shell, snippets.upload_chunk(path, transfer_id, index, chunk))
        )
        assert stored.size == start + len(chunk)
    sha = hashlib.sha256(data).hexdigest()
    return UploadCommitted.from_reply(
        run(shell, snippets.upload_commit(path, transfer_id, len(data), sha))
    )


def download(
    shell: InteractiveShell, snippets: FileSnippets, path: str, chunk_size: int = CHUNK_SIZE
) -> bytes:
    stat = FileStat.from_reply(run(shell, snippets.stat(path)))
    offsets = range(0, stat.size, chunk_size)
    chunks = [
        FileChunk.from_reply(run(shell, snippets.read_chunk(path, offset, chunk_size)))
        for offset in offsets
    ]
    return stat.assemble(chunks)


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


# --- confine -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.txt", "a.txt"),
        ("./a/./b/", "a/b"),
        ("a//b", "a/b"),
        ("dir with spaces/ü 😀.txt", "dir with spaces/ü 😀.txt"),
        ("...", "..."),
        ("..a/b..", "..a/b.."),
    ],
)
def test_confine_normalises(path: str, expected: str) -> None:
    assert confine(path) == expected


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "names no file"),
        (".", "names no file"),
        ("./", "names no file"),
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("../x", "'..'"),
        ("a/../b", "'..'"),
        ("a/..", "'..'"),
        ("a\x00b", "NUL"),
        ("a\\b", "backslash"),
        ("..\\x", "backslash"),
        ("a\udcffb", "Unicode"),
    ],
)
def test_confine_rejects(path: str, why: str) -> None:
    with pytest.raises(PathNotConfined, match=why) as info:
        confine(path)
    assert isinstance(info.value, ValueError)


def test_confine_root_only_when_allowed() -> None:
    assert confine("", allow_root=True) == ""
    assert confine("./.", allow_root=True) == ""
    with pytest.raises(PathNotConfined):
        confine("..", allow_root=True)


def test_confine_rejects_non_text() -> None:
    with pytest.raises(LocalProtocolError, match="str"):
        confine(b"a")  # type: ignore[arg-type]


# --- builders --------------------------------------------------------------------------


def test_snippets_for_python_and_unsupported_languages() -> None:
    snippets = snippets_for(" Python ", root="/tmp/x")
    assert isinstance(snippets, PythonFileSnippets)
    assert snippets.root == "/tmp/x"
    with pytest.raises(UnsupportedKernel, match=r"'typescript'.*supported: bash, python, r"):
        snippets_for("typescript", root="")


@pytest.mark.parametrize("root", ["/a\x00b", "/a\udcff", 3])
def test_bad_root_is_refused(root: Any) -> None:
    with pytest.raises(LocalProtocolError, match="root"):
        snippets_for("python", root=root)


def test_file_snippets_is_abstract() -> None:
    with pytest.raises(TypeError):
        FileSnippets(root="")  # type: ignore[abstract]


@pytest.mark.parametrize(
    "build",
    [
        lambda s: s.upload_chunk("a", "bad id!", 0, b""),
        lambda s: s.upload_chunk("a", "x" * 65, 0, b""),
        lambda s: s.upload_chunk("a", 7, 0, b""),
        lambda s: s.upload_chunk("a", "t", -1, b""),
        lambda s: s.upload_chunk("a", "t", True, b""),
        lambda s: s.upload_chunk("a", "t", 0, bytes(CHUNK_SIZE + 1)),
        lambda s: s.upload_commit("a", "t", -1, SHA_OF_NOTHING),
        lambda s: s.upload_commit("a", "t", 0, "ab"),
        lambda s: s.upload_commit("a", "t", 0, None),
        lambda s: s.upload_abort("a", ""),
        lambda s: s.read_chunk("a", -1, 1),
        lambda s: s.read_chunk("a", 0, 0),
        lambda s: s.read_chunk("a", 0, CHUNK_SIZE + 1),
        lambda s: s.delete("a", recursive="yes"),
    ],
)
def test_builders_validate_arguments(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build(PythonFileSnippets(root=""))


@pytest.mark.parametrize("path", ["/abs", "../up", "a/../../b", "nul\x00", ""])
def test_every_builder_confines_client_side(path: str) -> None:
    s = PythonFileSnippets(root="")
    builders: list[Callable[[], object]] = [
        lambda: s.upload_chunk(path, "t", 0, b"x"),
        lambda: s.upload_commit(path, "t", 1, SHA_OF_NOTHING),
        lambda: s.upload_abort(path, "t"),
        lambda: s.stat(path),
        lambda: s.read_chunk(path, 0, 1),
        lambda: s.delete(path),
    ]
    if path:
        builders.append(lambda: s.list_dir(path))
    for build in builders:
        with pytest.raises(PathNotConfined):
            build()


def test_snippet_is_ascii_ends_with_a_statement_and_fits_a_frame() -> None:
    s = PythonFileSnippets(root="/tmp/sessions/ü😀")
    code = s.upload_chunk(WEIRD_NAME, "t", 0, bytes(range(256)) * (CHUNK_SIZE // 256))
    assert code.isascii()
    assert isinstance(ast.parse(code).body[-1], ast.Try)
    factory = MessageFactory(session="s", new_id=lambda: "i", clock=lambda: _epoch())
    frame = json.dumps(factory.execute_request(code, store_history=False).to_wire())
    assert len(frame.encode()) < 6 * 1024 * 1024  # far below the 10 MiB frame limit


def _epoch() -> Any:
    from datetime import datetime, timezone

    return datetime(2020, 1, 1, tzinfo=timezone.utc)


@given(st.text(min_size=1))
def test_embedded_strings_survive_as_python_literals(text: str) -> None:
    code = PythonFileSnippets(root=text.replace("\x00", "")).list_dir()
    call = ast.parse(code).body[-1]
    assert isinstance(call, ast.Try)
    expr = call.body[0]
    assert isinstance(expr, ast.Expr)
    assert isinstance(expr.value, ast.Call)
    assert ast.literal_eval(expr.value.args[1]) == text.replace("\x00", "")


# --- round trips in a real IPython shell ------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "sessions" / "abc"  # does not exist yet: uploads create it


@pytest.fixture
def snippets(root: Path) -> FileSnippets:
    return snippets_for("python", root=str(root))


@pytest.mark.parametrize(
    ("data", "chunk_size"),
    [
        (b"", CHUNK_SIZE),
        (b"x", CHUNK_SIZE),
        (bytes(range(256)), CHUNK_SIZE),
        (bytes(range(256)), 7),
        (b"exactly-16-bytes", 8),
    ],
)
def test_upload_download_round_trip(
    shell: InteractiveShell,
    snippets: FileSnippets,
    root: Path,
    data: bytes,
    chunk_size: int,
) -> None:
    committed = upload(shell, snippets, "in/data.bin", data, chunk_size)
    assert committed == UploadCommitted(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert (root / "in" / "data.bin").read_bytes() == data
    assert download(shell, snippets, "in/data.bin", chunk_size) == data
    assert [p.name for p in (root / "in").iterdir()] == ["data.bin"]  # no temp file left


def test_empty_upload_with_an_empty_first_chunk(
    shell: InteractiveShell, snippets: FileSnippets, root: Path
) -> None:
    assert ChunkStored.from_reply(run(shell, snippets.upload_chunk("e", "t", 0, b""))).size == 0
    run(shell, snippets.upload_commit("e", "t", 0, SHA_OF_NOTHING))
    assert (root / "e").read_bytes() == b""


def test_weird_names(shell: InteractiveShell, snippets: FileSnippets, root: Path) -> None:
    path = f"dir 😀/{WEIRD_NAME}"
    upload(shell, snippets, path, b"payload")
    assert (root / "dir 😀" / WEIRD_NAME).read_bytes() == b"payload"
    assert download(shell, snippets, path) == b"payload"
    listing = DirListing.from_reply(run(shell, snippets.list_dir("dir 😀")))
    assert listing.entries == (DirEntry(name=WEIRD_NAME, kind=EntryKind.FILE, size=7),)


def test_empty_root_means_the_working_directory(
    shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    upload(shell, snippets_for("python", root=""), "here.txt", b"hi")
    assert (tmp_path / "here.txt").read_bytes() == b"hi"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), chunk_size=st.integers(1, 64))
def test_arbitrary_bytes_round_trip(shell: InteractiveShell, data: bytes, chunk_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        snippets = snippets_for("python", root=tmp)
        upload(shell, snippets, "f", data, chunk_size)
        assert download(shell, snippets, "f", chunk_size) == data


names = st.text(
    st.characters(codec="utf-8", exclude_characters="/\\\x00"),
    min_size=1,
    max_size=30,
).filter(lambda name: name not in (".", ".."))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names)
def test_arbitrary_names_round_trip(shell: InteractiveShell, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        snippets = snippets_for("python", root=tmp)
        upload(shell, snippets, name, name.encode())
        assert (Path(tmp) / name).read_bytes() == name.encode()
        listing = DirListing.from_reply(run(shell, snippets.list_dir()))
        assert [entry.name for entry in listing.entries] == [name]


def test_snippets_leave_no_names_and_no_history(
    shell: InteractiveShell, snippets: FileSnippets
) -> None:
    before, count = set(shell.user_ns), shell.execution_count
    upload(shell, snippets, "a", b"abc", 2)
    download(shell, snippets, "a", 2)
    with pytest.raises(RemoteFileNotFound):
        FileStat.from_reply(run(shell, snippets.stat("missing")))
    run(shell, snippets.list_dir())
    run(shell, snippets.delete("a"))
    assert set(shell.user_ns) == before
    assert shell.execution_count == count


# --- atomicity, abort, checksum ------------------------------------------------------------


def test_commit_is_atomic(shell: InteractiveShell, snippets: FileSnippets, root: Path) -> None:
    upload(shell, snippets, "t.txt", b"old")
    run(shell, snippets.upload_chunk("t.txt", "tid", 0, b"new "))
    run(shell, snippets.upload_chunk("t.txt", "tid", 1, b"content"))
    assert (root / "t.txt").read_bytes() == b"old"
    assert (root / ".t.txt.tid.part").read_bytes() == b"new content"
    sha = hashlib.sha256(b"new content").hexdigest()
    run(shell, snippets.upload_commit("t.txt", "tid", 11, sha))
    assert (root / "t.txt").read_bytes() == b"new content"
    assert sorted(p.name for p in root.iterdir()) == ["t.txt"]


def test_abort_removes_the_temp_file(
    shell: InteractiveShell, snippets: FileSnippets, root: Path
) -> None:
    upload(shell, snippets, "t.txt", b"old")
    run(shell, snippets.upload_chunk("t.txt", "tid", 0, b"new"))
    assert UploadAborted.from_reply(run(shell, snippets.upload_abort("t.txt", "tid"))).removed
    assert not UploadAborted.from_reply(run(shell, snippets.upload_abort("t.txt", "tid"))).removed
    assert sorted(p.name for p in root.iterdir()) == ["t.txt"]
    assert (root / "t.txt").read_bytes() == b"old"
    abort_in_missing_dir = run(shell, snippets.upload_abort("no/dir/x", "tid"))
    assert UploadAborted.from_reply(abort_in_missing_dir) == UploadAborted(removed=False)


@pytest.mark.parametrize("tamper", ["bytes", "digest", "size"])
def test_checksum_mismatch_discards_the_upload(
    shell: InteractiveShell, snippets: FileSnippets, root: Path, tamper: str
) -> None:
    run(shell, snippets.upload_chunk("c.bin", "tid", 0, b"good data"))
    size, sha = 9, hashlib.sha256(b"good data").hexdigest()
    if tamper == "bytes":
        (root / ".c.bin.tid.part").write_bytes(b"evil data")
    elif tamper == "digest":
        sha = SHA_OF_NOTHING
    else:
        size = 10
    with pytest.raises(ChecksumMismatch, match="expected"):
        UploadCommitted.from_reply(run(shell, snippets.upload_commit("c.bin", "tid", size, sha)))
    assert list(root.iterdir()) == []


def test_chunks_without_a_start_are_refused(
    shell: InteractiveShell, snippets: FileSnippets
) -> None:
    with pytest.raises(FileTransferError, match="without chunk 0"):
        ChunkStored.from_reply(run(shell, snippets.upload_chunk("x", "tid", 1, b"late")))
    sha = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(FileTransferError, match="no chunk"):
        UploadCommitted.from_reply(run(shell, snippets.upload_commit("x", "tid", 1, sha)))


def test_long_names_keep_the_temp_name_short(
    shell: InteractiveShell, snippets: FileSnippets, root: Path
) -> None:
    name = "ü" * 120  # 240 bytes: the name itself fits, name + transfer id would not
    upload(shell, snippets, name, b"data")
    assert (root / name).read_bytes() == b"data"


# --- confinement on the kernel's side ------------------------------------------------------


@pytest.fixture
def escape(root: Path, tmp_path: Path) -> Path:
    """``root/out`` -> a directory outside the root; ``root/link`` -> a file in it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root.mkdir(parents=True)
    (root / "out").symlink_to(outside)
    (root / "link").symlink_to(outside / "secret")
    return outside


@pytest.mark.parametrize("path", ["link", "out/secret", "out/new"])
def test_symlinks_out_of_the_root_are_refused(
    shell: InteractiveShell, snippets: FileSnippets, escape: Path, path: str
) -> None:
    attempts: list[Callable[[], object]] = [
        lambda: FileStat.from_reply(run(shell, snippets.stat(path))),
        lambda: FileChunk.from_reply(run(shell, snippets.read_chunk(path, 0, 10))),
        lambda: ChunkStored.from_reply(run(shell, snippets.upload_chunk(path, "t", 0, b"x"))),
        lambda: upload(shell, snippets, path, b"overwritten"),
        lambda: UploadAborted.from_reply(run(shell, snippets.upload_abort(path, "t"))),
    ]
    if path.startswith("out/"):
        attempts.append(lambda: Deleted.from_reply(run(shell, snippets.delete(path))))
    for attempt in attempts:
        with pytest.raises(PathNotConfined, match="outside the file root"):
            attempt()
    assert sorted(p.name for p in escape.iterdir()) == ["secret"]
    assert (escape / "secret").read_bytes() == b"secret"


def test_listing_through_a_symlink_is_refused(
    shell: InteractiveShell, snippets: FileSnippets, escape: Path
) -> None:
    with pytest.raises(PathNotConfined):
        DirListing.from_reply(run(shell, snippets.list_dir("out")))


def test_delete_removes_the_symlink_not_its_target(
    shell: InteractiveShell, snippets: FileSnippets, root: Path, escape: Path
) -> None:
    assert Deleted.from_reply(run(shell, snippets.delete("link"))).kind is EntryKind.SYMLINK
    assert Deleted.from_reply(run(shell, snippets.delete("out"))).kind is EntryKind.SYMLINK
    assert list(root.iterdir()) == []
    assert (escape / "secret").read_bytes() == b"secret"


# --- listing, deleting, odd file types ------------------------------------------------------


def test_list_dir_kinds_and_missing_root(
    shell: InteractiveShell, snippets: FileSnippets, root: Path
) -> None:
    assert DirListing.from_reply(run(shell, snippets.list_dir())).entries == ()
    upload(shell, snippets, "d/f.txt", b"12345")
    (root / "d" / "sub").mkdir()
    (root / "d" / "ln").symlink_to("f.txt")
    os.mkfifo(root / "d" / "pipe")
    listing = DirListing.from_reply(run(shell, snippets.list_dir("d")))
    assert listing.entries == (
        DirEntry(name="f.txt", kind=EntryKind.FILE, size=5),
        DirEntry(name="ln", kind=EntryKind.SYMLINK),
        DirEntry(name="pipe", kind=EntryKind.OTHER),
        DirEntry(name="sub", kind=EntryKind.DIRECTORY),
    )
    with pytest.raises(RemoteFileNotFound):
        DirListing.from_reply(run(shell, snippets.list_dir("nope")))
    with pytest.raises(FileTransferError, match="Not a directory"):
        DirListing.from_reply(run(shell, snippets.list_dir("d/f.txt")))


def test_non_utf8_names_are_listed_escaped(
    shell: InteractiveShell, snippets: FileSnippets, root: Path
) -> None:
    root.mkdir(parents=True)
    with open(os.path.join(os.fsencode(root), b"bad\xffname"), "wb"):
        pass
    listing = DirListing.from_reply(run(shell, snippets.list_dir()))
    assert [entry.name for entry in listing.entries] == ["bad\\xffname"]


def test_odd_file_types(shell: InteractiveShell, snippets: FileSnippets, root: Path) -> None:
    upload(shell, snippets, "d/f", b"x")
    os.mkfifo(root / "pipe")
    for path, why in [("d", "is a directory"), ("pipe", "not a regular file")]:
        with pytest.raises(FileTransferError, match=why):
            FileStat.from_reply(run(shell, snippets.stat(path)))
        with pytest.raises(FileTransferError, match=why):
            FileChunk.from_reply(run(shell, snippets.read_chunk(path, 0, 1)))
    with pytest.raises(FileTransferError, match="Is a directory"):
        upload(shell, snippets, "d", b"onto a directory")
    with pytest.raises(FileTransferError, match="File exists"):
        upload(shell, snippets, "d/f/under-a-file", b"")
    assert Deleted.from_reply(run(shell, snippets.delete("pipe"))).kind is EntryKind.OTHER


def test_delete(shell: InteractiveShell, snippets: FileSnippets, root: Path) -> None:
    upload(shell, snippets, "d/e/f", b"x")
    with pytest.raises(FileTransferError, match="recursively"):
        Deleted.from_reply(run(shell, snippets.delete("d")))
    assert Deleted.from_reply(run(shell, snippets.delete("d/e/f"))).kind is EntryKind.FILE
    assert Deleted.from_reply(run(shell, snippets.delete("d", recursive=True))) == Deleted(
        kind=EntryKind.DIRECTORY
    )
    assert list(root.iterdir()) == []
    with pytest.raises(RemoteFileNotFound, match="'d'"):
        Deleted.from_reply(run(shell, snippets.delete("d")))


def test_missing_files(shell: InteractiveShell, snippets: FileSnippets) -> None:
    with pytest.raises(RemoteFileNotFound, match="'nope/x'"):
        FileStat.from_reply(run(shell, snippets.stat("nope/x")))
    with pytest.raises(RemoteFileNotFound) as info:
        FileChunk.from_reply(run(shell, snippets.read_chunk("x", 0, 1)))
    assert isinstance(info.value, FileNotFoundError)


def test_read_past_the_end(shell: InteractiveShell, snippets: FileSnippets) -> None:
    upload(shell, snippets, "f", b"abc")
    chunk = FileChunk.from_reply(run(shell, snippets.read_chunk("f", 2, 10)))
    assert (chunk.offset, chunk.data, chunk.size) == (2, b"c", 3)
    assert FileChunk.from_reply(run(shell, snippets.read_chunk("f", 9, 10))).data == b""


def test_root_that_is_a_file_is_an_os_error(shell: InteractiveShell, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    snippets = snippets_for("python", root=str(tmp_path / "file"))
    with pytest.raises(FileTransferError, match=r"File exists|Not a directory"):
        upload(shell, snippets, "x", b"x")


# --- download verification ----------------------------------------------------------------


def test_a_file_changing_during_download_is_detected(
    shell: InteractiveShell, snippets: FileSnippets, root: Path
) -> None:
    upload(shell, snippets, "f", b"first version")
    stat = FileStat.from_reply(run(shell, snippets.stat("f")))
    (root / "f").write_bytes(b"second version, longer")
    chunk = FileChunk.from_reply(run(shell, snippets.read_chunk("f", 0, 100)))
    with pytest.raises(FileTransferError, match="changed"):
        stat.assemble([chunk])


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


def test_render_receives_operation_and_checked_arguments() -> None:
    seen: list[tuple[FileOperation, dict[str, Any]]] = []

    class Recorder(FileSnippets):
        def render(self, operation: FileOperation, arguments: Any) -> str:
            seen.append((operation, dict(arguments)))
            return "code"

    recorder = Recorder(root="/r")
    assert recorder.list_dir("./a/") == "code"
    recorder.delete("b", recursive=True)
    recorder.upload_commit("c", "t", 0, SHA_OF_NOTHING.upper())
    assert seen == [
        (FileOperation.LIST_DIR, {"path": "a"}),
        (FileOperation.DELETE, {"path": "b", "recursive": True}),
        (
            FileOperation.UPLOAD_COMMIT,
            {"path": "c", "transfer_id": "t", "size": 0, "sha256": SHA_OF_NOTHING},
        ),
    ]
