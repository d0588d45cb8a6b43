"""The public names users import stay where they are, whatever moves inside.

Names may be added; removing or moving one of these fails here, so a reorganisation
cannot break users silently.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import pytest

PUBLIC: dict[str, set[str]] = {
    "jupyter_interp": {
        *("AuthenticationError", "ChecksumMismatch", "Client", "ClientConfig"),
        *("ConnectError", "ConnectionClosed", "ErrorInfo", "ExecutionFailed", "InvalidArgument"),
        *("ExecutionResult", "ExecutionStatus", "FileTransferError", "JupyterInterpError"),
        *("KernelDied", "KernelError", "KernelLaunchError", "KernelLaunchTimeout"),
        *("KernelNotFound", "KernelPool", "KernelSpecNotFound", "KernelUnavailable"),
        *("LocalJupyterServer", "LocalProtocolError", "MessageTooLarge", "MissingDependency"),
        *("NotFoundError", "OutputBudget", "PathConflict", "PathNotConfined", "ProtocolError"),
        "Recovery",
        *("RemoteFileNotFound", "RemoteProtocolError", "ResourceLimitError", "RichOutput"),
        *("ServerError", "Session", "SessionClosed", "StdinPolicy", "TransportError"),
        *("TransportTimeout", "UnsupportedKernel", "__version__", "launch_jupyter_server"),
        "local_server",
    },
    "jupyter_interp.protocol": {
        *("ApiStatus", "CHANNELS", "CHUNK_SIZE", "ChunkStored", "ClearOutput", "Codec"),
        *("Deleted", "DirEntry", "DirListing", "DisplayData", "DisplayUpdate"),
        *("DownloadVerifier", "EntryKind", "ErrorInfo", "Event", "ExecuteInput"),
        *("ExecuteResult", "ExecutionError", "ExecutionEvent", "ExecutionFailed"),
        *("ExecutionFinished", "ExecutionResult", "ExecutionStatus", "ExecutionTracker"),
        *("FILE_MIME_TYPE", "FileChunk", "FileOperation", "FileSnippets", "FileStat"),
        *("HeadTail", "Header", "HttpRequest", "InputRequested", "KernelConnection"),
        *("KernelDead", "KernelModel", "KernelRestarted", "KernelSpec", "KernelSpecs"),
        *("KernelStatus", "LegacyCodec", "Message", "MessageFactory", "OutputBudget"),
        *("OutputDropped", "PROTOCOL_VERSION", "PYTHON_CALL_EXPRESSION"),
        *("PythonFileSnippets", "Recovery", "ReplyReceived", "RichOutput", "SHA256_HEX"),
        *("StreamText", "TrackerState", "UploadAborted", "UploadCommitted", "V1Codec"),
        *("V1_SUBPROTOCOL", "codec_for", "confine", "format_date", "json_string_body"),
        *("parse_reply", "rest", "snippets_for", "strip_ansi", "temp_file_name"),
    },
    # the dotted path users put in the gateway's YAML (docs/gateway.md)
    "jupyter_interp.provider": {
        *("HealthProblem", "InvalidSessionId", "JupyterCodeInterpreterProvider"),
        *("SessionFileNotFound", "SessionInUse", "SessionLimitReached", "SessionNotFound"),
        "SessionRefused",
    },
    "jupyter_interp.local": {"LocalJupyterServer", "launch_jupyter_server", "local_server"},
    "jupyter_interp.session": {"Session"},
    "jupyter_interp.errors": {"JupyterInterpError"},
    # module paths the docs tell users to import from
    "jupyter_interp.blocking": {"Backend", "Client", "KernelPool", "Session", "local_server"},
    "jupyter_interp.mcp": {"Limits", "ServerSettings", "create_server", "http_app"},
    "jupyter_interp.notebook": {"ExecutionHistory", "save_notebook", "to_notebook"},
    "jupyter_interp.protocol.events": {"ExecutionFinished", "StreamText"},
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_stay_exported(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = {name for name in PUBLIC[module_name] if not hasattr(module, name)}
    assert missing == set(), f"{module_name} no longer exports {sorted(missing)}"
    unlisted = PUBLIC[module_name] - set(module.__all__)
    assert unlisted == set(), f"{module_name}.__all__ no longer lists {sorted(unlisted)}"


def test_console_script_is_cli_main() -> None:
    (script,) = entry_points(group="console_scripts", name="jupyter-interp")
    assert script.value == "jupyter_interp.cli:main"
    assert callable(script.load())
