"""Without the ``otel`` extra, or with it and no provider set, instrumentation is inert.

Each case runs in a fresh interpreter: one where ``import opentelemetry`` fails, as it
does when the extra is not installed, and one with the API but no provider.
"""

from __future__ import annotations

import subprocess
import sys

_PROGRAM = """
import sys
sys.modules["opentelemetry"] = None  # what a missing package looks like to import
import jupyter_interp.client, jupyter_interp.pool
from jupyter_interp import telemetry
headers = {"Accept": "application/json"}
telemetry.inject_trace_context(headers)
assert headers == {"Accept": "application/json"}, headers
with telemetry.live_session("python3"), telemetry.session_start("python3", "http://x"):
    telemetry.pool_request("python3", hit=True)
assert telemetry._get() is None
assert not [name for name in sys.modules if name.startswith("opentelemetry.")]
print("inert")
"""


_NO_PROVIDER = """
from jupyter_interp import telemetry
headers = {}
telemetry.inject_trace_context(headers)
assert headers == {} and telemetry._get() is None
print("inert")
"""


def _run(program: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_hooks_are_no_ops_without_the_api() -> None:
    assert _run(_PROGRAM) == "inert\n"


def test_hooks_return_at_once_without_a_provider() -> None:
    assert _run(_NO_PROVIDER) == "inert\n"
