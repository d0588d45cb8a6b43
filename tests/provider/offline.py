"""What the offline provider tests share: no seed variables from the environment, and a
loopback URL where nothing listens.

Import ``no_seed_environment`` into a test module to make it autouse there.
"""

from __future__ import annotations

import socket

import pytest

SEED_ENV = ("JUPYTER_URL", "JUPYTER_TOKEN", "JUPYTER_KERNEL", "JUPYTER_FILE_ROOT")


@pytest.fixture(autouse=True)
def no_seed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SEED_ENV:
        monkeypatch.delenv(name, raising=False)


def refused_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
