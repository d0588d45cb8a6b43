"""Provider settings: the gateway's keyword arguments, parsed into one frozen value.

Strategy: the agentic-primitives-gateway calls ``Provider(**config)`` with values from
YAML, where ``${VAR:=default}`` substitution turns numbers and booleans into strings
(``execution_timeout: "30"``). ``ProviderSettings.from_keywords`` accepts both forms,
fills the seed's keywords from the ``JUPYTER_*`` environment when they are not given,
and builds the ``ClientConfig`` the provider's Client will use, so every invalid value
fails at construction (gateway start-up), never on the first request.

Invariants: parsing does no I/O besides reading ``os.environ``; unknown keywords are
reported by name only (a value may be a secret); the token and the session secret are
kept out of ``repr`` and error messages.
Unlike a bare ``Client``, no ``KERNEL_USERNAME`` is sent unless ``kernel_username`` is
set: the reference provider sends none, and Enterprise Gateway refuses ``root`` (the
user of many gateway containers) by default, while without the variable it uses its own.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..config import DEFAULT_URL, ClientConfig, StdinPolicy
from ..errors import LocalProtocolError
from ..io.http import HttpTransport
from ..io.tls import ca_context
from ..protocol.budget import OutputBudget
from .identity import MIN_SECRET_LENGTH

__all__ = ["DEFAULT_IDLE_TIMEOUT", "DEFAULT_OUTPUT_BYTES", "SECRET_ENV", "ProviderSettings"]

#: Default per-stream cap of an execute result: enough for real output, small for a prompt.
DEFAULT_OUTPUT_BYTES = 64 * 1024
#: Default ``idle_timeout``: an agent that thinks or waits for a person for half an hour
#: keeps its session; one that vanished frees its kernel soon after.
DEFAULT_IDLE_TIMEOUT = 1800.0

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NONE = frozenset({"", "none", "null"})


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LocalProtocolError(f"{name} must be a number of seconds, not {value!r}")
    try:
        seconds = float(value)
    except ValueError:
        raise LocalProtocolError(f"{name} must be a number of seconds, not {value!r}") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise LocalProtocolError(f"{name} must be a positive number of seconds, not {value!r}")
    return seconds


def _count(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise LocalProtocolError(f"{name} must be an integer, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise LocalProtocolError(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise LocalProtocolError(f"{name} must be at least {minimum}, not {value!r}")
    return number


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise LocalProtocolError(f"{name} must be true or false, not {value!r}")


def _optional_bytes(name: str, value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    return _count(name, value, minimum=0)


def _optional_seconds(name: str, value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    return _seconds(name, value)


def _optional_count(name: str, value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    return _count(name, value, minimum=1)


def _optional_text(name: str, value: object) -> str | None:
    return None if value is None else _text(name, value)


def _string_map(name: str, value: object) -> dict[str, str]:
    """A mapping of strings, given as a mapping or as a JSON object in a string."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError:
            raise LocalProtocolError(f"{name} must be a mapping or a JSON object") from None
    if not isinstance(value, Mapping):
        raise LocalProtocolError(f"{name} must be a mapping or a JSON object")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise LocalProtocolError(f"{name} must map strings to strings")
    return dict(value)


