"""The retry policy of kernel starts, offline: classification, backoff, the loop.

What needs a server (kernels dead at birth, a 5xx on the start, refusals raised at
once) is in ``tests/integration/test_start_retries.py`` and ``test_start_deaths.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_interp.client.start_retry import (
    Backoff,
    is_transient,
    may_have_started,
    start_with_retries,
    with_kernel_id,
)
from jupyter_interp.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionClosed,
    KernelDied,
    KernelLaunchError,
    KernelLaunchTimeout,
    KernelNotFound,
    KernelSpecNotFound,
    ResourceLimitError,
    TransportTimeout,
)
from jupyter_interp.protocol import rest

_TRANSIENT = [
    KernelDied("died before it answered"),
    KernelNotFound("gone", status=404),
    ConnectionClosed(1006),
    KernelLaunchError("Unhandled error", status=500),
]
_FINAL = [
    AuthenticationError("refused", status=403),
    ResourceLimitError("resource limit", status=403),
    KernelSpecNotFound("no such kernel", status=404),
    KernelLaunchTimeout("timed out", status=500),
    TransportTimeout("read timeout"),
    ConnectError("refused"),
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", _TRANSIENT, ids=lambda e: type(e).__name__)
def test_passing_failures_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize("error", _FINAL, ids=lambda e: type(e).__name__)
def test_real_errors_are_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_only_refusals_say_no_kernel_was_started() -> None:
    refusals = _FINAL[:3]
    assert not any(map(may_have_started, refusals))
    failed_starts = [_TRANSIENT[-1], KernelLaunchTimeout("t"), TransportTimeout("t")]
    assert all(map(may_have_started, failed_starts))


@given(
    base=st.floats(0.001, 10),
    cap=st.floats(0.001, 60),
    retry=st.integers(1, 200),
    draw=st.floats(0, 1, exclude_max=True),
)
def test_backoff_is_bounded_jittered_and_doubling(
    base: float, cap: float, retry: int, draw: float
) -> None:
    backoff = Backoff(base=base, cap=cap)
    ceiling = min(cap, base * 2.0 ** (retry - 1))
    pause = backoff.delay(retry, draw)
    assert ceiling / 2 <= pause <= ceiling
    assert pause <= backoff.delay(retry + 1, draw) or ceiling == cap


@given(
    kernel_id=st.uuids().map(str),
    env=st.dictionaries(
        st.sampled_from(["KERNEL_USERNAME", "KERNEL_ID", "X"]),
        st.text(st.characters(blacklist_characters="\0")),  # a NUL is refused by rest
    ),
)
def test_with_kernel_id_asks_for_the_id_in_body_and_env(
    kernel_id: str, env: dict[str, str]
) -> None:
    request = rest.start_kernel("python3", env=env, path="")
    asked = with_kernel_id(request, kernel_id)
    assert asked.json is not None
    assert asked.json["kernel_id"] == kernel_id
    assert asked.json["env"] == {**env, "KERNEL_ID": kernel_id}
    assert (asked.json["name"], asked.json["path"]) == ("python3", "")
    assert request.json is not None
    assert "kernel_id" not in request.json  # not mutated


class _Attempts:
    """An attempt that fails with ``errors`` in turn, then answers its kernel id."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.ids: list[str] = []

    async def __call__(self, kernel_id: str) -> str:
        self.ids.append(kernel_id)
        if self.errors:
            raise self.errors.pop(0)
        return kernel_id


def _fresh_ids() -> Callable[[], str]:
    count = iter(range(1000))
    return lambda: f"k{next(count)}"


_FAST = Backoff(base=0.001, cap=0.002)


@pytest.mark.anyio
async def test_transient_failures_are_retried_with_fresh_ids() -> None:
    attempts = _Attempts(KernelDied("d"), KernelLaunchError("e", status=500))
    got = await start_with_retries(attempts, attempts=3, kernel_ids=_fresh_ids(), backoff=_FAST)
    assert (got, attempts.ids) == ("k2", ["k0", "k1", "k2"])


@pytest.mark.anyio
async def test_the_last_transient_failure_is_raised_after_the_bound() -> None:
    last = ConnectionClosed(1006)
    attempts = _Attempts(KernelDied("d"), KernelDied("d"), last, KernelDied("never"))
    with pytest.raises(ConnectionClosed) as caught:
        await start_with_retries(attempts, attempts=3, kernel_ids=lambda: "same", backoff=_FAST)
    assert caught.value is last
    assert attempts.ids == ["same"] * 3


@pytest.mark.anyio
@pytest.mark.parametrize("error", _FINAL, ids=lambda e: type(e).__name__)
async def test_real_errors_are_raised_at_once(error: Exception) -> None:
    attempts = _Attempts(error)
    with pytest.raises(type(error)):
        await start_with_retries(attempts, attempts=5, kernel_ids=lambda: "k", backoff=_FAST)
    assert attempts.ids == ["k"]
