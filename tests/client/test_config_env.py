"""ClientConfig.from_env: JUPYTER_TOKEN goes to JUPYTER_URL's server and nowhere else."""

from __future__ import annotations

import pytest

from jupyter_interp.config import DEFAULT_URL, ClientConfig, same_server

ENV = {"JUPYTER_URL": "http://jupyter.internal:9999/prefix", "JUPYTER_TOKEN": "env-token"}


def test_the_environment_names_the_server_and_its_token() -> None:
    config = ClientConfig.from_env(ENV)
    assert (config.base_url, config.token) == (ENV["JUPYTER_URL"], "env-token")


@pytest.mark.parametrize(
    "url", ["http://jupyter.internal:9999/prefix/", "HTTP://Jupyter.Internal:9999/prefix"]
)
def test_the_same_server_spelled_differently_gets_the_token(url: str) -> None:
    assert ClientConfig.from_env(ENV, base_url=url).token == "env-token"


@pytest.mark.parametrize(
    "url",
    [
        "http://elsewhere:9999/prefix",  # another host
        "http://jupyter.internal:9998/prefix",  # another port
        "https://jupyter.internal:9999/prefix",  # another scheme
        "http://jupyter.internal:9999/other",  # another server behind the same proxy
        "http://jupyter.internal:9999",
    ],
)
def test_another_server_never_gets_the_environments_token(url: str) -> None:
    config = ClientConfig.from_env(ENV, base_url=url)
    assert (config.base_url, config.token) == (url, None)


def test_without_jupyter_url_the_token_belongs_to_the_default_server() -> None:
    env = {"JUPYTER_TOKEN": "env-token"}
    assert ClientConfig.from_env(env).base_url == DEFAULT_URL
    assert ClientConfig.from_env(env).token == "env-token"
    assert ClientConfig.from_env(env, base_url="http://localhost:8888/").token == "env-token"
    assert ClientConfig.from_env(env, base_url="http://127.0.0.1:8888").token is None


def test_a_token_given_always_wins() -> None:
    assert ClientConfig.from_env(ENV, token="given").token == "given"
    assert ClientConfig.from_env(ENV, base_url="http://elsewhere", token="given").token == "given"


def test_default_ports_and_unparsable_ports() -> None:
    assert same_server("http://h", "http://h:80/")
    assert same_server("https://h/", "https://h:443")
    assert not same_server("http://h:80", "https://h:80")
    assert not same_server("http://h:port", "http://h:80")
