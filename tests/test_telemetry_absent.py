"""Without the ``otel`` extra, instrumentation is inert and imports no OpenTelemetry code.

Run in a fresh interpreter where ``import opentelemetry`` fails, as it does when the
extra is not installed.
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


def test_hooks_are_no_ops_without_the_api() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "inert\n"
