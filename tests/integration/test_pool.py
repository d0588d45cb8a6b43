"""KernelPool against a real Jupyter Server: warm hand-out, replenishing, no leaks.

The pool's kernels are counted on the server itself (``server_kernel_ids``), checked
after the pool's block and before the Client's, so a kernel the pool leaked would show
even though the Client would shut it down later.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.to_thread
import httpx
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import LocalProtocolError
from jupyter_interp.pool import KernelPool

from .conftest import server_kernel_ids
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_TIMEOUT = 90
_KERNEL = "python3"


async def _kernels(server: RunningServer) -> set[str]:
    return set(await anyio.to_thread.run_sync(server_kernel_ids, server))


async def test_a_warm_session_is_handed_out_once_and_replaced(
    jupyter_server: RunningServer, client_factory: Callable[..., Client]
) -> None:
    before = await _kernels(jupyter_server)
    with anyio.fail_after(_TIMEOUT):
        async with client_factory() as client:
            async with KernelPool(client, {_KERNEL: 1}) as pool:
                await pool.wait_ready()
                warm = await _kernels(jupyter_server) - before
                session = await pool.start_session(_KERNEL, file_root="work")
                served = session.kernel_id
                assert pool.idle(_KERNEL) == 0
                result = await session.execute("21 * 2")
                await pool.wait_ready()
                replacement = await _kernels(jupyter_server) - before - {served}
                await session.shutdown()
            after_pool = await _kernels(jupyter_server)

    assert warm == {served}
    assert session.file_root == "work"
    assert result.ok
    assert result.result == "42"
    assert len(replacement) == 1
    assert not after_pool - before


async def test_leaving_or_cancelling_mid_start_leaks_no_kernel(
    jupyter_server: RunningServer, client_factory: Callable[..., Client]
) -> None:
    before = await _kernels(jupyter_server)
    with anyio.fail_after(_TIMEOUT):
        async with client_factory() as client:
            async with KernelPool(client, {_KERNEL: 2}):
                await anyio.sleep(0.2)  # a start is in flight
            after_exit = await _kernels(jupyter_server)
            with anyio.move_on_after(0.3) as scope:
                async with KernelPool(client, {_KERNEL: 2}):
                    await anyio.sleep(30)
            after_cancel = await _kernels(jupyter_server)

    assert scope.cancelled_caught
    assert not after_exit - before
    assert not after_cancel - before


async def test_requests_a_warm_kernel_cannot_serve_start_cold(
    jupyter_server: RunningServer, client_factory: Callable[..., Client]
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with client_factory() as client, KernelPool(client, {_KERNEL: 1}) as pool:
            await pool.wait_ready()
            warm = await _kernels(jupyter_server)
            with_env = await pool.start_session(_KERNEL, env={"KERNEL_BENCH": "1"})
            idle_after = pool.idle(_KERNEL)
            await with_env.shutdown()
            async with pool.session(language="python") as by_language:
                served_by_language = by_language.kernel_id
            gone = served_by_language not in await _kernels(jupyter_server)

    assert with_env.kernel_id not in warm
    assert idle_after == 1
    assert served_by_language in warm
    assert gone


async def test_the_default_kernelspec_pooled_as_none_serves_unnamed_starts_only(
    jupyter_server: RunningServer, client_factory: Callable[..., Client]
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with client_factory() as client, KernelPool(client, {None: 1}) as pool:
            await pool.wait_ready()
            warm = await _kernels(jupyter_server)
            async with pool.session(_KERNEL) as named:  # the default's name: still cold
                served_named = named.kernel_id
                idle_after_named = pool.idle(None)
            async with pool.session() as unnamed:
                served_unnamed, unnamed_kernel = unnamed.kernel_id, unnamed.kernel_name
            default = (await client.kernelspecs()).default

    assert served_named not in warm
    assert idle_after_named == 1
    assert served_unnamed in warm
    assert unnamed_kernel == default == _KERNEL


async def test_a_warm_kernel_deleted_behind_the_pools_back_is_never_handed_out(
    jupyter_server: RunningServer, client_factory: Callable[..., Client]
) -> None:
    before = await _kernels(jupyter_server)
    with anyio.fail_after(_TIMEOUT):
        async with client_factory() as client, KernelPool(client, {_KERNEL: 1}) as pool:
            await pool.wait_ready()
            (dead,) = await _kernels(jupyter_server) - before
            async with httpx.AsyncClient(trust_env=False) as http:
                response = await http.delete(
                    f"{jupyter_server.url}api/kernels/{dead}",
                    headers={"Authorization": f"token {jupyter_server.token}"},
                )
            async with pool.session(_KERNEL) as session:
                served = session.kernel_id
                result = await session.execute("'alive'")

    assert response.status_code == 204
    assert served != dead
    assert result.result == "'alive'"


async def test_misuse_is_a_local_protocol_error(client_factory: Callable[..., Client]) -> None:
    client = client_factory()
    with pytest.raises(LocalProtocolError, match="at least one kernelspec"):
        KernelPool(client, {})
    with pytest.raises(LocalProtocolError, match="must be an int >= 1"):
        KernelPool(client, {_KERNEL: 0})
    with pytest.raises(LocalProtocolError, match="inside 'async with'"):
        async with KernelPool(client, {_KERNEL: 1}):
            pass  # the Client is not entered
    with anyio.fail_after(_TIMEOUT):
        async with client:
            pool = KernelPool(client, {_KERNEL: 1})
            with pytest.raises(LocalProtocolError, match="inside 'async with'"):
                await pool.start_session()
            async with pool:
                pass
            with pytest.raises(LocalProtocolError, match="inside 'async with'"):
                await pool.wait_ready()
            with pytest.raises(LocalProtocolError, match="entered only once"):
                async with pool:
                    pass
