"""``jupyter-interp mcp`` refuses what cannot run before starting anything (offline)."""

from __future__ import annotations

import sys

import pytest

from jupyter_interp.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "localhost"], "--http takes HOST:PORT, got 'localhost'"),
        (["--http", "127.0.0.1:8765", "--backend", "trio"], "needs --backend asyncio"),
        (["--pool", "-1"], "--pool and --max-output must be >= 0"),
    ],
)
def test_bad_options_exit_2_with_a_sentence(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mcp", *args]) == 2
    assert message in capsys.readouterr().err


def test_without_the_sdk_it_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # what an interpreter without it sees
    monkeypatch.setitem(sys.modules, "mcp.server", None)
    monkeypatch.setitem(sys.modules, "mcp.server.lowlevel", None)
    assert main(["mcp"]) == 2
    assert "pip install 'jupyter-interp[mcp]'" in capsys.readouterr().err
