"""The file snippets of every language (Python, Bash, R) keep the same contract.

Each test runs against every language through ``snippet_runners`` (IPython in process,
``bash`` with bash_kernel's own display parsing, one ``Rscript`` per module with the
display hook IRdisplay uses), so the kernels' snippets are held to one specification:
round trips, atomic commits, checksums, confinement, listings, odd files and the error
kinds and messages the parsers turn into typed errors.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_interp.errors import (
    ChecksumMismatch,
    FileTransferError,
    PathConflict,
    PathNotConfined,
    RemoteFileNotFound,
)
from jupyter_interp.protocol.files import CHUNK_SIZE, FileSnippets, snippets_for
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
)

from .snippet_runners import SHA_OF_NOTHING, Runner, download, runner_for, upload

WEIRD_NAME = "we\"ird 'name' ü 😀 \u2028 tab\t<b>&amp;.txt"
LANGUAGES = ["python", "bash", "r"]


@pytest.fixture(scope="module", params=LANGUAGES)
def runner(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runner]:
    workdir = tmp_path_factory.mktemp(f"{request.param}-work")
    with runner_for(str(request.param), workdir) as runner:
        yield runner


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "sessions" / "abc"  # does not exist yet: uploads create it


@pytest.fixture
def snippets(runner: Runner, root: Path) -> FileSnippets:
    return snippets_for(runner.language, root=str(root))


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "chunk_size"),
    [
        (b"", CHUNK_SIZE),
        (b"x", CHUNK_SIZE),
        (bytes(range(256)) * 3, CHUNK_SIZE),
        (bytes(range(256)), 7),
        (b"exactly-16-bytes", 8),
    ],
)
def test_upload_download_round_trip(
    runner: Runner, snippets: FileSnippets, root: Path, data: bytes, chunk_size: int
) -> None:
    committed = upload(runner.run, snippets, "in/data.bin", data, chunk_size)
    assert committed == UploadCommitted(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert (root / "in" / "data.bin").read_bytes() == data
    assert download(runner.run, snippets, "in/data.bin", chunk_size) == data
    assert [p.name for p in (root / "in").iterdir()] == ["data.bin"]  # no temp file left


def test_a_large_chunk_round_trips(runner: Runner, snippets: FileSnippets, root: Path) -> None:
    data = os.urandom(CHUNK_SIZE // 4) + bytes(CHUNK_SIZE // 4)
    upload(runner.run, snippets, "big.bin", data, CHUNK_SIZE // 2)
    assert (root / "big.bin").read_bytes() == data
    assert download(runner.run, snippets, "big.bin") == data


def test_empty_upload_with_an_empty_first_chunk(
    runner: Runner, snippets: FileSnippets, root: Path
) -> None:
    assert ChunkStored.from_reply(runner.run(snippets.upload_chunk("e", "t", 0, b""))).size == 0
    UploadCommitted.from_reply(runner.run(snippets.upload_commit("e", "t", 0, SHA_OF_NOTHING)))
    assert (root / "e").read_bytes() == b""


def test_weird_names(runner: Runner, snippets: FileSnippets, root: Path) -> None:
    path = f"dir 😀/{WEIRD_NAME}"
    upload(runner.run, snippets, path, b"payload")
    assert (root / "dir 😀" / WEIRD_NAME).read_bytes() == b"payload"
    assert download(runner.run, snippets, path) == b"payload"
    listing = DirListing.from_reply(runner.run(snippets.list_dir("dir 😀")))
    assert listing.entries == (DirEntry(name=WEIRD_NAME, kind=EntryKind.FILE, size=7),)
    with pytest.raises(RemoteFileNotFound, match="<b>&amp;"):
        FileStat.from_reply(runner.run(snippets.stat(f"{WEIRD_NAME}/missing")))


def test_empty_root_means_the_working_directory(runner: Runner) -> None:
    name = f"here-{uuid.uuid4().hex}.txt"
    upload(runner.run, snippets_for(runner.language, root=""), name, b"hi")
    assert (runner.workdir / name).read_bytes() == b"hi"


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=300), chunk_size=st.integers(1, 64))
def test_arbitrary_bytes_round_trip(runner: Runner, data: bytes, chunk_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        snippets = snippets_for(runner.language, root=tmp)
        upload(runner.run, snippets, "f", data, max(chunk_size, len(data) // 3 + 1))
        assert download(runner.run, snippets, "f", chunk_size + 64) == data


names = st.text(
    st.characters(codec="utf-8", exclude_characters="/\\\x00"), min_size=1, max_size=30
).filter(lambda name: name not in (".", ".."))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(name=names)
def test_arbitrary_names_round_trip(runner: Runner, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        snippets = snippets_for(runner.language, root=tmp)
        upload(runner.run, snippets, name, name.encode())
        assert (Path(tmp) / name).read_bytes() == name.encode()
        listing = DirListing.from_reply(runner.run(snippets.list_dir()))
        assert [entry.name for entry in listing.entries] == [name]


# --- atomicity, abort, checksum ------------------------------------------------------------


def test_commit_is_atomic(runner: Runner, snippets: FileSnippets, root: Path) -> None:
    upload(runner.run, snippets, "t.txt", b"old")
    runner.run(snippets.upload_chunk("t.txt", "tid", 0, b"new "))
    runner.run(snippets.upload_chunk("t.txt", "tid", 1, b"content"))
    assert (root / "t.txt").read_bytes() == b"old"
    assert (root / ".t.txt.tid.part").read_bytes() == b"new content"
    sha = hashlib.sha256(b"new content").hexdigest()
    UploadCommitted.from_reply(runner.run(snippets.upload_commit("t.txt", "tid", 11, sha)))
    assert (root / "t.txt").read_bytes() == b"new content"
    assert sorted(p.name for p in root.iterdir()) == ["t.txt"]


def test_abort_removes_the_temp_file(runner: Runner, snippets: FileSnippets, root: Path) -> None:
    upload(runner.run, snippets, "t.txt", b"old")
    runner.run(snippets.upload_chunk("t.txt", "tid", 0, b"new"))
    assert UploadAborted.from_reply(runner.run(snippets.upload_abort("t.txt", "tid"))).removed
    assert not UploadAborted.from_reply(runner.run(snippets.upload_abort("t.txt", "tid"))).removed
    assert sorted(p.name for p in root.iterdir()) == ["t.txt"]
    assert (root / "t.txt").read_bytes() == b"old"
    missing_dir = runner.run(snippets.upload_abort("no/dir/x", "tid"))
    assert UploadAborted.from_reply(missing_dir) == UploadAborted(removed=False)


@pytest.mark.parametrize("tamper", ["bytes", "digest", "size"])
def test_checksum_mismatch_discards_the_upload(
    runner: Runner, snippets: FileSnippets, root: Path, tamper: str
) -> None:
    runner.run(snippets.upload_chunk("c.bin", "tid", 0, b"good data"))
    size, sha = 9, hashlib.sha256(b"good data").hexdigest()
    if tamper == "bytes":
        (root / ".c.bin.tid.part").write_bytes(b"evil data")
    elif tamper == "digest":
        sha = SHA_OF_NOTHING
    else:
        size = 10
    with pytest.raises(ChecksumMismatch, match="expected"):
        UploadCommitted.from_reply(runner.run(snippets.upload_commit("c.bin", "tid", size, sha)))
    assert list(root.iterdir()) == []


def test_chunks_without_a_start_are_refused(runner: Runner, snippets: FileSnippets) -> None:
    with pytest.raises(FileTransferError, match="without chunk 0"):
        ChunkStored.from_reply(runner.run(snippets.upload_chunk("x", "tid", 1, b"late")))
    sha = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(FileTransferError, match="no chunk"):
        UploadCommitted.from_reply(runner.run(snippets.upload_commit("x", "tid", 1, sha)))


def test_long_names_keep_the_temp_name_short(
    runner: Runner, snippets: FileSnippets, root: Path
) -> None:
    name = "ü" * 120  # 240 bytes: the name itself fits, name + transfer id would not
    upload(runner.run, snippets, name, b"data")
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
    (root / "dangling").symlink_to(outside / "not-yet")
    return outside


@pytest.mark.parametrize("path", ["link", "out/secret", "out/new", "dangling"])
def test_symlinks_out_of_the_root_are_refused(
    runner: Runner, snippets: FileSnippets, escape: Path, path: str
) -> None:
    attempts: list[Callable[[], object]] = [
        lambda: FileStat.from_reply(runner.run(snippets.stat(path))),
        lambda: FileChunk.from_reply(runner.run(snippets.read_chunk(path, 0, 10))),
        lambda: ChunkStored.from_reply(runner.run(snippets.upload_chunk(path, "t", 0, b"x"))),
        lambda: upload(runner.run, snippets, path, b"overwritten"),
        lambda: UploadAborted.from_reply(runner.run(snippets.upload_abort(path, "t"))),
    ]
    if path.startswith("out/"):
        attempts.append(lambda: Deleted.from_reply(runner.run(snippets.delete(path))))
    for attempt in attempts:
        with pytest.raises(PathNotConfined, match="outside the file root"):
            attempt()
    assert sorted(p.name for p in escape.iterdir()) == ["secret"]
    assert (escape / "secret").read_bytes() == b"secret"


def test_listing_through_a_symlink_is_refused(
    runner: Runner, snippets: FileSnippets, escape: Path
) -> None:
    with pytest.raises(PathNotConfined):
        DirListing.from_reply(runner.run(snippets.list_dir("out")))


def test_delete_removes_the_symlink_not_its_target(
    runner: Runner, snippets: FileSnippets, root: Path, escape: Path
) -> None:
    for name in ("link", "out", "dangling"):
        assert Deleted.from_reply(runner.run(snippets.delete(name))).kind is EntryKind.SYMLINK
    assert list(root.iterdir()) == []
    assert (escape / "secret").read_bytes() == b"secret"


# --- listing, deleting, odd file types ------------------------------------------------------


def test_list_dir_kinds_and_missing_root(
    runner: Runner, snippets: FileSnippets, root: Path
) -> None:
    assert DirListing.from_reply(runner.run(snippets.list_dir())).entries == ()
    upload(runner.run, snippets, "d/f.txt", b"12345")
    (root / "d" / "sub").mkdir()
    (root / "d" / "ln").symlink_to("f.txt")
    os.mkfifo(root / "d" / "pipe")
    listing = DirListing.from_reply(runner.run(snippets.list_dir("d")))
    assert listing.entries == (
        DirEntry(name="f.txt", kind=EntryKind.FILE, size=5),
        DirEntry(name="ln", kind=EntryKind.SYMLINK),
        DirEntry(name="pipe", kind=EntryKind.OTHER),
        DirEntry(name="sub", kind=EntryKind.DIRECTORY),
    )
    with pytest.raises(RemoteFileNotFound):
        DirListing.from_reply(runner.run(snippets.list_dir("nope")))
    with pytest.raises(PathConflict, match="Not a directory"):
        DirListing.from_reply(runner.run(snippets.list_dir("d/f.txt")))


def test_non_utf8_names_are_listed_escaped(
    runner: Runner, snippets: FileSnippets, root: Path
) -> None:
    root.mkdir(parents=True)
    with open(os.path.join(os.fsencode(root), b"bad\xffname"), "wb"):
        pass
    listing = DirListing.from_reply(runner.run(snippets.list_dir()))
    assert [entry.name for entry in listing.entries] == ["bad\\xffname"]


def test_odd_file_types(runner: Runner, snippets: FileSnippets, root: Path) -> None:
    upload(runner.run, snippets, "d/f", b"x")
    os.mkfifo(root / "pipe")
    for path, why, error in [
        ("d", "is a directory", PathConflict),
        ("pipe", "not a regular file", FileTransferError),
    ]:
        with pytest.raises(error, match=why):
            FileStat.from_reply(runner.run(snippets.stat(path)))
        with pytest.raises(error, match=why):
            FileChunk.from_reply(runner.run(snippets.read_chunk(path, 0, 1)))
    with pytest.raises(PathConflict, match="Is a directory"):
        upload(runner.run, snippets, "d", b"onto a directory")
    with pytest.raises(PathConflict, match="Not a directory"):  # a parent is a file
        upload(runner.run, snippets, "d/f/under-a-file", b"")
    with pytest.raises(PathConflict, match="Not a directory"):
        FileStat.from_reply(runner.run(snippets.stat("d/f/under-a-file")))
    assert Deleted.from_reply(runner.run(snippets.delete("pipe"))).kind is EntryKind.OTHER


def test_stat_reports_a_directory_when_asked(
    runner: Runner, snippets: FileSnippets, root: Path
) -> None:
    upload(runner.run, snippets, "d/f", b"x")
    os.utime(root / "d", ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))

    directory = FileStat.from_reply(runner.run(snippets.stat("d", directories=True)))
    file = FileStat.from_reply(runner.run(snippets.stat("d/f", directories=True)))

    assert directory == FileStat(
        size=0, mtime_ns=1_700_000_000_123_456_789, sha256="", kind=EntryKind.DIRECTORY
    )
    assert (file.kind, file.size) == (EntryKind.FILE, 1)
    with pytest.raises(PathConflict, match="is a directory"):  # a download's stat
        FileStat.from_reply(runner.run(snippets.stat("d")))


def test_delete(runner: Runner, snippets: FileSnippets, root: Path) -> None:
    upload(runner.run, snippets, "d/e/f", b"x")
    with pytest.raises(FileTransferError, match="recursively"):
        Deleted.from_reply(runner.run(snippets.delete("d")))
    assert Deleted.from_reply(runner.run(snippets.delete("d/e/f"))).kind is EntryKind.FILE
    assert Deleted.from_reply(runner.run(snippets.delete("d", recursive=True))) == Deleted(
        kind=EntryKind.DIRECTORY
    )
    assert list(root.iterdir()) == []
    with pytest.raises(RemoteFileNotFound, match="'d'"):
        Deleted.from_reply(runner.run(snippets.delete("d")))


def test_missing_files(runner: Runner, snippets: FileSnippets) -> None:
    with pytest.raises(RemoteFileNotFound, match="'nope/x'"):
        FileStat.from_reply(runner.run(snippets.stat("nope/x")))
    with pytest.raises(RemoteFileNotFound) as info:
        FileChunk.from_reply(runner.run(snippets.read_chunk("x", 0, 1)))
    assert isinstance(info.value, FileNotFoundError)


def test_read_past_the_end(runner: Runner, snippets: FileSnippets) -> None:
    upload(runner.run, snippets, "f", b"abc")
    chunk = FileChunk.from_reply(runner.run(snippets.read_chunk("f", 2, 10)))
    assert (chunk.offset, chunk.data, chunk.size) == (2, b"c", 3)
    assert FileChunk.from_reply(runner.run(snippets.read_chunk("f", 9, 10))).data == b""


def test_root_that_is_a_file_is_an_os_error(runner: Runner, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    snippets = snippets_for(runner.language, root=str(tmp_path / "file"))
    with pytest.raises(FileTransferError, match=r"File exists|Not a directory"):
        upload(runner.run, snippets, "x", b"x")


def test_a_file_changing_during_download_is_detected(
    runner: Runner, snippets: FileSnippets, root: Path
) -> None:
    upload(runner.run, snippets, "f", b"first version")
    stat = FileStat.from_reply(runner.run(snippets.stat("f")))
    (root / "f").write_bytes(b"second version, longer")
    chunk = FileChunk.from_reply(runner.run(snippets.read_chunk("f", 0, 100)))
    with pytest.raises(FileTransferError, match="changed"):
        stat.assemble([chunk])


def test_snippets_write_nothing_to_stdout(runner: Runner, snippets: FileSnippets) -> None:
    results = [
        runner.run(snippets.upload_chunk("a", "t", 0, b"abc")),
        runner.run(snippets.upload_commit("a", "t", 3, hashlib.sha256(b"abc").hexdigest())),
        runner.run(snippets.stat("missing")),
        runner.run(snippets.list_dir()),
        runner.run(snippets.delete("a")),
    ]
    for result in results:
        assert (result.stdout, result.error, len(result.outputs)) == ("", None, 1)
