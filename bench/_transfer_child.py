"""Child process of ``bench.transfer``: 1 GiB up and down, with its own peak RSS.

Usage: ``python -m bench._transfer_child SOURCE DESTINATION SIZE`` with ``BENCH_URL``,
``BENCH_TOKEN`` and ``BENCH_SHA256`` (the source's digest) in the environment. Prints
one JSON line: seconds, peak RSS over baseline and verification per direction.

The upload streams ``SOURCE`` in 1 MiB reads; the download streams into
``DESTINATION`` (written atomically by ``Session.download_to``), whose sha256 is then
computed from disk. Peak RSS is reset before each direction, after a warm-up that
loads every code path, so the figure is what the transfer itself needed.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator

import anyio

from jupyter_interp.client import Client

from ._harness import peak_rss_over_baseline, reset_peak_rss

READ_SIZE = 1024 * 1024


async def _read(path: str) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while block := await handle.read(READ_SIZE):
            yield block


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(READ_SIZE):
            digest.update(block)
    return digest.hexdigest()


async def _run(source: str, destination: str, size: int) -> dict[str, object]:
    expected = os.environ["BENCH_SHA256"]
    figures: dict[str, object] = {}
    client = Client(os.environ["BENCH_URL"], token=os.environ["BENCH_TOKEN"])
    async with client, client.session() as session:
        await session.upload("warm.bin", os.urandom(64 * 1024))
        await session.download_to("warm.bin", destination)
        gc.collect()

        baseline = reset_peak_rss()
        started = time.perf_counter()
        committed = await session.upload("big.bin", _read(source))
        figures["upload_seconds"] = time.perf_counter() - started
        figures["upload_peak_rss"] = peak_rss_over_baseline(baseline)
        figures["upload_verified"] = committed.sha256 == expected and committed.size == size

        gc.collect()
        baseline = reset_peak_rss()
        started = time.perf_counter()
        await session.download_to("big.bin", destination)
        figures["download_seconds"] = time.perf_counter() - started
        figures["download_peak_rss"] = peak_rss_over_baseline(baseline)
        figures["download_verified"] = _sha256_of(destination) == expected
        await session.files.delete("big.bin")
    return figures


def main() -> int:
    source, destination, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    figures = anyio.run(_run, source, destination, size)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
