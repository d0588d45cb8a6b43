"""Base paths, HTTPS with a private CA, and a server that is not there.

Servers of their own (session-scoped, so both backends share them): each server kind
under the base path ``/jupyter-interp-prefix/`` (REST and WebSocket must both carry
it), and a Jupyter Server on HTTPS whose certificate for 127.0.0.1 comes from a CA
made here with ``trustme``. Verification is on by default and must fail with a typed
``ConnectError`` for REST and for the WebSocket (wss); ``verify=False`` and
``verify=<CA bundle>`` (a file or a hashed directory) work for both.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

from jupyter_interp.client import Client
from jupyter_interp.errors import ConnectError, NotFoundError, ServerError
from jupyter_interp.io.connect import connect_websocket
from jupyter_interp.protocol.result import ExecutionStatus

from .conftest import SERVER_KINDS, TEST_CLIENT_SETTINGS
from .gateway_env import ensure_enterprise_gateway
from .server_variants import TlsFiles, running_server_variant
from .servers import RunningServer, free_port
from .shared_kernel import module_backend  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

_TIMEOUT = 90
_PREFIX = "/jupyter-interp-prefix/"


@pytest.fixture(scope="session", params=SERVER_KINDS)
def prefixed_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server of each kind answering under ``_PREFIX`` only."""
    kind = str(request.param)
    python = ensure_enterprise_gateway() if kind == "enterprise_gateway" else None
    workdir = tmp_path_factory.mktemp(f"prefixed-{kind}")
    with running_server_variant(kind, workdir, base_path=_PREFIX, python=python) as server:
        yield server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A fresh CA and a certificate it issued for 127.0.0.1, as PEM files."""
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    files = TlsFiles(
        certfile=directory / "server.pem",
        keyfile=directory / "server.key",
        ca_file=directory / "ca.pem",
    )
    leaf.cert_chain_pems[0].write_to_path(str(files.certfile))
    leaf.private_key_pem.write_to_path(str(files.keyfile))
    ca.cert_pem.write_to_path(str(files.ca_file))
    return files


@pytest.fixture(scope="session")
def tls_server(
    tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("tls-server")
    with running_server_variant("jupyter_server", workdir, tls=tls_files) as server:
        yield server


def _client(server: RunningServer, url: str | None = None, **settings: Any) -> Client:
    return Client(url or server.url, token=server.token, **{**TEST_CLIENT_SETTINGS, **settings})


async def _run_a_session(client: Client) -> None:
    """Start a kernel, execute over the WebSocket and move a file both ways."""
    async with client.session() as session:
        result = await session.execute("print('over the socket')\n6 * 7")
        await session.upload("urls/probe.txt", b"through the prefix")
        data = await session.download("urls/probe.txt")
    assert result.status is ExecutionStatus.OK, result.describe()
    assert (result.stdout, result.result) == ("over the socket\n", "42")
    assert data == b"through the prefix"


# -- base path ------------------------------------------------------------------------


async def test_a_base_path_carries_rest_and_websocket(prefixed_server: RunningServer) -> None:
    assert prefixed_server.url.endswith(_PREFIX)
    with anyio.fail_after(_TIMEOUT):
        async with _client(prefixed_server) as client:
            status = await client.api_status()
            specs = await client.kernelspecs()
            await _run_a_session(client)
        # the same server without the prefix: the path is really in use
        root = prefixed_server.url.removesuffix(_PREFIX.lstrip("/"))
        async with _client(prefixed_server, root) as unprefixed:
            with pytest.raises(ServerError) as caught:
                await unprefixed.api_status()

    assert status.version
    assert "python3" in specs.specs
    assert caught.value.status == 404
    assert isinstance(caught.value, NotFoundError)


async def test_a_base_path_without_its_trailing_slash_works(
    prefixed_server: RunningServer,
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with _client(prefixed_server, prefixed_server.url.rstrip("/")) as client:
            status = await client.api_status()
    assert status.version


# -- TLS ------------------------------------------------------------------------------


async def test_https_refuses_an_unknown_ca_by_default(tls_server: RunningServer) -> None:
    assert tls_server.url.startswith("https://")
    with anyio.fail_after(_TIMEOUT):
        async with _client(tls_server) as client:
            with pytest.raises(ConnectError) as rest:
                await client.api_status()
            with pytest.raises(ConnectError) as start:
                await client.start_session()

    for caught in (rest, start):
        assert "127.0.0.1" in str(caught.value)
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


async def test_wss_refuses_an_unknown_ca_by_default(tls_server: RunningServer) -> None:
    """The WebSocket verifies on its own: a kernel reached with verify=False is refused."""
    with anyio.fail_after(_TIMEOUT):
        async with _client(tls_server, verify=False) as client, client.session() as session:
            url = client.http.websocket_url(f"api/kernels/{session.kernel_id}/channels")
            assert url.startswith("wss://")
            with pytest.raises(ConnectError) as caught:
                await connect_websocket(url, headers=client.http.auth_headers())
            other_ca = ssl.create_default_context()
            trustme.CA().configure_trust(other_ca)
            with pytest.raises(ConnectError):
                await connect_websocket(
                    url, headers=client.http.auth_headers(), ssl_context=other_ca
                )
            assert (await session.execute("'still fine'")).result == "'still fine'"

    assert "127.0.0.1" in str(caught.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


async def test_https_with_verify_false_works(tls_server: RunningServer) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with _client(tls_server, verify=False) as client:
            await _run_a_session(client)


@pytest.mark.parametrize("as_directory", [False, True], ids=["ca-file", "ca-directory"])
async def test_https_with_the_ca_bundle_works(
    tls_server: RunningServer, tls_files: TlsFiles, tmp_path: Path, as_directory: bool
) -> None:
    verify = str(tls_files.ca_file)
    if as_directory:  # an OpenSSL hashed directory, as ``c_rehash`` makes it
        verify = str(tmp_path)
        subject_hash = _subject_hash(tls_files.ca_file)
        (tmp_path / f"{subject_hash}.0").write_bytes(tls_files.ca_file.read_bytes())
    with anyio.fail_after(_TIMEOUT):
        async with _client(tls_server, verify=verify) as client:
            await _run_a_session(client)


async def test_https_with_another_ca_bundle_is_refused(
    tls_server: RunningServer, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with anyio.fail_after(_TIMEOUT):
        async with _client(tls_server, verify=str(other)) as client:
            with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.api_status()


def _subject_hash(ca_file: Path) -> str:
    """OpenSSL's subject hash of a CA certificate (the file name ``capath`` looks up)."""
    out = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(ca_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


# -- nothing listening ----------------------------------------------------------------


async def test_a_server_that_is_not_listening_is_a_typed_connect_error(
    anyio_backend: str,
) -> None:
    port = free_port()
    with anyio.fail_after(_TIMEOUT):
        async with Client(f"http://127.0.0.1:{port}/", token="secret-token-value") as client:
            with pytest.raises(ConnectError) as rest:
                await client.api_status()
            with pytest.raises(ConnectError) as start:
                await client.start_session()
        with pytest.raises(ConnectError) as socket:
            await connect_websocket(f"ws://127.0.0.1:{port}/api/kernels/x/channels")

    for caught in (rest, start, socket):
        assert f"127.0.0.1:{port}" in str(caught.value)
        assert "secret-token-value" not in str(caught.value)
