"""Idle culling and the session cap of the provider, offline: settings and bookkeeping.

What needs a server (kernels stopped when idle, starts refused at the cap, across
replicas) is in ``tests/integration/test_provider_lifetime.py``.
"""

from __future__ import annotations

import pytest

from jupyter_interp.errors import LocalProtocolError
from jupyter_interp.provider.config import DEFAULT_IDLE_TIMEOUT, ProviderSettings
from jupyter_interp.provider.errors import SessionLimitReached
from jupyter_interp.provider.lifetime import Usage


def test_idle_timeout_and_max_sessions_parse_from_yaml_strings() -> None:
    default, _ = ProviderSettings.from_keywords({})
    given, _ = ProviderSettings.from_keywords(
        {"idle_timeout": "600", "max_sessions": "20", "output_notes": "false"}
    )
    disabled, _ = ProviderSettings.from_keywords({"idle_timeout": "none", "max_sessions": ""})

    assert (default.idle_timeout, default.max_sessions, default.output_notes) == (
        DEFAULT_IDLE_TIMEOUT,
        None,
        True,
    )
    assert (given.idle_timeout, given.max_sessions, given.output_notes) == (600.0, 20, False)
    assert (disabled.idle_timeout, disabled.max_sessions) == (None, None)


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("idle_timeout", "-1"),
        ("idle_timeout", "soon"),
        ("max_sessions", "0"),
        ("max_sessions", "x"),
    ],
)
def test_bad_lifetime_values_fail_at_construction(keyword: str, value: str) -> None:
    with pytest.raises(LocalProtocolError, match=keyword):
        ProviderSettings.from_keywords({keyword: value})


def test_the_cap_is_a_value_error_that_names_the_setting() -> None:
    refused = SessionLimitReached(3)

    assert isinstance(refused, ValueError)
    assert "limit of 3 sessions (max_sessions)" in str(refused)


@pytest.mark.anyio
async def test_usage_counts_calls_in_flight_and_the_last_use() -> None:
    usage = Usage()

    with usage.using("s"), usage.using("s"):
        during = (usage.busy("s"), usage.idle_for("s"))
    after = usage.idle_for("s")
    usage.forget("s")

    assert during == (True, None)
    assert after is not None
    assert 0 <= after < 60
    assert usage.idle_for("s") is None
    assert usage.idle_for("never-used") is None
    assert not usage.busy("s")
