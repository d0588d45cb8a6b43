"""Reply channels (display JSON, JSON text, HTML data block), language selection, and the
shape and hygiene of the Bash and R snippets' code."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interp.errors import (
    FileTransferError,
    RemoteFileNotFound,
    RemoteProtocolError,
    UnsupportedKernel,
)
from jupyter_interp.protocol.files import (
    FILE_MIME_TYPE,
    json_string_body,
    snippets_for,
    temp_file_name,
)
from jupyter_interp.protocol.files.bash import BashFileSnippets
from jupyter_interp.protocol.files.python import PythonFileSnippets
from jupyter_interp.protocol.files.r import RFileSnippets
from jupyter_interp.protocol.files.replies import (
    ChunkStored,
    DirEntry,
    DirListing,
    EntryKind,
    UploadCommitted,
    parse_reply,
)
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus, RichOutput

from .snippet_runners import BashRunner, runner_for


def result(*bundles: dict[str, Any]) -> ExecutionResult:
    outputs = tuple(RichOutput(kind="display_data", data=bundle) for bundle in bundles)
    return ExecutionResult(msg_id="m", status=ExecutionStatus.OK, outputs=outputs)


def html(body: str) -> dict[str, Any]:
    return {"text/html": f'<script type="{FILE_MIME_TYPE}">{body}</script>\n'}


# --- language selection ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "kind"),
    [
        ("python", PythonFileSnippets),
        (" Python ", PythonFileSnippets),
        ("bash", BashFileSnippets),
        ("R", RFileSnippets),
    ],
)
def test_snippets_are_chosen_by_language(language: str, kind: type[object]) -> None:
    snippets = snippets_for(language, root="/srv/files")
    assert type(snippets) is kind
    assert snippets.root == "/srv/files"


@pytest.mark.parametrize("language", ["typescript", "julia", ""])
def test_other_languages_are_unsupported(language: str) -> None:
    with pytest.raises(UnsupportedKernel, match=r"not supported .* supported: bash, python, r"):
        snippets_for(language, root="")


def test_helpers_for_snippet_authors() -> None:
    assert temp_file_name("a/b.txt", "t1") == ".b.txt.t1.part"
    assert temp_file_name("x" * 40, "t") == f".{'x' * 32}.t.part"
    body = json_string_body("'<a&b>' \"ü\" \\")
    assert body.isascii()
    assert not set("<>&") & set(body)
    assert json.loads(f'"{body}"') == "'<a&b>' \"ü\" \\"


# --- reply channels ----------------------------------------------------------------------------


def test_an_html_data_block_is_a_reply() -> None:
    assert ChunkStored.from_reply(result(html('{"ok":true,"size":3}'))).size == 3
    with pytest.raises(RemoteFileNotFound, match="gone"):
        parse_reply(result(html('{"ok":false,"error":"not_found","message":"gone"}')))


def test_json_text_is_a_reply() -> None:
    digest = hashlib.sha256(b"").hexdigest()
    text = json.dumps({"ok": True, "size": 0, "sha256": digest})
    assert UploadCommitted.from_reply(result({FILE_MIME_TYPE: text})).sha256 == digest


@pytest.mark.parametrize(
    "bundle",
    [
        {"text/html": "<b>not a reply</b>"},
        {"text/html": f'<script type="{FILE_MIME_TYPE}">{{}}</script><b>x</b>'},
        {"text/html": ['<script type="x">{}</script>']},
        {"text/plain": f'<script type="{FILE_MIME_TYPE}">{{"ok":true}}</script>'},
    ],
)
def test_other_html_is_not_a_reply(bundle: dict[str, Any]) -> None:
    with pytest.raises(FileTransferError, match="no file-operation reply"):
        parse_reply(result(bundle))


@pytest.mark.parametrize("text", ["{not json", "[" * 100_000 + "]" * 100_000, "[]", '"ok"'])
def test_bad_json_text_is_a_protocol_error(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_reply(result({FILE_MIME_TYPE: text}))


def test_one_reply_per_execution_whatever_the_channel() -> None:
    with pytest.raises(RemoteProtocolError, match="got 2"):
        parse_reply(result(html('{"ok":true}'), {FILE_MIME_TYPE: {"ok": True}}))


def test_names_may_come_base64_encoded_and_are_sorted() -> None:
    entries = [
        {"name": "zeta", "kind": "file", "size": 1},
        {"name_base64": "YmFk/25hbWU=", "kind": "other"},
        {"name_base64": "w7w=", "kind": "directory"},
    ]
    listing = DirListing.from_reply(result({FILE_MIME_TYPE: {"ok": True, "entries": entries}}))
    assert listing.entries == (
        DirEntry(name="bad\\xffname", kind=EntryKind.OTHER),
        DirEntry(name="zeta", kind=EntryKind.FILE, size=1),
        DirEntry(name="ü", kind=EntryKind.DIRECTORY),
    )
    bad = [{"name_base64": "not base64!", "kind": "file"}]
    with pytest.raises(RemoteProtocolError, match="name_base64"):
        DirListing.from_reply(result({FILE_MIME_TYPE: {"ok": True, "entries": bad}}))


# --- the code itself ---------------------------------------------------------------------------


def all_operations(snippets: Any, path: str) -> list[str]:
    return [
        snippets.upload_chunk(path, "t", 0, bytes(range(256))),
        snippets.upload_commit(path, "t", 0, hashlib.sha256(b"").hexdigest()),
        snippets.upload_abort(path, "t"),
        snippets.stat(path),
        snippets.read_chunk(path, 0, 10),
        snippets.list_dir(),
        snippets.delete(path, recursive=True),
    ]


def test_bash_code_is_two_printable_ascii_lines() -> None:
    for code in all_operations(BashFileSnippets(root="/r/ü\x01"), "a\n\x03\x04\x1b\x7f 😀"):
        lines = code.split("\n")
        assert len(lines) == 3
        assert lines[2] == ""
        assert all(re.fullmatch(r"[ -~]*", line) for line in lines)


def test_r_code_is_ascii() -> None:
    for code in all_operations(RFileSnippets(root='/r/ü\\"'), "a\nb 😀\"'"):
        assert code.isascii()
        assert code.startswith("local({")
        assert code.rstrip().endswith("})")


@settings(max_examples=60, deadline=None)
@given(text=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1))
def test_bash_words_carry_any_text(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    code = BashFileSnippets(root=text).list_dir()
    word = code.split("'application/vnd.jupyter-interp.file+json' list_dir ", 1)[1].split(" ")[0]
    completed = subprocess.run(
        ["bash", "--norc", "-c", f"printf %s {word}"], capture_output=True, check=True
    )
    assert completed.stdout == text.encode()


def test_bash_snippets_leave_the_shell_as_they_found_it(tmp_path: Path) -> None:
    runner = BashRunner(tmp_path)
    snippets = BashFileSnippets(root=str(tmp_path / "root"))
    state = "set +o; shopt; alias; compgen -A function || :; compgen -v | grep -v '^BASH_\\|^_$'"
    prelude = (
        "set -euC -o pipefail; shopt -s nullglob expand_aliases; alias rm='echo not rm'; "
        f"({state}) >| {tmp_path}/before"
    )
    epilogue = f"({state}) >| {tmp_path}/after"
    for code in all_operations(snippets, "d/f.txt"):
        outcome = runner.run(code, prelude=prelude, epilogue=epilogue)
        assert outcome.error is None
        assert len(outcome.outputs) == 1
        assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()


def test_r_snippets_leave_no_names_and_no_visible_value(tmp_path: Path) -> None:
    snippets = RFileSnippets(root=str(tmp_path / "root"))
    with runner_for("r", tmp_path) as runner:
        runner.run("invisible(NULL)")  # the runner's own variables exist from now on
        before = runner.run('cat(ls(all.names = TRUE), sep = "\\n")').stdout
        for code in all_operations(snippets, "d/f.txt"):
            outcome = runner.run(code)
            assert (outcome.stdout, outcome.error, len(outcome.outputs)) == ("", None, 1)
        assert runner.run('cat(ls(all.names = TRUE), sep = "\\n")').stdout == before
