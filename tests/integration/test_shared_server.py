"""The shared local server (``jupyter-interp server start|stop|status``), end to end.

Every command runs as its own process, as a user runs it, with a state directory of the
test's own (``JUPYTER_INTERP_STATE_DIR``).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

pytestmark = pytest.mark.anyio

_TIMEOUT = 120


def _environment(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_URL", "JUPYTER_TOKEN")}
    env["JUPYTER_INTERP_STATE_DIR"] = str(state)
    return env


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A state directory; a supervisor the test left running is stopped after it (``server
    stop`` signals only a supervisor that holds the directory's lock)."""
    directory = tmp_path / "state"
    yield directory
    if directory.exists() and stat.S_IMODE(directory.stat().st_mode) == 0o700:
        command = [sys.executable, "-m", "jupyter_interp.cli", "server", "stop"]
        subprocess.run(command, env=_environment(directory), check=True, capture_output=True)


async def _cli(state: Path, *args: str) -> tuple[int, str, str]:
    command = [sys.executable, "-m", "jupyter_interp.cli", *args]
    result = await anyio.run_process(command, env=_environment(state), check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def _answers(url: str) -> bool:
    async with httpx.AsyncClient(trust_env=False, timeout=2) as http:
        try:
            await http.get(f"{url}api")
        except httpx.HTTPError:
            return False
        return True


async def test_commands_use_the_shared_server_until_it_is_stopped(state: Path) -> None:
    with anyio.fail_after(_TIMEOUT):
        started = await _cli(state, "server", "start")
        again = await _cli(state, "server", "start")
        published = json.loads(await anyio.Path(state / "server.json").read_text())
        modes = (
            stat.S_IMODE((await anyio.Path(state).stat()).st_mode),
            stat.S_IMODE((await anyio.Path(state / "server.json").stat()).st_mode),
        )
        ran = await _cli(state, "exec", "import os; print(os.getcwd())")
        async with httpx.AsyncClient(trust_env=False) as http:
            headers = {"Authorization": f"token {published['token']}"}
            kernels = (await http.get(f"{published['url']}api/kernels", headers=headers)).json()
        stopped = await _cli(state, "server", "stop")
        status = await _cli(state, "server", "status")
        still_answers = await _answers(published["url"])

    assert started[0] == 0
    assert started[1] == again[1]  # one server, reported twice
    assert published["token"] not in started[1] + started[2]
    assert modes == (0o700, 0o600)
    assert ran == (0, published["root_dir"] + "\n", "")
    assert kernels == []  # the command shut its own kernel down
    assert stopped[:2] == (0, "stopped\n")
    assert status[:2] == (1, "no shared server is running\n")
    assert not await anyio.Path(state / "server.json").exists()
    assert not still_answers
    assert not await anyio.Path(published["root_dir"]).exists()


async def test_a_stale_state_file_is_removed_and_a_private_server_used(state: Path) -> None:
    await anyio.Path(state).mkdir(mode=0o700)
    stale = {"url": "http://127.0.0.1:9/", "token": "t", "root_dir": "/nowhere", "pid": 1}
    await anyio.Path(state / "server.json").write_text(json.dumps(stale))
    with anyio.fail_after(_TIMEOUT):
        ran = await _cli(state, "exec", "import os; print(os.getcwd())")

    assert ran[0] == 0
    assert ran[1] != "/nowhere\n"
    assert not await anyio.Path(state / "server.json").exists()


async def test_the_shared_server_stops_itself_once_idle(state: Path) -> None:
    with anyio.fail_after(_TIMEOUT):
        await _cli(state, "server", "start", "--idle-timeout", "1")
        published = anyio.Path(state / "server.json")
        url = json.loads(await published.read_text())["url"]
        while True:  # the supervisor withdraws the state, then stops the server
            if not await published.exists() and not await _answers(url):
                break
            await anyio.sleep(0.2)


async def test_a_state_directory_others_can_enter_is_refused(state: Path) -> None:
    await anyio.Path(state).mkdir()
    await anyio.Path(state).chmod(0o755)
    with anyio.fail_after(_TIMEOUT):
        refused = await _cli(state, "server", "start")

    assert refused[0] == 2
    assert "must belong to this user alone" in refused[2]
    assert not await anyio.Path(state / "server.json").exists()
