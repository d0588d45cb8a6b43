"""Target 3: file transfer through kernel code against the Contents API, and 1 GiB.

Method, part 1 (speed): one private Jupyter Server; per round, interleaved with
rotating order, 50 MB of random bytes go up and come down once by each contender:

* ``jupyter_interp``: ``Session.upload`` / ``Session.download`` (kernel-side snippets,
  chunked, sha256-verified, atomic; on ipykernel each upload chunk is the raw binary
  buffer of its execute_request);
* ``contents_api``: one ``PUT api/contents/<path>`` with the base64 body, one
  ``GET api/contents/<path>?format=base64`` (httpx, kept-alive client), as a
  Jupyter-Server-only client would do it.

Speed is bytes per second of each call; the target is ours >= 1.0x the Contents API in
each direction (median of the rounds).

Part 2 (size): a child process (``bench._transfer_child``) uploads a 1 GiB file streamed
from disk and downloads it back to disk; both ends are checked against the sha256 of
the source, and the child's peak RSS over its baseline must stay <= 64 MiB each way.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import anyio
import anyio.to_thread
import httpx

from jupyter_interp.client import Client
from jupyter_interp.session import Session

from ._harness import Options, Report, interleave, jupyter_server, parse_options, run_child

SPEED_RATIO = 1.0
RSS_LIMIT = 64 * 1024 * 1024
MIB = 1024 * 1024


async def _contents_put(http: httpx.AsyncClient, path: str, data: bytes) -> None:
    body = {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}
    response = await http.put(f"api/contents/{path}", json=body)
    response.raise_for_status()


async def _contents_get(http: httpx.AsyncClient, path: str) -> bytes:
    response = await http.get(
        f"api/contents/{path}", params={"type": "file", "format": "base64", "content": "1"}
    )
    response.raise_for_status()
    return base64.b64decode(response.json()["content"])


async def _speed(
    report: Report, session: Session, http: httpx.AsyncClient, size: int, rounds: int
) -> None:
    payload = os.urandom(size)

    async def ours_down() -> None:
        if await session.download("ours.bin") != payload:
            raise RuntimeError("jupyter_interp download returned different bytes")

    async def contents_down() -> None:
        if await _contents_get(http, "contents.bin") != payload:
            raise RuntimeError("Contents API download returned different bytes")

    uploads = await interleave(
        {
            "jupyter_interp": lambda: session.upload("ours.bin", payload),
            "contents_api": lambda: _contents_put(http, "contents.bin", payload),
        },
        rounds=rounds,
        warmup=1,
    )
    downloads = await interleave(
        {"jupyter_interp": ours_down, "contents_api": contents_down}, rounds=rounds, warmup=1
    )
    megabytes = size / 1e6
    for direction, samples in (("upload", uploads), ("download", downloads)):
        medians = {
            name: report.timing(f"{direction}_{megabytes:g}MB.{name}", values).median
            for name, values in samples.items()
        }
        speeds = {name: size / seconds / 1e6 for name, seconds in medians.items()}
        for name, speed in speeds.items():
            report.figure(f"{direction}_{megabytes:g}MB.{name}.speed", speed, "MB/s")
        ratio = speeds["jupyter_interp"] / speeds["contents_api"]
        report.figure(f"{direction}_{megabytes:g}MB.ratio_vs_contents", ratio, "x")
        report.target(
            f"3 {megabytes:g} MB {direction} speed >= {SPEED_RATIO}x the Contents API",
            ratio >= SPEED_RATIO,
            f"{ratio:.2f}x ({speeds['jupyter_interp']:.1f} vs {speeds['contents_api']:.1f} MB/s)",
        )


def _write_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for start in range(0, size, MIB):
            block = os.urandom(min(MIB, size - start))
            digest.update(block)
            handle.write(block)
    return digest.hexdigest()


async def _big(report: Report, url: str, token: str, size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as workdir:
        source = Path(workdir) / "source.bin"
        sha256 = await anyio.to_thread.run_sync(_write_random_file, source, size)
        figures = await run_child(
            "bench._transfer_child",
            [str(source), str(Path(workdir) / "back.bin"), str(size)],
            env={"BENCH_URL": url, "BENCH_TOKEN": token, "BENCH_SHA256": sha256},
            timeout=1800,
        )
    label = f"{size / MIB:g}MiB"
    for direction in ("upload", "download"):
        seconds, peak = figures[f"{direction}_seconds"], figures[f"{direction}_peak_rss"]
        report.figure(f"{direction}_{label}.seconds", seconds, "s")
        report.figure(f"{direction}_{label}.speed", size / seconds / 1e6, "MB/s")
        report.figure(f"{direction}_{label}.peak_rss_over_baseline", peak / MIB, "MiB")
        report.target(
            f"3 {label} {direction} sha256-verified, client peak RSS <= 64 MiB over baseline",
            figures[f"{direction}_verified"] and peak <= RSS_LIMIT,
            f"verified={figures[f'{direction}_verified']}, peak +{peak / MIB:.1f} MiB",
        )


async def _run(options: Options) -> None:
    report = Report("transfer", smoke=options.smoke)
    if options.smoke:
        speed_size, rounds, big_size = 1_000_000, 1, 8 * MIB
    else:
        speed_size, rounds, big_size = 50_000_000, 5, 1024 * MIB
    async with jupyter_server() as server:
        headers = {"Authorization": f"token {server.token}"}
        http_client = httpx.AsyncClient(
            base_url=server.url, headers=headers, timeout=600, trust_env=False
        )
        async with (
            http_client as http,
            Client(server.url, token=server.token) as client,
            client.session() as session,
        ):
            await _speed(report, session, http, speed_size, rounds)
        await _big(report, server.url, server.token, big_size)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(__doc__ or "", argv)
    anyio.run(_run, options, backend=options.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
