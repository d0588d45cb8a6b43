"""Shared fixtures: every async test runs on asyncio and on trio, explicitly.

The anyio plugin's own ``anyio_backend`` silently drops a backend that fails to
import; pinning both here makes a missing trio fail loudly instead.

Hypothesis runs without its wall-clock checks (the 200 ms deadline per example, the
"too slow" health check): on 2 cores shared with benchmarks and kernels, an example
that takes longer says nothing about the code (the suite failed that way under load).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "jupyter-interp", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("jupyter-interp")


@pytest.fixture(params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
