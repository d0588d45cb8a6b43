"""A blocking raw-socket WebSocket client of a kernel: the floor for any client of a server.

Strategy: nothing but ``socket``, ``json``, ``struct`` and ``os`` (no event loop, no
WebSocket library, nothing of jupyter_interp): a hand-written HTTP/1.1 upgrade asking
for the v1 kernel subprotocol, then one masked binary frame out per request and a
minimal frame reader in (whole frames, continuation frames joined, pings answered).
Of each incoming v1 message it parses only the parent header, the header and, for a
``status``, the content. ``TCP_NODELAY`` is set once and Linux ``TCP_QUICKACK`` re-armed
before each read: without it, Jupyter Server's second small write of a burst waits out
the client's 40 ms delayed ACK (see docs/performance.md, target 1), and a floor that
any client can reach does it.

Invariant: a call blocks its thread (and an event loop that makes it) until the reply
and the ``idle`` status of its request are in, or raises ``TimeoutError`` after
``timeout`` seconds without data; the socket is closed by ``close``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit

__all__ = ["RawSocketKernel", "execute_content"]

_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
_BINARY, _CLOSE, _PING, _PONG = 0x2, 0x8, 0x9, 0xA


def execute_content(code: str) -> dict[str, object]:
    """The content of an ``execute_request`` for ``code``, as a notebook sends it."""
    return {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


class RawSocketKernel:
    """One kernel's channels WebSocket over a blocking socket (see the module)."""

    def __init__(self, url: str, token: str, kernel_id: str, *, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self._session = uuid.uuid4().hex
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        key = base64.b64encode(os.urandom(16)).decode()
        path = f"{parts.path.rstrip('/')}/api/kernels/{kernel_id}/channels"
        request = (
            f"GET {path}?session_id={self._session} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: {_SUBPROTOCOL}\r\n"
            f"Authorization: token {token}\r\n\r\n"
        )
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            self.close()
            raise ConnectionError(f"upgrade refused: {status.decode(errors='replace')}")

    def close(self) -> None:
        self._sock.close()

    def kernel_info(self) -> None:
        """One ``kernel_info`` round trip: the kernel answers, so it is ready."""
        msg_id = self._send("kernel_info_request", {})
        while True:
            parent, msg_type, _ = self._receive()
            if parent == msg_id and msg_type == "kernel_info_reply":
                return

    def execute(self, code: str) -> None:
        """Run ``code``; return once its execute_reply and its ``idle`` status are in."""
        msg_id = self._send("execute_request", execute_content(code))
        reply = idle = False
        while not (reply and idle):
            parent, msg_type, state = self._receive()
            if parent == msg_id:
                reply = reply or msg_type == "execute_reply"
                idle = idle or state == "idle"

    def _send(self, msg_type: str, content: dict[str, object]) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "session": self._session,
            "username": "bench",
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        }
        parts = [b"shell", json.dumps(header).encode(), b"{}", b"{}", json.dumps(content).encode()]
        offsets = [8 * 7]
        for part in parts:
            offsets.append(offsets[-1] + len(part))
        payload = struct.pack("<7Q", 6, *offsets) + b"".join(parts)
        self._write_frame(_BINARY, payload)
        return msg_id

    def _receive(self) -> tuple[str | None, str, str | None]:
        """The next message's parent msg_id, msg_type and (of a status) execution_state."""
        frame = self._read_message()
        (count,) = struct.unpack_from("<Q", frame)
        offsets = struct.unpack_from(f"<{count}Q", frame, 8)
        header = json.loads(frame[offsets[1] : offsets[2]])
        parent = json.loads(frame[offsets[2] : offsets[3]])
        msg_type: str = header["msg_type"]
        state = None
        if msg_type == "status":
            state = json.loads(frame[offsets[4] : offsets[5]]).get("execution_state")
        return parent.get("msg_id"), msg_type, state

    def _write_frame(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        mask = os.urandom(4)
        keystream = (mask * (size // 4 + 1))[:size]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(
            size, "big"
        )
        self._sock.sendall(head + mask + masked)

    def _read_message(self) -> bytes:
        """The next data message, its fragments joined; pings answered, closes raised."""
        pieces: list[bytes] = []
        while True:
            first, payload = self._read_frame()
            opcode = first & 0x0F
            if opcode == _PING:
                self._write_frame(_PONG, payload)
            elif opcode == _CLOSE:
                raise ConnectionError("the server closed the WebSocket")
            elif opcode != _PONG:
                pieces.append(payload)
                if first & 0x80:
                    return b"".join(pieces)

    def _read_frame(self) -> tuple[int, bytes]:
        self._need(2)
        first, second = self._buffer[0], self._buffer[1]
        size, start = second & 0x7F, 2
        if size == 126:
            self._need(4)
            (size,), start = struct.unpack_from("!H", self._buffer, 2), 4
        elif size == 127:
            self._need(10)
            (size,), start = struct.unpack_from("!Q", self._buffer, 2), 10
        self._need(start + size)
        payload = bytes(self._buffer[start : start + size])
        del self._buffer[: start + size]
        return first, payload

    def _need(self, size: int) -> None:
        while len(self._buffer) < size:
            self._fill()

    def _fill(self) -> None:
        if _QUICKACK is not None:
            self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk
