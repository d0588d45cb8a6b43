"""Tenancy through the gateway: no caller takes over, reads or strands another's session.

``OwnedGateway`` stands in for the gateway's routes with their ownership rules: a start
records the caller as the owner of the returned id *after* the provider answered,
overwriting any earlier owner (as the gateway's store does), and every other route
refuses a caller who does not own the id. So the provider's ``start_session`` is the only
guard against a caller who names another's session, kernel or folder; these tests act as
two such callers, A and B, on Jupyter Server, Kernel Gateway and Enterprise Gateway, with
two provider instances sharing one secret standing for two gateway replicas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import jupyter_interp as ji
from jupyter_interp.protocol import rest
from jupyter_interp.provider import InvalidSessionId, JupyterCodeInterpreterProvider, SessionInUse

from .conftest import ServerUnderTest
from .provider_harness import kernel_exists, provider_for

pytestmark = pytest.mark.anyio

_LIMIT = 180


class Forbidden(Exception):
    """The gateway's 403: the caller does not own the session."""


class OwnedGateway:
    """The gateway's session routes and ownership rules in front of one provider."""

    def __init__(self, provider: JupyterCodeInterpreterProvider, owners: dict[str, str]) -> None:
        self.provider = provider
        self.owners = owners  # shared by replicas, like the gateway's Redis store

    async def start(self, caller: str, session_id: str | None = None) -> dict[str, Any]:
        info = await self.provider.start_session(session_id, config={"language": "python"})
        self.owners[info["session_id"]] = caller  # set_owner overwrites
        return info

    def _require_owner(self, caller: str, session_id: str) -> None:
        if self.owners.get(session_id) != caller:
            raise Forbidden(session_id)

    async def execute(self, caller: str, session_id: str, code: str) -> dict[str, Any]:
        self._require_owner(caller, session_id)
        return await self.provider.execute(session_id, code)

    async def upload(self, caller: str, session_id: str, name: str, data: bytes) -> None:
        self._require_owner(caller, session_id)
        await self.provider.upload_file(session_id, name, data)

    async def download(self, caller: str, session_id: str, name: str) -> bytes:
        self._require_owner(caller, session_id)
        return await self.provider.download_file(session_id, name)

    async def history(self, caller: str, session_id: str) -> list[dict[str, Any]]:
        self._require_owner(caller, session_id)
        return await self.provider.get_execution_history(session_id)

    async def stop(self, caller: str, session_id: str) -> None:
        self._require_owner(caller, session_id)
        await self.provider.stop_session(session_id)
        self.owners.pop(session_id, None)


@asynccontextmanager
async def replicas(
    server: ServerUnderTest, file_root: Path, count: int = 2
) -> AsyncIterator[list[OwnedGateway]]:
    """``count`` gateway replicas (one provider each, one secret, one owner store)."""
    owners: dict[str, str] = {}
    providers = [provider_for(server, file_root) for _ in range(count)]
    try:
        yield [OwnedGateway(provider, owners) for provider in providers]
    finally:
        with anyio.CancelScope(shield=True):
            for provider in providers:
                await provider.close()


async def server_kernels(server: ServerUnderTest) -> set[str] | None:
    """Kernel ids the server runs; None where it refuses to list them (the gateways)."""
    async with ji.Client(server.url, token=server.token) as client:
        try:
            return {kernel.id for kernel in await client.list_kernels()}
        except ji.ServerError:
            return None


