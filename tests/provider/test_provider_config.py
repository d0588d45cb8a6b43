"""The gateway provider's configuration without a Jupyter server: keywords, the seed
environment, strings from YAML, what fails at construction, and the gateway's type check.
"""

from __future__ import annotations

import abc
import logging
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from jupyter_interp.errors import LocalProtocolError
from jupyter_interp.provider import JupyterCodeInterpreterProvider

from .offline import no_seed_environment, refused_url  # noqa: F401 (an autouse fixture)

GATEWAY_BASE = "agentic_primitives_gateway.primitives.code_interpreter.base"


# -- configuration ------------------------------------------------------------------------


def test_seed_defaults() -> None:
    settings = JupyterCodeInterpreterProvider().settings

    assert settings.base_url == "http://localhost:8888"
    assert settings.token == ""
    assert settings.kernel_name == "python3"
    assert settings.execution_timeout == 30.0
    assert settings.file_root == "/tmp"
    assert settings.max_output_bytes == 64 * 1024
    assert settings.history_limit == 100
    assert settings.cleanup_files is True
    assert settings.stop_sessions_on_close is False
    assert settings.client_config().start_env() == {"KERNEL_LAUNCH_TIMEOUT": "120"}


def test_the_environment_fills_in_missing_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_URL", "http://jupyter.internal:9999")
    monkeypatch.setenv("JUPYTER_TOKEN", "env-token")
    monkeypatch.setenv("JUPYTER_KERNEL", "ir")
    monkeypatch.setenv("JUPYTER_FILE_ROOT", "/data")

    from_env = JupyterCodeInterpreterProvider().settings
    given_url = JupyterCodeInterpreterProvider(base_url="http://given:1").settings

    assert (from_env.base_url, from_env.token, from_env.kernel_name, from_env.file_root) == (
        "http://jupyter.internal:9999",
        "env-token",
        "ir",
        "/data",
    )
    assert given_url.base_url == "http://given:1"
    assert given_url.token == "env-token"


def test_blank_keywords_fall_back_but_a_blank_token_means_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUPYTER_URL", "http://from-env:8888")
    monkeypatch.setenv("JUPYTER_TOKEN", "env-token")

    settings = JupyterCodeInterpreterProvider(
        base_url="", token="", kernel_name="", file_root=""
    ).settings

    assert settings.base_url == "http://from-env:8888"
    assert settings.token == ""
    assert settings.kernel_name == "python3"
    assert settings.file_root == "/tmp"


def test_string_values_from_yaml_are_parsed() -> None:
    provider = JupyterCodeInterpreterProvider(
        execution_timeout="12.5",
        launch_timeout="90",
        request_timeout="7",
        healthcheck_timeout="2",
        max_output_bytes="none",
        history_limit="7",
        cleanup_files="false",
        stop_sessions_on_close="yes",
        verify="false",
        kernel_env='{"KERNEL_NAMESPACE": "agents"}',
        headers='{"X-Team": "blue"}',
        kernel_username="alice",
        stdin_answer="",
    )
    settings = provider.settings
    config = settings.client_config()

    assert settings.execution_timeout == 12.5
    assert settings.history_limit == 7
    assert settings.cleanup_files is False
    assert settings.stop_sessions_on_close is True
    assert config.verify is False
    assert config.request_timeout == 7.0
    assert config.output_budget.max_stream_bytes is None
    assert config.stdin.answer == ""
    assert config.headers == {"X-Team": "blue"}
    assert config.start_env() == {
        "KERNEL_LAUNCH_TIMEOUT": "90",
        "KERNEL_USERNAME": "alice",
        "KERNEL_NAMESPACE": "agents",
    }


