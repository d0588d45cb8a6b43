"""StopSignal: a pausing task is stopped without cancellation; a busy one is not."""

from __future__ import annotations

import gc

import anyio
import pytest

from jupyter_interp.io.stop_signal import StopSignal

pytestmark = pytest.mark.anyio


async def test_a_pause_without_a_stop_lasts_its_time_and_says_go_on() -> None:
    signal = StopSignal()
    with anyio.fail_after(5):
        assert await signal.pause(0.01)
    assert not signal.stopped


async def test_a_stop_ends_a_long_pause_at_once_and_says_it_ends_by_itself() -> None:
    signal = StopSignal()
    outcomes: list[bool] = []

    async def periodic() -> None:
        while await signal.pause(3600):
            outcomes.append(True)
        outcomes.append(False)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(periodic)
            await anyio.wait_all_tasks_blocked()
            assert signal.stop()
    assert outcomes == [False]
    assert signal.stopped


async def test_a_stop_while_the_task_acts_says_cancel_and_later_pauses_end_at_once() -> None:
    signal = StopSignal()
    acting = anyio.Event()
    release = anyio.Event()

    async def periodic() -> None:
        while await signal.pause(0):
            acting.set()
            await release.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(periodic)
            await acting.wait()
            assert not signal.stop()  # mid-action: the owner must cancel it to stop at once
            release.set()  # not cancelled here: its next pause ends the loop
    assert not await signal.pause(3600)


async def test_a_task_stopped_by_the_signal_leaves_no_reference_cycle() -> None:
    """The reason the signal exists: a cancelled task leaves garbage on asyncio."""
    signal = StopSignal()
    gc.collect()
    gc.disable()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)
        async with anyio.create_task_group() as tg:
            tg.start_soon(signal.pause, 3600)
            await anyio.wait_all_tasks_blocked()
            assert signal.stop()
        gc.collect()
        assert gc.garbage == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