def _secret(name: str, value: object) -> str | None:
    """A ``session_secret``: blank means none; a short one is refused (it protects nothing)."""
    text = _optional_text(name, value)
    if text is None or not text.strip():
        return None
    if len(text) < MIN_SECRET_LENGTH:
        raise LocalProtocolError(
            f"{name} must have at least {MIN_SECRET_LENGTH} characters "
            f"(it has {len(text)}); e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    return text


def _verify(name: str, value: object) -> bool | str:
    if isinstance(value, bool):
        return value
    text = _text(name, value).strip()
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    if not os.path.exists(text):  # refused now, not on every call to come
        raise LocalProtocolError(
            f"{name} must be true, false or the path of a CA bundle (file or directory); "
            f"{text!r} is neither a flag nor an existing path"
        )
    ca_context(text)
    return text


#: keyword -> parser, for every keyword besides the five of the seed
_EXTRA: Mapping[str, Callable[[str, object], Any]] = {
    "launch_timeout": _seconds,
    "request_timeout": _seconds,
    "healthcheck_timeout": _seconds,
    "kernel_username": _optional_text,
    "kernel_env": _string_map,
    "headers": _string_map,
    "verify": _verify,
    "max_output_bytes": _optional_bytes,
    "stdin_answer": _optional_text,
    "history_limit": lambda name, value: _count(name, value, minimum=1),
    "cleanup_files": _flag,
    "stop_sessions_on_close": _flag,
    "output_notes": _flag,
    "idle_timeout": _optional_seconds,
    "max_sessions": _optional_count,
    "session_secret": _secret,
}
#: the environment variable that stands in for ``session_secret`` when it is not given
SECRET_ENV = "JUPYTER_INTERP_SESSION_SECRET"
#: the seed's keywords and the variables that stand in for them when they are not given
_SEED_ENV = {
    "base_url": "JUPYTER_URL",
    "token": "JUPYTER_TOKEN",
    "kernel_name": "JUPYTER_KERNEL",
    "file_root": "JUPYTER_FILE_ROOT",
}
_KNOWN_KEYWORDS = frozenset({*_SEED_ENV, "execution_timeout", *_EXTRA})


@attrs.frozen(kw_only=True)
class ProviderSettings:
    """Everything the provider was configured with (see ``docs/gateway.md``)."""

    base_url: str = DEFAULT_URL
    token: str = attrs.field(default="", repr=False)
    kernel_name: str = "python3"
    execution_timeout: float = 30.0
    file_root: str = "/tmp"
    launch_timeout: float = 120.0
    request_timeout: float = 30.0
    healthcheck_timeout: float = 4.0
    kernel_username: str | None = None
    kernel_env: Mapping[str, str] = attrs.field(factory=dict)
    headers: Mapping[str, str] = attrs.field(factory=dict)
    verify: bool | str = True
    max_output_bytes: int | None = DEFAULT_OUTPUT_BYTES
    stdin_answer: str | None = None
    history_limit: int = 100
    cleanup_files: bool = True
    stop_sessions_on_close: bool = False
    #: a marked line in stdout names the files a cell's rich outputs were saved as
    output_notes: bool = True
    #: seconds without a call after which a session's kernel is shut down (None: never)
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
    #: live sessions (every replica's, where the server keeps a registry) at most
    max_sessions: int | None = None
    #: key of the session id -> kernel id / folder derivation (``identity``)
    session_secret: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_keywords(
        cls, keywords: Mapping[str, object], environ: Mapping[str, str] | None = None
    ) -> tuple[ProviderSettings, list[str]]:
        """Parse the gateway's keywords; return the settings and the unknown names.

        A seed keyword that is missing, ``None`` or blank (a ``${VAR:=}`` substitution)
        falls back to its ``JUPYTER_*`` variable, then to the seed default; ``token``
        may be blank on purpose, so only a missing/``None`` token falls back.

        Raises:
            LocalProtocolError: a value has the wrong type or is out of range.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in _SEED_ENV.items():
            given = keywords.get(name)
            blank = given is None or (name != "token" and given == "")
            if not blank:
                values[name] = _text(name, given)
            elif env.get(variable):
                values[name] = env[variable]
        if keywords.get("execution_timeout") is not None:
            values["execution_timeout"] = _seconds(
                "execution_timeout", keywords["execution_timeout"]
            )
        for name, parse in _EXTRA.items():
            if name in keywords:
                values[name] = parse(name, keywords[name])
        if values.get("session_secret") is None and env.get(SECRET_ENV):
            values["session_secret"] = _secret(SECRET_ENV, env[SECRET_ENV])
        if not str(values.get("file_root", "/tmp")).strip():
            raise LocalProtocolError("file_root must name a directory on the kernel's side")
        settings = cls(**values)
        config = settings.client_config()  # validate now, not on the first request
        HttpTransport(config.base_url, headers=config.headers, verify=config.verify)
        unknown = sorted(name for name in keywords if name not in _KNOWN_KEYWORDS)
        return settings, unknown

    def client_config(self) -> ClientConfig:
        """The settings of the provider's Client (and of its health-check probes)."""
        return ClientConfig(
            base_url=self.base_url,
            token=self.token or None,
            headers=dict(self.headers),
            verify=self.verify,
            request_timeout=self.request_timeout,
            launch_timeout=self.launch_timeout,
            kernel_username=self.kernel_username or None,
            kernel_env=dict(self.kernel_env),
            output_budget=OutputBudget(max_stream_bytes=self.max_output_bytes),
            stdin=StdinPolicy(answer=self.stdin_answer),
        )