def test_native_values_work_too() -> None:
    settings = JupyterCodeInterpreterProvider(
        execution_timeout=5, max_output_bytes=10, kernel_env={"KERNEL_UID": "1000"}, verify=True
    ).settings

    assert settings.execution_timeout == 5.0
    assert settings.max_output_bytes == 10
    assert settings.kernel_env == {"KERNEL_UID": "1000"}
    assert settings.verify is True


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("execution_timeout", "soon"),
        ("execution_timeout", "-1"),
        ("execution_timeout", "inf"),
        ("execution_timeout", True),
        ("launch_timeout", "0"),
        ("history_limit", "0"),
        ("history_limit", "1.5"),
        ("max_output_bytes", "-5"),
        ("cleanup_files", "maybe"),
        ("kernel_env", "[1]"),
        ("kernel_env", '{"KERNEL_UID": 1000}'),
        ("headers", "not json"),
        ("headers", '{"Origin": "http://evil"}'),
        ("base_url", "ftp://files.example"),
        ("base_url", 8888),
        ("file_root", "   "),
        ("verify", "maybe"),
        ("verify", "/nope/ca.pem"),
    ],
)
def test_bad_values_fail_at_construction(keyword: str, value: object) -> None:
    keywords: dict[str, Any] = {keyword: value}
    with pytest.raises(LocalProtocolError):
        JupyterCodeInterpreterProvider(**keywords)


def test_unknown_keywords_are_logged_by_name_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jupyter_interp.provider"):
        JupyterCodeInterpreterProvider(zz_future_option="hunter2", aa_other=1)

    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["ignoring unknown configuration keys: aa_other, zz_future_option"]
    assert "hunter2" not in caplog.text


def test_the_token_stays_out_of_reprs() -> None:
    provider = JupyterCodeInterpreterProvider(token="very-secret-token")

    assert "very-secret-token" not in repr(provider)
    assert "very-secret-token" not in repr(provider.settings)
    assert provider.settings.client_config().token == "very-secret-token"


def test_construction_does_no_io_and_starts_nothing() -> None:
    threads = threading.active_count()
    provider = JupyterCodeInterpreterProvider(base_url=refused_url())  # no loop running here

    assert threading.active_count() == threads
    assert provider.settings.base_url.startswith("http://127.0.0.1:")


def test_a_ca_bundle_that_cannot_be_loaded_is_named_at_construction(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")

    with pytest.raises(LocalProtocolError, match=r"/nope/ca\.pem"):
        JupyterCodeInterpreterProvider(base_url="http://127.0.0.1:9/", verify="/nope/ca.pem")
    with pytest.raises(LocalProtocolError, match=r"ca\.pem"):
        JupyterCodeInterpreterProvider(verify=str(garbage))
    assert JupyterCodeInterpreterProvider(verify=str(tmp_path)).settings.verify == str(tmp_path)


# -- the gateway's type check --------------------------------------------------------------


class _StandIn(abc.ABC):
    @abc.abstractmethod
    async def start_session(self, session_id: str | None = None) -> dict[str, Any]: ...


def test_instances_pass_the_gateway_check_when_it_is_importable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType(GATEWAY_BASE)
    module.CodeInterpreterProvider = _StandIn  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, GATEWAY_BASE, module)

    provider = JupyterCodeInterpreterProvider()

    assert isinstance(provider, _StandIn)


def test_the_module_registers_itself_at_import(tmp_path: Path) -> None:
    package = tmp_path / "agentic_primitives_gateway" / "primitives" / "code_interpreter"
    package.mkdir(parents=True)
    for folder in (package, package.parent, package.parent.parent):
        (folder / "__init__.py").write_text("")
    (package / "base.py").write_text(
        "import abc\n"
        "class CodeInterpreterProvider(abc.ABC):\n"
        "    @abc.abstractmethod\n"
        "    async def execute(self, session_id, code, language='python'): ...\n"
    )
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from jupyter_interp.provider import JupyterCodeInterpreterProvider as P\n"
        "from agentic_primitives_gateway.primitives.code_interpreter.base import "
        "CodeInterpreterProvider as B\n"
        "print(issubclass(P, B), 'agentic_primitives_gateway' in sys.modules)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert ran.stdout.split() == ["True", "True"]
