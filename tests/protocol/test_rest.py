"""protocol.rest: request builders, id validation and the parsers' error mapping.

Bodies are what Jupyter Server 2.21 sent on loopback (captured with curl) and what the
Kernel Gateway / Enterprise Gateway ``JSONErrorsMixin`` writes (``reason`` + ``message``,
plus ``traceback`` for exceptions that are not ``HTTPError``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

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
    LocalProtocolError,
    NotFoundError,
    RemoteProtocolError,
    ResourceLimitError,
    ServerError,
)
from jupyter_interp.protocol import rest
from jupyter_interp.protocol.rest import ApiStatus, HttpRequest, KernelModel, KernelSpec

KID = "cf9c86e1-b641-469d-b8ad-0dc7c20b17cc"
TOKEN = "secret-tok-5f1c"

KERNEL_MODEL: dict[Any, Any] = {
    "id": KID,
    "name": "python3",
    "last_activity": "2026-11-27T11:25:23.870479Z",
    "execution_state": "starting",
    "connections": 0,
}
PYTHON3_SPEC = {
    "name": "python3",
    "spec": {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "env": {},
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": True, "supported_encryption": ["curve"]},
        "kernel_protocol_version": "5.5",
    },
    "resources": {
        "logo-svg": "/kernelspecs/python3/logo-svg.svg",
        "logo-64x64": "/kernelspecs/python3/logo-64x64.png",
    },
}
KERNELSPECS = {"default": "python3", "kernelspecs": {"python3": PYTHON3_SPEC}}
HTML_404 = (
    b'<!DOCTYPE HTML><html><body class="" data-jupyter-api-token="' + TOKEN.encode() + b'">'
    b"<h1>404 : Not Found</h1></body></html>"
)
NO_SUCH_KERNEL_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File ".../jupyter_client/kernelspec.py", line 285, in get_kernel_spec\n'
    "    raise NoSuchKernel(kernel_name)\n"
    "jupyter_client.kernelspec.NoSuchKernel: No such kernel named nope\n"
)
EG_TIMEOUT_REASON = (
    f"KernelID: '{KID}' launch timeout due to: Waited too long (30.0s) to get connection file"
)

Parser = Callable[[int, Any], object]
ALL_PARSERS: list[Parser] = [
    rest.parse_api_status,
    rest.parse_list_kernels,
    rest.parse_get_kernel,
    rest.parse_start_kernel,
    rest.parse_restart_kernel,
    rest.parse_delete_kernel,
    rest.parse_interrupt_kernel,
    rest.parse_list_kernelspecs,
    rest.parse_get_kernelspec,
]


def body(value: object) -> bytes:
    return json.dumps(value).encode()


# --------------------------------------------------------------------------- builders


@pytest.mark.parametrize(
    ("request_", "method", "path", "success", "idempotent"),
    [
        (rest.api_status(), "GET", "api", {200}, True),
        (rest.list_kernels(), "GET", "api/kernels", {200}, True),
        (rest.get_kernel(KID), "GET", f"api/kernels/{KID}", {200}, True),
        (rest.delete_kernel(KID), "DELETE", f"api/kernels/{KID}", {200, 204}, True),
        (rest.interrupt_kernel(KID), "POST", f"api/kernels/{KID}/interrupt", {200, 204}, False),
        (rest.restart_kernel(KID), "POST", f"api/kernels/{KID}/restart", {200}, False),
        (rest.list_kernelspecs(), "GET", "api/kernelspecs", {200}, True),
        (rest.get_kernelspec("ir"), "GET", "api/kernelspecs/ir", {200}, True),
        (rest.start_kernel("python3"), "POST", "api/kernels", {200, 201}, False),
    ],
)
def test_builders(
    request_: HttpRequest, method: str, path: str, success: set[int], idempotent: bool
) -> None:
    assert request_.method == method
    assert request_.path == path
    assert request_.success == success
    assert request_.idempotent is idempotent
    if method != "POST" or path != "api/kernels":
        assert request_.json is None
        assert request_.encode_body() is None


def test_start_kernel_body() -> None:
    request = rest.start_kernel(
        "python3", env={"KERNEL_USERNAME": "bob", "KERNEL_LAUNCH_TIMEOUT": "40"}, path="work"
    )
    assert json.loads(request.encode_body() or b"") == {
        "name": "python3",
        "env": {"KERNEL_USERNAME": "bob", "KERNEL_LAUNCH_TIMEOUT": "40"},
        "path": "work",
    }
    assert rest.start_kernel(None).json == {}
    assert rest.start_kernel(None).encode_body() == b"{}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "py 3"},
        {"name": "../etc"},
        {"name": ""},
        {"name": 3},
        {"env": {"KERNEL_X": 1}},
        {"env": {1: "x"}},
        {"env": {"": "x"}},
        {"env": {"A=B": "x"}},
        {"env": {"KERNEL_X": "a\0b"}},
        {"env": {"KERNEL_\0": "x"}},
        {"path": "a\0b"},
        {"path": 7},
    ],
)
def test_start_kernel_rejects_bad_input(kwargs: dict[str, Any]) -> None:
    name = kwargs.pop("name", "python3")
    with pytest.raises(LocalProtocolError):
        rest.start_kernel(name, **kwargs)


BAD_IDS = [
    "",
    "abc",
    "a-b-c-d",
    "a-b-c-d-e-f",
    "../../api/kernels",
    "a-b-c-d-e/../x",
    "a-b-c-d-e\n",
    "a-b-c-d-e?x=1",
    "é-b-c-d-e",
    " a-b-c-d-e",
]


@pytest.mark.parametrize("kernel_id", BAD_IDS)
@pytest.mark.parametrize(
    "builder",
    [rest.get_kernel, rest.delete_kernel, rest.interrupt_kernel, rest.restart_kernel],
)
def test_kernel_id_validation(builder: Callable[[str], HttpRequest], kernel_id: str) -> None:
    with pytest.raises(LocalProtocolError, match="UUID shape"):
        builder(kernel_id)


def test_kernel_id_must_be_a_string() -> None:
    with pytest.raises(LocalProtocolError):
        rest.get_kernel(None)  # type: ignore[arg-type]


@given(st.text())
def test_kernel_paths_stay_in_their_route(kernel_id: str) -> None:
    try:
        request = rest.interrupt_kernel(kernel_id)
    except LocalProtocolError:
        return
    assert request.path.split("/") == ["api", "kernels", kernel_id, "interrupt"]


@pytest.mark.parametrize("name", ["", "a/b", "..", "x y", "ü"])
def test_kernelspec_name_validation(name: str) -> None:
    with pytest.raises(LocalProtocolError, match="kernelspec name"):
        rest.get_kernelspec(name)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("BREW", "api"),
        ("GET", "/api"),
        ("GET", ""),
        ("GET", "api//kernels"),
        ("GET", "api/../x"),
        ("GET", "./api"),
        ("GET", "api?token=x"),
        ("GET", "api#x"),
        ("GET", "api/ker nels"),
        ("GET", "api\\x"),
        ("GET", 5),
    ],
)
def test_http_request_validation(method: str, path: str) -> None:
    with pytest.raises(LocalProtocolError):
        HttpRequest(method=method, path=path)


def test_http_request_idempotence_and_encoding() -> None:
    assert HttpRequest(method="HEAD", path="api").idempotent
    assert not HttpRequest(method="PUT", path="api/contents/a.txt").idempotent
    assert not HttpRequest(method="PATCH", path="api/sessions/x").idempotent
    posted = HttpRequest(method="POST", path="api/sessions", json={"path": "é"})
    assert posted.encode_body() == b'{"path": "\\u00e9"}'
    with pytest.raises(LocalProtocolError, match="JSON"):
        HttpRequest(method="POST", path="api", json={"x": object()}).encode_body()
    with pytest.raises(LocalProtocolError, match="JSON"):
        HttpRequest(method="POST", path="api", json={"x": float("nan")}).encode_body()


def test_auth_headers() -> None:
    assert rest.auth_headers(None) == {}
    assert rest.auth_headers("") == {}
    assert rest.auth_headers(TOKEN) == {"Authorization": f"token {TOKEN}"}


@pytest.mark.parametrize("token", [f"{TOKEN}\r\nX-Evil: 1", f"{TOKEN}\0", f"{TOKEN}\x7f"])
def test_auth_headers_rejects_control_characters_without_echoing(token: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        rest.auth_headers(token)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)


# --------------------------------------------------------------------------- success


def test_parse_api_status_all_servers() -> None:
    assert rest.parse_api_status(200, b'{"version": "2.21.1"}') == ApiStatus(version="2.21.1")
    eg = rest.parse_api_status(200, body({"version": "1.24.0", "gateway_version": "3.2.3"}))
    assert eg == ApiStatus(version="1.24.0", gateway_version="3.2.3")


def test_parse_kernel_models() -> None:
    model = rest.parse_start_kernel(201, body(KERNEL_MODEL))
    assert model == KernelModel(
        id=KID,
        name="python3",
        execution_state="starting",
        last_activity="2026-11-27T11:25:23.870479Z",
        connections=0,
    )
    assert rest.parse_get_kernel(200, body(KERNEL_MODEL)) == model
    assert rest.parse_restart_kernel(200, {**KERNEL_MODEL}) == model
    pending = rest.parse_start_kernel(201, {**KERNEL_MODEL, "reason": "launch failed"})
    assert pending.reason == "launch failed"
    assert rest.parse_start_kernel(201, {**KERNEL_MODEL, "reason": ""}).reason is None
    minimal = rest.parse_get_kernel(200, {"id": KID, "name": "ir"})
    assert (minimal.execution_state, minimal.last_activity, minimal.connections) == (None, None, 0)


@pytest.mark.parametrize(
    "raw", [body([KERNEL_MODEL]), json.dumps([KERNEL_MODEL]), bytearray(body([KERNEL_MODEL]))]
)
def test_parse_list_kernels_accepts_raw_forms(raw: object) -> None:
    assert rest.parse_list_kernels(200, raw) == (rest.parse_get_kernel(200, KERNEL_MODEL),)
    assert rest.parse_list_kernels(200, memoryview(b"[]")) == ()


@pytest.mark.parametrize("parser", [rest.parse_delete_kernel, rest.parse_interrupt_kernel])
@pytest.mark.parametrize("status", [204, 200])
def test_parse_no_content(parser: Callable[[int, object], None], status: int) -> None:
    parser(status, b"")
    parser(status, b"not json either")  # the body of a success is ignored


def test_parse_kernelspecs() -> None:
    specs = rest.parse_list_kernelspecs(200, body(KERNELSPECS))
    assert specs.default == "python3"
    spec = specs.specs["python3"]
    assert spec == rest.parse_get_kernelspec(200, body(PYTHON3_SPEC))
    assert spec.language == "python"
    assert spec.display_name == "Python 3 (ipykernel)"
    assert spec.interrupt_mode == "signal"
    assert spec.argv[:3] == ("python", "-m", "ipykernel_launcher")
    assert spec.metadata["debugger"] is True
    assert spec.resources["logo-svg"] == "/kernelspecs/python3/logo-svg.svg"


def test_parse_kernelspec_defaults_and_key_as_name() -> None:
    sparse = {"kernelspecs": {"bash": {"spec": {"language": "bash"}}}, "default": None}
    specs = rest.parse_list_kernelspecs(200, sparse)
    assert specs.default is None
    assert specs.specs["bash"] == KernelSpec(name="bash", language="bash", display_name="bash")
    bare = rest.parse_get_kernelspec(200, {"name": "x", "spec": {}})
    assert (bare.language, bare.interrupt_mode, bare.argv, bare.env) == ("", "signal", (), {})


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
