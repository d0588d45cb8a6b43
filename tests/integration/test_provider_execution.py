"""What the gateway provider's ``execute`` gives back from a real Jupyter Server:
timeouts, interrupts and restarts as failures, code in another language refused, images
saved as session files, files in the session folder, and big output cut visibly. Loaded
as the gateway's registry loads it (``provider_harness``), on asyncio and trio.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import anyio
import pytest

from .provider_harness import (
    _LIMIT,
    PNG,
    provider_on,
)
from .servers import RunningServer

pytestmark = pytest.mark.anyio


async def test_a_timeout_is_a_failure_and_the_session_goes_on(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, execution_timeout="2"
        ) as provider:
            sid = (await provider.start_session())["session_id"]
            await provider.execute(sid, "y = 7")
            slow = await provider.execute(
                sid, "import time\nprint('begun', flush=True)\ntime.sleep(60)"
            )
            after = await provider.execute(sid, "y")
            await provider.stop_session(sid)

    assert slow["exit_code"] == 124
    assert slow["status"] == "timed_out"
    assert "timed out" in slow["error"]
    assert "interrupted" in slow["error"]
    assert slow["stdout"] == "begun\n"  # the partial output is kept
    assert after["exit_code"] == 0
    assert after["result"] == "7"


async def test_code_in_a_language_the_kernel_does_not_speak_is_not_run(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as provider:
            sid = (await provider.start_session())["session_id"]
            refused = await provider.execute(sid, "x = 1\necho hi", language="bash")
            after = await provider.execute(sid, "'x' in globals()", language="python")
            history = await provider.get_execution_history(sid)
            await provider.stop_session(sid)

    assert refused["exit_code"] == 1
    assert refused["status"] == "language_mismatch"
    assert "runs python, not bash" in refused["error"]
    assert after["result"] == "False"  # the refused code did not run
    assert [(h["language"], h["exit_code"]) for h in history] == [("bash", 1), ("python", 0)]


async def test_a_restart_says_state_was_lost_and_restores_the_working_dir(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    stubborn = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"
    with anyio.fail_after(_LIMIT):
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, execution_timeout="2"
        ) as provider:
            started = await provider.start_session()
            sid = started["session_id"]
            stuck = await provider.execute(sid, stubborn)
            where = await provider.execute(sid, "import os\nos.getcwd()")
            await provider.stop_session(sid)

    assert stuck["exit_code"] == 124
    assert "restarted" in stuck["error"]
    assert "state (variables, imports) was lost" in stuck["error"]
    assert where["result"] == repr(started["metadata"]["working_dir"])


async def test_images_are_saved_as_files_not_inlined(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    code = (
        f"from IPython.display import Image, display\ndisplay(Image(data={PNG!r}))\nprint('drawn')"
    )
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as provider:
            sid = (await provider.start_session())["session_id"]
            drawn = await provider.execute(sid, code)
            saved = [await provider.download_file(sid, name) for name in drawn["files"]]
            await provider.stop_session(sid)

    assert drawn["exit_code"] == 0
    assert drawn["stdout"].startswith("drawn\n[jupyter-interp] 1 rich output saved as files")
    assert drawn["files"] == ["output-1-1.png"]
    assert saved == [PNG]
    as_text = json.dumps(drawn)
    assert base64.b64encode(PNG).decode()[:16] not in as_text
    assert len(as_text) < 600


async def test_files_live_in_the_session_folder(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as provider:
            started = await provider.start_session()
            sid = started["session_id"]
            await provider.upload_file(sid, "data/in.csv", b"a,b\n1,2\n")
            read = await provider.execute(sid, "open('data/in.csv').read()")
            await provider.execute(sid, "open('out.txt', 'w').write('written by the code')")
            written = await provider.download_file(sid, "out.txt")
            with pytest.raises(ValueError, match=r"no file 'nothing-here\.txt'") as missing:
                await provider.download_file(sid, "nothing-here.txt")
            with pytest.raises(ValueError, match="'\\.\\.'"):
                await provider.upload_file(sid, "../escape.txt", b"no")
            # a path through a file, or onto a directory: a clear ValueError (the
            # gateway's 404 with this message), not an error the gateway answers with 500
            with pytest.raises(ValueError, match=r"'out\.txt/x': Not a directory"):
                await provider.upload_file(sid, "out.txt/x", b"no")
            with pytest.raises(ValueError, match="'data' is a directory"):
                await provider.download_file(sid, "data")
            folder = Path(started["metadata"]["working_dir"])
            existed = await anyio.Path(folder / "data" / "in.csv").read_bytes()
            await provider.stop_session(sid)

    assert folder.parent == tmp_path
    assert read["result"] == repr("a,b\n1,2\n")
    assert written == b"written by the code"
    assert isinstance(missing.value, FileNotFoundError)
    assert existed == b"a,b\n1,2\n"
    assert not await anyio.Path(folder).exists()  # stop_session removed it
    assert not await anyio.Path(tmp_path / "escape.txt").exists()


async def test_big_output_is_cut_visibly(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, max_output_bytes="2000"
        ) as provider:
            sid = (await provider.start_session())["session_id"]
            loud = await provider.execute(sid, "print('head' + 'x' * 100_000 + 'tail')")
            await provider.stop_session(sid)

    assert loud["exit_code"] == 0
    assert loud["truncated"] is True
    assert "output truncated" in loud["error"]
    assert len(loud["stdout"].encode()) < 2200
    assert loud["stdout"].startswith("head")
    assert loud["stdout"].rstrip().endswith("tail")
    assert "omitted" in loud["stdout"]