async def test_no_start_hands_out_a_kernel_that_exists(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    with anyio.fail_after(_LIMIT):
        async with replicas(any_server, tmp_path) as (gateway, other_replica):
            a = await gateway.start("A", "agent-run-42")
            await gateway.execute("A", "agent-run-42", "secret = 'A-only'")
            await gateway.upload("A", "agent-run-42", "a.txt", b"A's file")
            attempts = {
                "the same id": (gateway, "agent-run-42"),
                "the same id on another replica": (other_replica, "agent-run-42"),
                "A's kernel id": (gateway, a["metadata"]["kernel_id"]),
            }
            refusals = {}
            for what, (replica, session_id) in attempts.items():
                with pytest.raises(SessionInUse) as refused:
                    await replica.start("B", session_id)
                refusals[what] = refused.value
            still_a = await gateway.execute("A", "agent-run-42", "print(secret)")
            with pytest.raises(Forbidden):
                await gateway.execute("B", "agent-run-42", "print(secret)")
            await gateway.stop("A", "agent-run-42")

    assert all(isinstance(refusal, ValueError) for refusal in refusals.values())
    assert "already in use" in str(refusals["the same id"])
    assert still_a["stdout"] == "A-only\n"  # A still owns its kernel and its state
    assert not await kernel_exists(any_server, a["metadata"]["kernel_id"])


async def test_folders_reveal_no_session_and_a_reused_id_starts_empty(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    listing = "import os\nsorted(os.listdir('..'))"
    with anyio.fail_after(_LIMIT):
        async with replicas(any_server, tmp_path) as (gateway, other_replica):
            a = await gateway.start("A", "agent-run-7")
            await gateway.execute("A", "agent-run-7", "print('A ran this')")
            await gateway.upload("A", "agent-run-7", "a.txt", b"A's file")
            b = await gateway.start("B")
            siblings = await gateway.execute("B", b["session_id"], listing)
            # A's kernel dies before A stops it (so nothing can clean its folder), and A
            # stops through the other replica; later B starts a session with A's old id
            async with ji.Client(any_server.url, token=any_server.token) as client:
                await client.http.call(
                    rest.delete_kernel(a["metadata"]["kernel_id"]), rest.parse_delete_kernel
                )
            await other_replica.stop("A", "agent-run-7")
            left_behind = await (anyio.Path(a["metadata"]["working_dir"]) / "a.txt").exists()
            reused = await gateway.start("B", "agent-run-7")
            history = await gateway.history("B", "agent-run-7")
            with pytest.raises(FileNotFoundError):
                await gateway.download("B", "agent-run-7", "a.txt")
            fresh = await gateway.execute("B", "agent-run-7", "'secret' in dir()")
            for session_id in (b["session_id"], "agent-run-7"):
                await gateway.stop("B", session_id)

    names = siblings["result"]
    assert siblings["exit_code"] == 0
    assert "jupyter-interp-" in names  # A's folder and B's own are there ...
    for revealing in ("agent-run-7", a["metadata"]["kernel_id"], b["session_id"]):
        assert revealing not in names  # ... but their names give nothing away
    assert left_behind  # A's files outlived A's session ...
    assert reused["metadata"]["working_dir"] == a["metadata"]["working_dir"]
    assert history == []  # ... but nothing of A reached B: no file, no history, no state
    assert fresh["result"] == "False"


@pytest.mark.parametrize(
    "session_id", ["../../evil-sid", "a/b", "..", "x" * 129, "new\nline", "sp ace"]
)
async def test_ids_no_route_can_address_start_nothing(
    any_server: ServerUnderTest, tmp_path: Path, session_id: str
) -> None:
    with anyio.fail_after(_LIMIT):
        before = await server_kernels(any_server)
        async with replicas(any_server, tmp_path, count=1) as (gateway,):
            with pytest.raises(InvalidSessionId) as refused:
                await gateway.start("B", session_id)
            listed = await gateway.provider.list_sessions()
        after = await server_kernels(any_server)
        made = [path async for path in anyio.Path(tmp_path).iterdir()]

    assert isinstance(refused.value, ValueError)
    assert "not allowed" in str(refused.value) or "at most 128" in str(refused.value)
    assert listed == []
    assert after == before  # no kernel started (where the server lists its kernels)
    assert made == []


async def test_oversized_code_fails_cleanly_and_the_next_call_works(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    with anyio.fail_after(_LIMIT):
        async with replicas(any_server, tmp_path, count=1) as (gateway,):
            sid = (await gateway.start("A"))["session_id"]
            huge = await gateway.execute("A", sid, "x = 1\n" + "#" * (20 * 2**20))
            after = await gateway.execute("A", sid, "1 + 1")
            await gateway.stop("A", sid)

    assert huge["exit_code"] == 1
    assert huge["status"] == "refused"
    assert "WebSocket message limit" in huge["error"]
    assert len(huge["error"]) <= 500
    assert after["exit_code"] == 0
    assert after["result"] == "2"


async def test_concurrent_starts_of_one_id_give_one_session(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    won: list[dict[str, Any]] = []
    refused: list[SessionInUse] = []

    async def start(gateway: OwnedGateway, caller: str) -> None:
        try:
            won.append(await gateway.start(caller, "contested"))
        except SessionInUse as exc:
            refused.append(exc)

    with anyio.fail_after(_LIMIT):
        async with replicas(any_server, tmp_path, count=1) as (gateway,):
            async with anyio.create_task_group() as tg:
                tg.start_soon(start, gateway, "A")
                tg.start_soon(start, gateway, "B")
            winner = gateway.owners["contested"]
            await gateway.stop(winner, "contested")

    assert len(won) == 1
    assert len(refused) == 1
