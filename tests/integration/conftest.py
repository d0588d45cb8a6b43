"""Integration fixtures: real servers on 127.0.0.1.

Every test collected from this directory gets ``pytest.mark.integration`` (so
``-m "not integration"`` deselects them all). ``jupyter_server`` is one Jupyter Server
for the whole session; tests isolate themselves (their own kernels, their own paths
under its root).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import RunningServer, running_jupyter_server

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Conftest hooks see the whole session's items: mark only ours.
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A Jupyter Server shared by the session; its teardown fails if it cannot stop it."""
    with running_jupyter_server(tmp_path_factory.mktemp("jupyter-server")) as server:
        yield server
