"""What a Client asks a server besides kernel lifecycle: version, kind, kernelspecs, kernels.

Strategy: ``ServerQueries`` is the base of ``Client``: each query is one REST request
run on the Client's ``http`` transport (``protocol.rest`` builds and parses it); the
kernelspecs and the server's kind are asked once and cached for the Client's life.

Invariants: nothing here depends on kernel listing or the Contents API, which the
gateways refuse (``list_kernels`` says so where it is refused); an unknown kernelspec is
named with what the server offers.
"""

from __future__ import annotations

from ..errors import JupyterInterpError, KernelLaunchError, KernelSpecNotFound
from ..io.http import HttpTransport
from ..protocol import rest

__all__ = ["ServerQueries"]


class ServerQueries:
    """Server queries of a ``Client`` (which provides ``http``)."""

    _kernelspecs: rest.KernelSpecs | None = None
    _server_kind: str | None = None

    @property
    def http(self) -> HttpTransport:
        raise NotImplementedError  # the Client's transport

    async def api_status(self) -> rest.ApiStatus:
        """Version information (``GET /api``), with the credentials checked.

        Jupyter Server answers ``/api`` without looking at the token, so the kernelspecs
        are fetched as well (and cached for ``kernelspecs()``): every server checks the
        token there.

        Raises:
            AuthenticationError: the server refused the token.
        """
        status = await self.http.call(rest.api_status(), rest.parse_api_status)
        self._kernelspecs = await self.http.call(
            rest.list_kernelspecs(), rest.parse_list_kernelspecs
        )
        return status

    async def server_kind(self) -> str:
        """``"jupyter_server"``, ``"kernel_gateway"`` or ``"enterprise_gateway"`` (asked once).

        Enterprise Gateway says its ``gateway_version`` in ``GET /api``; of the others,
        only Jupyter Server answers ``GET /api/status``.
        """
        if self._server_kind is None:
            status = await self.http.call(rest.api_status(), rest.parse_api_status)
            if status.gateway_version:
                self._server_kind = "enterprise_gateway"
            else:
                code, _ = await self.http.send(rest.HttpRequest(method="GET", path="api/status"))
                self._server_kind = "jupyter_server" if code == 200 else "kernel_gateway"
        return self._server_kind

    async def kernelspecs(self) -> rest.KernelSpecs:
        """The kernelspecs the server offers (cached after the first call)."""
        if self._kernelspecs is None:
            self._kernelspecs = await self.http.call(
                rest.list_kernelspecs(), rest.parse_list_kernelspecs
            )
        return self._kernelspecs

    async def list_kernels(self) -> tuple[rest.KernelModel, ...]:
        """Running kernels (gateways refuse this unless configured to allow it)."""
        return await self.http.call(rest.list_kernels(), rest.parse_list_kernels)

    async def get_kernel(self, kernel_id: str) -> rest.KernelModel:
        return await self.http.call(rest.get_kernel(kernel_id), rest.parse_get_kernel)

    async def resolve_kernel_name(
        self, kernel_name: str | None, language: str | None
    ) -> str | None:
        """Pick a kernelspec: ``kernel_name`` wins; else one whose language matches."""
        if kernel_name or not language:
            return kernel_name
        specs = await self.kernelspecs()
        wanted = language.strip().lower()
        matches = sorted(
            name for name, spec in specs.specs.items() if spec.language.lower() == wanted
        )
        if not matches:
            offered = ", ".join(
                f"{name} ({spec.language})" for name, spec in sorted(specs.specs.items())
            )
            raise KernelSpecNotFound(
                f"no kernel for language {language!r}; the server offers: {offered}"
            )
        if specs.default in matches:
            return specs.default
        return matches[0]

    async def _check_kernel_name(self, name: str, failure: KernelLaunchError) -> None:
        """After a failed start: raise ``KernelSpecNotFound`` if ``name`` is not offered.

        Jupyter Server answers an unknown kernelspec name with a bare 500 "Unhandled
        error", so the start failure alone cannot tell a typo from a broken kernel.
        """
        try:
            specs = await self.kernelspecs()
        except JupyterInterpError:
            return  # the launch failure is what the caller should see
        if name not in specs.specs:
            offered = ", ".join(sorted(specs.specs)) or "none"
            raise KernelSpecNotFound(
                f"no kernelspec named {name!r}; the server offers: {offered}"
            ) from failure
