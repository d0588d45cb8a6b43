"""The provider's health check: one short-lived Client asks the server two questions.

Strategy: the gateway runs health checks on a fresh event loop in a worker thread, so
the check cannot borrow the provider's Client (bound to the gateway's loop): it opens
its own, with ``healthcheck_timeout`` per request and one second more in all, and asks
``GET /api`` (with the kernelspecs, so every server checks the token) and whether the
configured kernelspec is offered.

Invariants: never raises; a problem is a ``HealthProblem``, a message that is falsy, as
the gateway's readiness check (``all(checks.values())``) needs; no message carries the
token.
"""

from __future__ import annotations

import anyio
import attrs

from ..client import Client
from ..config import ClientConfig
from ..errors import AuthenticationError, JupyterInterpError, TransportError
from .config import ProviderSettings

__all__ = ["HealthProblem", "check_health"]


class HealthProblem(str):
    """What ``healthcheck()`` found wrong: a message that is falsy, like ``False``.

    The gateway stores the value in its readiness report and tests it with ``all()``:
    a plain non-empty string would count as healthy there.
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        return False


async def check_health(settings: ProviderSettings, config: ClientConfig) -> bool | str:
    """True, or a ``HealthProblem`` saying what is wrong with the server for ``settings``."""
    timeout = settings.healthcheck_timeout
    config = attrs.evolve(config, request_timeout=timeout)
    try:
        with anyio.fail_after(timeout + 1):
            async with Client(config=config) as probe:
                return await _probe(probe, settings)
    except TimeoutError:
        return HealthProblem(f"{settings.base_url} gave no answer within {timeout:g} s")


async def _probe(probe: Client, settings: ProviderSettings) -> bool | str:
    where = settings.base_url
    try:
        status = await probe.api_status()
        specs = await probe.kernelspecs()
    except AuthenticationError as exc:
        return HealthProblem(f"{where} refused our token: {exc}")
    except TransportError as exc:
        return HealthProblem(f"{where} is unreachable: {exc}")
    except JupyterInterpError as exc:
        return HealthProblem(f"{where} answered with an error: {exc}")
    if settings.kernel_name not in specs.specs:
        offered = ", ".join(sorted(specs.specs)) or "none"
        return HealthProblem(
            f"{where} (version {status.version}) has no kernelspec "
            f"{settings.kernel_name!r}; it offers: {offered}"
        )
    return True
