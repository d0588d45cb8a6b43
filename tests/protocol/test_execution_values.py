"""Values shown as ``display_data`` (IRkernel): which displays become the result.

IRkernel publishes a cell's visible value as ``display_data`` with ``text/plain`` (and
HTML, Markdown, LaTeX); its plots carry ``image/png`` and the text "plot without title";
``IRdisplay::display_html`` and friends carry no ``text/plain``. A tracker made with
``values_as_displays`` takes the value for its result; any other tracker never does.
"""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_interp.protocol.events import DisplayData, ExecuteResult
from jupyter_interp.protocol.execution import ExecutionTracker
from jupyter_interp.protocol.kernel_output import shows_values_as_displays
from jupyter_interp.protocol.messages import Message
from jupyter_interp.protocol.result import ExecutionResult
from tests.protocol.kernel_messages import FakeKernel, client_factory

from .test_execution import feed, finished

_VALUE = {"text/plain": "[1] 42", "text/html": "42", "text/markdown": "42"}
_PLOT: dict[str, Any] = {"text/plain": "plot without title", "image/png": "iVBOR"}
_PLOT_METADATA = {"image/png": {"width": 420, "height": 420}}


def run(displays: list[dict[str, Any]], *, values_as_displays: bool) -> ExecutionResult:
    """One IRkernel-shaped execution publishing ``displays`` (``data``, ``metadata``,
    ``display_id`` keyword arguments of ``FakeKernel.display_data``)."""
    request = client_factory().execute_request("cell")
    tracker = ExecutionTracker(request, values_as_displays=values_as_displays)
    kernel = FakeKernel()
    messages: list[Message] = [kernel.status(request, "busy"), kernel.execute_input(request, 3)]
    messages += [kernel.display_data(request, **display) for display in displays]
    messages += [kernel.execute_reply(request, execution_count=3), kernel.status(request, "idle")]
    return finished(feed(tracker, messages))


def test_a_value_display_is_the_result_and_an_execute_result_output() -> None:
    result = run([{"data": _VALUE}], values_as_displays=True)
    assert (result.result, result.execution_count) == ("[1] 42", 3)
    assert [(o.kind, dict(o.data)) for o in result.outputs] == [("execute_result", _VALUE)]


def test_the_event_is_an_execute_result() -> None:
    request = client_factory().execute_request("6 * 7")
    tracker, kernel = ExecutionTracker(request, values_as_displays=True), FakeKernel()
    events = tracker.receive(kernel.display_data(request, _VALUE))
    assert events == [ExecuteResult(msg_id=request.msg_id, execution_count=None, data=_VALUE)]


def test_the_last_of_several_values_is_the_result_and_a_plot_after_it_is_not() -> None:
    # ``1; plot(1:3); 2``: both values, then the plot IRkernel sends when the cell ends
    displays: list[dict[str, Any]] = [
        {"data": {"text/plain": "[1] 1"}},
        {"data": {"text/plain": "[1] 2"}},
    ]
    displays.append({"data": _PLOT, "metadata": _PLOT_METADATA})
    result = run(displays, values_as_displays=True)
    assert result.result == "[1] 2"
    assert [o.kind for o in result.outputs] == ["execute_result", "execute_result", "display_data"]


@pytest.mark.parametrize(
    "display",
    [
        {"data": _PLOT, "metadata": _PLOT_METADATA},  # plot(1:3)
        {"data": {"text/plain": "p", "application/pdf": "JVBE"}},  # a PDF plot
        {"data": {"text/html": "<b>x</b>"}},  # IRdisplay::display_html
        {"data": {"text/plain": "x"}, "display_id": "d1"},  # an updatable display
    ],
    ids=["png-plot", "pdf-plot", "html", "display-id"],
)
def test_genuine_displays_are_not_values(display: dict[str, Any]) -> None:
    result = run([display], values_as_displays=True)
    assert result.result is None
    assert [o.kind for o in result.outputs] == ["display_data"]


def test_no_value_leaves_the_result_empty() -> None:  # ``x <- 1``, ``invisible(x)``
    assert run([], values_as_displays=True).result is None


def test_other_kernels_never_take_a_display_for_the_result() -> None:
    request = client_factory().execute_request("display(1)")
    tracker, kernel = ExecutionTracker(request), FakeKernel()
    events = tracker.receive(kernel.display_data(request, _VALUE))
    assert [type(event) for event in events] == [DisplayData]
    assert run([{"data": _VALUE}], values_as_displays=False).result is None


@pytest.mark.parametrize(
    ("implementation", "values"),
    [
        ("IRkernel", True),
        ("ipython", False),
        ("xeus-r", False),
        ("Deno kernel", False),
        (7, False),
        ([], False),
    ],
)
def test_shows_values_as_displays_names_irkernel(implementation: object, values: bool) -> None:
    assert shows_values_as_displays({"implementation": implementation}) is values
    assert shows_values_as_displays({}) is False
