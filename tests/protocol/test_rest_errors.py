"""REST answers that are not success: error statuses map to the most specific
``ServerError``, malformed bodies to ``RemoteProtocolError``, and any body fuzzed into a
parser yields a typed result or one of our errors.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interp.errors import (
    AuthenticationError,
    JupyterInterpError,
    KernelLaunchError,
    KernelLaunchTimeout,
    KernelNotFound,
    KernelSpecNotFound,
    NotFoundError,
    RemoteProtocolError,
    ResourceLimitError,
    ServerError,
)
from jupyter_interp.protocol import rest

from .test_rest import (
    ALL_PARSERS,
    EG_TIMEOUT_REASON,
    HTML_404,
    KERNEL_MODEL,
    KID,
    NO_SUCH_KERNEL_TRACEBACK,
    TOKEN,
    Parser,
    body,
)

# --------------------------------------------------------------------------- errors


ERROR_CASES = [
    # Jupyter Server: missing/wrong token, XSRF without token, unknown ids and names
    (rest.parse_list_kernels, 403, b'{"message": "Forbidden", "reason": null}',
     ServerError, "kernel listing failed: Forbidden (wrong token, or a gateway with"),
    (rest.parse_start_kernel, 403, body({"message": "'_xsrf' argument missing from POST",
                                         "reason": None}),
     AuthenticationError, "kernel start failed: the server refused our credentials (wrong or no"),
    (rest.parse_get_kernel, 404, body({"message": f"Kernel does not exist: {KID}",
                                       "reason": None}),
     KernelNotFound, f"Kernel does not exist: {KID} (HTTP 404)"),
    (rest.parse_delete_kernel, 404, body({"message": f"Kernel does not exist: {KID}"}),
     KernelNotFound, "Kernel does not exist"),
    (rest.parse_interrupt_kernel, 404, b"", KernelNotFound, "Not Found"),
    (rest.parse_restart_kernel, 404, HTML_404, KernelNotFound, "kernel request failed"),
    (rest.parse_get_kernelspec, 404, body({"message": "Kernel spec nope not found",
                                           "reason": None}),
     KernelSpecNotFound, "Kernel spec nope not found"),
    (rest.parse_start_kernel, 500, body({"message": "Unhandled error", "reason": None,
                                         "traceback": ""}),
     KernelLaunchError, "kernel start failed: Unhandled error (check the kernelspec name"),
    (rest.parse_restart_kernel, 500, body({"message": "Exception restarting kernel",
                                           "reason": None}),
     ServerError, "Exception restarting kernel"),
    (rest.parse_start_kernel, 400, body({"message": "Invalid JSON in body of request",
                                         "reason": None}),
     ServerError, "Invalid JSON in body of request (HTTP 400)"),
    # Kernel Gateway / Enterprise Gateway (JSONErrorsMixin)
    (rest.parse_api_status, 401, body({"reason": "Unauthorized", "message": ""}),
     AuthenticationError, "Unauthorized (HTTP 401)"),
    (rest.parse_list_kernels, 403, body({"reason": "Forbidden", "message": "Forbidden"}),
     ServerError, "KG_LIST_KERNELS/EG_LIST_KERNELS off"),
    (rest.parse_start_kernel, 403, body({"reason": "Forbidden", "message": "Resource Limit"}),
     ResourceLimitError, "Resource Limit; Forbidden"),
    (rest.parse_start_kernel, 403, body({
        "reason": "Forbidden",
        "message": "A max kernels limit has been set to 2 and there are currently 2 active "
                   "and pending kernels."}),
     ResourceLimitError, "A max kernels limit has been set to 2"),
    (rest.parse_start_kernel, 403, body({
        "reason": "A max kernels per user limit has been set to 1 and user 'bob' currently "
                  "has 1 active and pending kernel.", "message": ""}),
     ResourceLimitError, "user 'bob'"),
    (rest.parse_start_kernel, 403, body({
        "reason": "User 'bob' is not authorized to start kernel 'Spark - Python'. Ensure "
                  "KERNEL_USERNAME is set to an appropriate value and retry the request.",
        "message": ""}),
     AuthenticationError, "User 'bob' is not authorized to start kernel 'Spark - Python'"),
    (rest.parse_start_kernel, 500, body({"reason": "Internal Server Error",
                                         "message": "Unknown server error",
                                         "traceback": NO_SUCH_KERNEL_TRACEBACK}),
     KernelSpecNotFound, "NoSuchKernel: No such kernel named nope"),
    (rest.parse_start_kernel, 500, body({"reason": EG_TIMEOUT_REASON, "message": ""}),
     KernelLaunchTimeout, "launch timeout due to: Waited too long"),
    (rest.parse_start_kernel, 503, body({
        "reason": f"KernelID: '{KID}' launch timeout due to: YARN resources unavailable",
        "message": ""}),
     KernelLaunchTimeout, "YARN resources unavailable"),
    (rest.parse_start_kernel, 500, body({
        "reason": "Internal Server Error", "message": "Unknown server error",
        "traceback": "Traceback ...\nTimeoutError: Kernel launch timed out\n"}),
     KernelLaunchTimeout, "TimeoutError: Kernel launch timed out"),
    (rest.parse_start_kernel, 502, b"<html>Bad Gateway</html>",
     KernelLaunchError, "kernel start failed: Bad Gateway (check"),
    (rest.parse_get_kernelspec, 500, body({"reason": "Internal Server Error",
                                           "message": "Unknown server error",
                                           "traceback": NO_SUCH_KERNEL_TRACEBACK}),
     ServerError, "No such kernel named nope"),
    # wrong base URL and odd statuses
    (rest.parse_api_status, 404, HTML_404, NotFoundError, "is the base URL right?"),
    (rest.parse_list_kernelspecs, 404, body({"reason": "Not Found", "message": ""}),
     NotFoundError, "kernelspec listing failed: Not Found"),
    (rest.parse_list_kernels, 302, b"", ServerError, "Found (HTTP 302)"),
    (rest.parse_get_kernel, 299, b"", ServerError, "unexpected status (HTTP 299)"),
    (rest.parse_get_kernel, 424, b"{}", ServerError, "Failed Dependency (HTTP 424)"),
]  # fmt: skip


@pytest.mark.parametrize(("parser", "status", "raw", "error", "text"), ERROR_CASES)
def test_error_mapping(
    parser: Parser, status: int, raw: bytes, error: type[ServerError], text: str
) -> None:
    with pytest.raises(ServerError) as info:
        parser(status, raw)
    assert type(info.value) is error
    assert info.value.status == status
    assert text in str(info.value)
    assert TOKEN not in str(info.value)


def test_launch_timeout_is_also_a_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        rest.parse_start_kernel(500, {"reason": EG_TIMEOUT_REASON, "message": ""})


def test_error_text_is_bounded_and_single_line() -> None:
    noisy = {"message": "x\n\x1b[31m" + "y" * 10_000, "reason": "r\tr"}
    with pytest.raises(ServerError) as info:
        rest.parse_get_kernel(500, noisy)
    text = str(info.value)
    assert len(text) < 400
    assert text.isprintable()
    assert "..." in text
    assert "r r" in text


def test_error_text_ignores_non_string_fields() -> None:
    with pytest.raises(ServerError) as info:
        rest.parse_get_kernel(500, {"message": 5, "reason": ["x"], "traceback": None})
    assert str(info.value) == "kernel request failed: Internal Server Error (HTTP 500)"


@given(st.text().filter(lambda text: not text.lstrip().startswith("{")))
def test_error_detail_never_quotes_a_body_that_is_not_a_json_object(body: str) -> None:
    assert rest.error_detail(404, body) == "Not Found"
    assert rest.error_detail(404, body.encode()) == "Not Found"


def test_error_detail_quotes_message_reason_and_last_traceback_line_once() -> None:
    body = {"message": "no kernel", "reason": "no kernel", "traceback": "a\nb\nKeyError: k"}
    assert rest.error_detail(404, json.dumps(body)) == "no kernel; KeyError: k"
    assert rest.error_detail(599, b"<html>") == "unexpected status"


# --------------------------------------------------------------------------- malformed


MALFORMED_SUCCESS = [
    (rest.parse_api_status, b"<html>"),
    (rest.parse_api_status, b"\xff\xfe"),
    (rest.parse_api_status, b"[" * 100_000),
    (rest.parse_api_status, b"[]"),
    (rest.parse_api_status, {"version": 2}),
    (rest.parse_api_status, {"version": "1", "gateway_version": 3}),
    (rest.parse_list_kernels, {"kernels": []}),
    (rest.parse_list_kernels, [KERNEL_MODEL, 5]),
    (rest.parse_get_kernel, {**KERNEL_MODEL, "id": "../../x"}),
    (rest.parse_get_kernel, {**KERNEL_MODEL, "id": None}),
    (rest.parse_get_kernel, {**KERNEL_MODEL, "name": None}),
    (rest.parse_get_kernel, {**KERNEL_MODEL, "connections": True}),
    (rest.parse_get_kernel, {**KERNEL_MODEL, "connections": "1"}),
    (rest.parse_get_kernel, {**KERNEL_MODEL, "execution_state": 1}),
    (rest.parse_get_kernel, {**KERNEL_MODEL, 1: "x"}),
    (rest.parse_start_kernel, b""),
    (rest.parse_list_kernelspecs, {"default": "python3"}),
    (rest.parse_list_kernelspecs, {"kernelspecs": {"a": 1}}),
    (rest.parse_list_kernelspecs, {"kernelspecs": {"a": {"name": "a"}}}),
    (rest.parse_get_kernelspec, {"spec": {}}),
    (rest.parse_get_kernelspec, {"name": "a", "spec": {"argv": "python"}}),
    (rest.parse_get_kernelspec, {"name": "a", "spec": {"argv": ["python", 1]}}),
    (rest.parse_get_kernelspec, {"name": "a", "spec": {"env": []}}),
    (rest.parse_get_kernelspec, {"name": "a", "spec": {"metadata": {2: 3}}}),
    (rest.parse_get_kernelspec, {"name": "a", "spec": {}, "resources": "logo"}),
]


@pytest.mark.parametrize(("parser", "raw"), MALFORMED_SUCCESS)
def test_malformed_success_body(parser: Parser, raw: object) -> None:
    status = 201 if parser is rest.parse_start_kernel else 200
    with pytest.raises(RemoteProtocolError):
        parser(status, raw)


# --------------------------------------------------------------------------- fuzz

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = ["id", "name", "version", "spec", "kernelspecs", "default", "message", "reason",
          "traceback", "connections", "argv", "env", "resources", "execution_state"]  # fmt: skip
near_valid = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
bodies = (
    st.binary()
    | st.text()
    | json_values
    | near_valid
    | near_valid.map(lambda value: json.dumps(value).encode())
    | st.lists(near_valid, max_size=3)
)


@settings(max_examples=300)
@given(
    parser=st.sampled_from(ALL_PARSERS),
    status=st.sampled_from([200, 201, 204, 400, 401, 403, 404, 500, 503]) | st.integers(0, 999),
    raw=bodies,
)
def test_parsers_raise_only_library_errors(parser: Parser, status: int, raw: object) -> None:
    try:
        parser(status, raw)
    except JupyterInterpError as exc:
        error: JupyterInterpError = exc
    else:
        return
    if isinstance(error, ServerError):
        assert error.status == status
        assert len(str(error)) < 1100
