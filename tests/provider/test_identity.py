"""Session ids, kernel ids and folders of the provider: checked, derived with a secret.

Offline: the tenancy rules that need no server (which ids are accepted, that nobody can
compute a kernel id or folder without the secret, where the secret comes from). The
rules that need a server (an id in use is refused) are in
``tests/integration/test_provider_tenancy.py``.
"""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_interp.errors import LocalProtocolError
from jupyter_interp.provider import JupyterCodeInterpreterProvider
from jupyter_interp.provider import identity as _provider_identity
from jupyter_interp.provider.config import SECRET_ENV, ProviderSettings
from jupyter_interp.provider.errors import InvalidSessionId, SessionInUse
from jupyter_interp.provider.identity import (
    MAX_SESSION_ID_LENGTH,
    SessionIdentity,
    check_session_id,
    generated_secret,
)

SECRET = "a-secret-of-at-least-sixteen-chars"
#: what a gateway route's one path segment carries unescaped
ROUTE_SAFE = re.compile(r"[A-Za-z0-9._~:@-]+")


@pytest.fixture(autouse=True)
def no_secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)


@given(st.text(min_size=1, max_size=200))
def test_every_session_id_maps_to_a_canonical_uuid4_unrelated_to_it(session_id: str) -> None:
    identity = SessionIdentity(SECRET)
    kernel_id = identity.kernel_id(session_id)
    folder = identity.folder_name(session_id)

    assert str(uuid.UUID(kernel_id)) == kernel_id
    assert uuid.UUID(kernel_id).version == 4
    assert kernel_id != session_id
    assert identity.kernel_id(session_id) == kernel_id  # any replica derives the same
    assert re.fullmatch(r"jupyter-interp-[0-9a-f]{32}", folder)
    assert kernel_id.replace("-", "") not in folder


def test_without_the_secret_nobody_can_compute_a_kernel_id_or_folder() -> None:
    ours, theirs = SessionIdentity(SECRET), SessionIdentity(SECRET + "-other")
    kernel_id = ours.kernel_id("agent-run-42")

    assert theirs.kernel_id("agent-run-42") != kernel_id
    assert theirs.folder_name("agent-run-42") != ours.folder_name("agent-run-42")
    # the earlier, unkeyed derivation (uuid5 of the name) no longer leads anywhere
    namespace = uuid.UUID("f25d2cc3-1a7d-4c9e-8e7a-5d0503a69f1f")
    unkeyed = str(uuid.UUID(bytes=uuid.uuid5(namespace, "agent-run-42").bytes, version=4))
    assert kernel_id != unkeyed
    # a generated id (a UUID v4) is no longer its own kernel id
    generated = str(uuid.uuid4())
    assert ours.kernel_id(generated) != generated
    assert "agent-run-42" not in ours.folder("/tmp/", "agent-run-42")
    assert ours.folder("/tmp/", "x").startswith("/tmp/jupyter-interp-")
    assert SECRET not in repr(ours)


@pytest.mark.parametrize(
    "session_id",
    [
        "agent-run-42",
        "A_b.c~d:e@f",
        "x",
        "x" * MAX_SESSION_ID_LENGTH,
        "0b8e3f5c-2f35-4a4e-9a36-2a4c2f7f6b1e",
    ],
)
def test_ids_that_routes_can_address_are_accepted(session_id: str) -> None:
    assert check_session_id(session_id) == session_id


@pytest.mark.parametrize(
    ("session_id", "why"),
    [
        ("../../evil-sid", "not allowed"),
        ("a/b", "not allowed"),
        ("..", "not allowed"),
        (".", "not allowed"),
        ("with space", "not allowed"),
        ("tab\there", "not allowed"),
        ("nul\x00", "not allowed"),
        ("per%2Fcent", "not allowed"),
        ("q?uery", "not allowed"),
        ("h#sh", "not allowed"),
        ("é", "not allowed"),
        ("x" * (MAX_SESSION_ID_LENGTH + 1), f"at most {MAX_SESSION_ID_LENGTH} characters"),
        (42, "must be a string"),
    ],
)
def test_ids_no_route_can_address_are_refused_as_value_errors(session_id: object, why: str) -> None:
    with pytest.raises(InvalidSessionId, match=why) as refused:
        check_session_id(session_id)

    assert isinstance(refused.value, ValueError)  # the gateway's HTTP 400


@given(st.text(max_size=MAX_SESSION_ID_LENGTH + 10))
def test_an_accepted_id_is_one_path_segment(session_id: str) -> None:
    try:
        check_session_id(session_id)
    except InvalidSessionId:
        return
    assert ROUTE_SAFE.fullmatch(session_id)
    assert session_id.strip(".")
    assert len(session_id) <= MAX_SESSION_ID_LENGTH


def test_an_id_in_use_is_a_value_error_that_says_so() -> None:
    refused = SessionInUse("agent-run-42")

    assert isinstance(refused, ValueError)
    assert "'agent-run-42' is already in use" in str(refused)


def test_the_secret_comes_from_the_keyword_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given_secret, _ = ProviderSettings.from_keywords({"session_secret": SECRET})
    monkeypatch.setenv(SECRET_ENV, SECRET + "-from-env")
    from_env, _ = ProviderSettings.from_keywords({})
    blank, _ = ProviderSettings.from_keywords({"session_secret": ""})
    keyword_wins, _ = ProviderSettings.from_keywords({"session_secret": SECRET})

    assert given_secret.session_secret == SECRET
    assert from_env.session_secret == SECRET + "-from-env"
    assert blank.session_secret == SECRET + "-from-env"
    assert keyword_wins.session_secret == SECRET
    assert SECRET not in repr(given_secret)


@pytest.mark.parametrize("secret", ["short", "x" * 15])
def test_a_short_secret_fails_at_construction_without_showing_it(secret: str) -> None:
    with pytest.raises(LocalProtocolError, match="at least 16 characters") as refused:
        JupyterCodeInterpreterProvider(session_secret=secret)

    assert secret not in str(refused.value)


def test_a_missing_secret_is_generated_once_per_process_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_provider_identity, "_process_secret", None)
    with caplog.at_level(logging.WARNING, logger="jupyter_interp.provider"):
        first = JupyterCodeInterpreterProvider()
        second = JupyterCodeInterpreterProvider()
        configured = JupyterCodeInterpreterProvider(session_secret=SECRET)

    warnings = [r.getMessage() for r in caplog.records if "session_secret" in r.getMessage()]
    assert len(warnings) == 1
    assert "other replicas" in warnings[0]
    secret = generated_secret()
    assert len(secret) >= 32
    assert secret not in warnings[0]
    derive = SessionIdentity(secret).kernel_id
    # both unconfigured instances (a config reload) derive alike; the configured one not
    assert first._keeper.kernel_id("s") == second._keeper.kernel_id("s") == derive("s")
    assert configured._keeper.kernel_id("s") == SessionIdentity(SECRET).kernel_id("s")
