"""A Jupyter Server kernel manager whose launches fail on demand (the tests' 5xx).

Loaded by a test's private server (``--MappingKernelManager.kernel_manager_class``):
while the file ``flaky-starts`` in the server's runtime directory holds a count above
zero, a launch decrements it and fails before any process starts, so the server
answers the start request with its own 500 ("Unhandled error"), as it does when a
launch fails for real (a port taken between pick and bind).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_runtime_dir
from jupyter_server.services.kernels.kernelmanager import ServerKernelManager


def failures_file(runtime_dir: Path) -> Path:
    """Where a server with ``runtime_dir`` reads how many launches are still to fail."""
    return runtime_dir / "flaky-starts"


class FlakyKernelManager(ServerKernelManager):
    """Fails the next launches while ``failures_file`` counts above zero."""

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        counter = failures_file(Path(jupyter_runtime_dir()))
        left = int(counter.read_text()) if counter.exists() else 0
        if left > 0:
            counter.write_text(str(left - 1))
            raise RuntimeError("launch failed on purpose (flaky_kernels)")
        return await super()._async_pre_start_kernel(**kw)
