"""OpenTelemetry on a real session, recorded by the SDK's in-memory exporters.

The SDK is installed as the global provider once for the module (an application
would do the same at start-up); each test reads what it recorded since it began.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jupyter_interp.client import Client
from jupyter_interp.pool import KernelPool
from jupyter_interp.protocol.result import ExecutionStatus

from .conftest import ServerUnderTest
from .provider_harness import provider_for

pytestmark = pytest.mark.anyio

_SPANS = InMemorySpanExporter()
_METRICS = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def sdk() -> Iterator[None]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_SPANS))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[_METRICS]))
    yield
    provider.shutdown()


def _attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def _points(name: str) -> list[Any]:
    data = _METRICS.get_metrics_data()
    if data is None:  # nothing recorded yet
        return []
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def _total(name: str, **attributes: object) -> float:
    return sum(
        float(p.value)
        for p in _points(name)
        if all(p.attributes.get(k) == v for k, v in attributes.items())
    )


async def test_spans_metrics_and_trace_context(client_factory: Callable[..., Client]) -> None:
    _SPANS.clear()
    sent: list[httpx.Headers] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request.headers)

    moved_before = _total("jupyter_interp.transfer.bytes")
    hits_before = _total("jupyter_interp.pool.requests", hit=True)
    tracer = trace.get_tracer("test")
    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        with anyio.fail_after(120), tracer.start_as_current_span("agent step") as step:
            async with (
                client_factory(http_client=http, trace_code=True) as client,
                KernelPool(client, {"python3": 1}) as pool,
            ):
                await pool.wait_ready()
                async with pool.session("python3") as session:
                    await session.execute("print('traced')")
                    await session.upload("telemetry.txt", b"12345")
                    assert await session.download("telemetry.txt") == b"12345"
                    async for _ in session.stream("1 / 0"):
                        pass
                    await session.restart()
                    await session.execute("'after restart'")
                    live = _total(
                        "jupyter_interp.sessions.live", **{"jupyter_interp.kernel.name": "python3"}
                    )

    spans = {span.name: span for span in _SPANS.get_finished_spans()}
    executes = [s for s in _SPANS.get_finished_spans() if s.name == "jupyter_interp.execute"]
    assert [_attrs(s)["jupyter_interp.code"] for s in executes] == [
        "print('traced')",
        "1 / 0",
        "'after restart'",
    ]  # the transfers' own requests are no executions of the user's
    assert [_attrs(s)["jupyter_interp.status"] for s in executes] == ["ok", "error", "ok"]
    assert _attrs(executes[0])["jupyter_interp.output_bytes"] == len("traced\n")
    assert executes[0].parent is not None
    assert executes[0].parent.span_id == step.get_span_context().span_id
    assert _attrs(spans["jupyter_interp.upload"])["jupyter_interp.bytes"] == 5
    assert _attrs(spans["jupyter_interp.upload"])["jupyter_interp.verified"] is True
    assert _attrs(spans["jupyter_interp.download"])["jupyter_interp.route"] in (
        "kernel",
        "files",
    )
    assert "jupyter_interp.restart" in spans
    assert "jupyter_interp.reconnect" in spans
    starts = [s for s in _SPANS.get_finished_spans() if s.name == "jupyter_interp.session.start"]
    assert {_attrs(s)["jupyter_interp.pool.hit"] for s in starts} == {True, False}

    trace_id = format(step.get_span_context().trace_id, "032x")
    assert any(trace_id in headers.get("traceparent", "") for headers in sent)
    assert live >= 1
    assert _total("jupyter_interp.sessions.live", **{"jupyter_interp.kernel.name": "python3"}) == 0
    assert _total("jupyter_interp.pool.requests", hit=True) == hits_before + 1
    assert _total("jupyter_interp.transfer.bytes") == moved_before + 10
    assert sum(p.count for p in _points("jupyter_interp.execute.duration")) >= 3


async def test_provider_starts_are_traced_with_the_server_kind(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    _SPANS.clear()
    provider = provider_for(any_server, tmp_path)
    try:
        with anyio.fail_after(120):
            sid = (await provider.start_session())["session_id"]
            await provider.stop_session(sid)
    finally:
        await provider.close()

    starts = [s for s in _SPANS.get_finished_spans() if s.name == "jupyter_interp.session.start"]
    assert [_attrs(s)["jupyter_interp.server.kind"] for s in starts] == [any_server.kind]
    assert _attrs(starts[0])["jupyter_interp.kernel.name"] == "python3"
    assert _attrs(starts[0])["jupyter_interp.pool.hit"] is False


async def test_a_restart_the_server_made_is_traced(client: Client) -> None:
    _SPANS.clear()
    with anyio.fail_after(120):
        async with client.session() as session:
            died = await session.execute("import os; os._exit(1)")
            after = await session.execute("'back'")

    restarted = [
        s for s in _SPANS.get_finished_spans() if s.name == "jupyter_interp.kernel.restarted"
    ]
    assert died.status in (ExecutionStatus.KERNEL_RESTARTED, ExecutionStatus.KERNEL_DIED)
    assert after.result == "'back'"
    assert len(restarted) == 1
    assert _attrs(restarted[0])["jupyter_interp.kernel.id"] == session.kernel_id
