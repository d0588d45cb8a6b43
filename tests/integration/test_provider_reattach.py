"""A second provider instance (a restart, another replica, a config reload) re-attaches
to the sessions the first one started: by the session records on Jupyter Server, by the
derived kernel id on the gateways, and ``close`` leaves kernels running unless told to
stop them. Loaded as the gateway's registry loads it (``provider_harness``), on asyncio
and trio.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from .provider_harness import (
    _LIMIT,
    kernel_exists,
    provider_on,
)
from .servers import RunningServer

pytestmark = pytest.mark.anyio


async def test_a_second_instance_re_attaches_and_lists_the_sessions(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as first:
            generated = await first.start_session()
            named = await first.start_session("agent-run-42")
            for session in (generated, named):
                await first.execute(session["session_id"], "x = 41")
        # the first instance is gone (a restart, or another replica): kernels live on
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as second:
            listed = {entry["session_id"]: entry for entry in await second.list_sessions()}
            with pytest.raises(ValueError, match="already in use"):
                await second.start_session("agent-run-42")  # never handed out again
            again = await second.get_session("agent-run-42")
            answers = [
                await second.execute(session["session_id"], "x + 1")
                for session in (generated, named)
            ]
            for session in (generated, named):
                await second.stop_session(session["session_id"])

    assert listed[generated["session_id"]] == generated
    assert listed["agent-run-42"] == named
    assert named["metadata"]["kernel_id"] != "agent-run-42"
    assert again == named  # re-attached by a call on the session, not by a start
    assert [answer["result"] for answer in answers] == ["42", "42"]
    assert not await kernel_exists(jupyter_server, named["metadata"]["kernel_id"])


@pytest.mark.parametrize("gateway", ["kernel_gateway", "enterprise_gateway"])
async def test_gateways_re_attach_by_the_derived_kernel_id(
    gateway: str, request: pytest.FixtureRequest, tmp_path: Path, gateway_abc: type
) -> None:
    server: RunningServer = request.getfixturevalue(gateway)
    with anyio.fail_after(_LIMIT):
        async with provider_on(server, tmp_path, gateway_abc) as first:
            healthy = await first.healthcheck()
            named = await first.start_session("agent-on-a-gateway")
            await first.execute("agent-on-a-gateway", "x = 41")
            known_to_first = await first.list_sessions()
        async with provider_on(server, tmp_path, gateway_abc) as second:
            before = await second.list_sessions()  # the gateway refuses listing
            answer = await second.execute("agent-on-a-gateway", "x + 1")
            after = await second.list_sessions()
            await second.stop_session("agent-on-a-gateway")
            await second.stop_session("agent-on-a-gateway")

    assert healthy is True
    assert [entry["session_id"] for entry in known_to_first] == ["agent-on-a-gateway"]
    assert before == []
    assert answer["result"] == "42"
    assert [entry["session_id"] for entry in after] == ["agent-on-a-gateway"]
    assert after[0]["metadata"]["kernel_id"] == named["metadata"]["kernel_id"]
    assert not await kernel_exists(server, named["metadata"]["kernel_id"])


async def test_close_keeps_kernels_unless_told_to_stop_them(
    jupyter_server: RunningServer, tmp_path: Path, gateway_abc: type
) -> None:
    with anyio.fail_after(_LIMIT):
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as keeping:
            kept = await keeping.start_session()
        async with provider_on(
            jupyter_server, tmp_path, gateway_abc, stop_sessions_on_close="true"
        ) as stopping:
            attached = await stopping.get_session(kept["session_id"])
            owned = await stopping.start_session()
        kept_alive = await kernel_exists(jupyter_server, kept["metadata"]["kernel_id"])
        owned_alive = await kernel_exists(jupyter_server, owned["metadata"]["kernel_id"])
        async with provider_on(jupyter_server, tmp_path, gateway_abc) as cleaner:
            reused = await cleaner.execute(kept["session_id"], "'still here'")
            await cleaner.stop_session(kept["session_id"])

    assert attached == kept
    assert kept_alive  # attached, not started, by the stopping instance
    assert not owned_alive
    assert reused["result"] == "'still here'"
