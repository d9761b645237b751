"""A small threaded HTTP/1.1 server on 127.0.0.1, for the Runtime API and /invoke.

The standard library's server is enough for one function process's traffic, with two
changes: Nagle's algorithm is off and each reply goes out in one write (a reply written
as headers then body otherwise waits ~40 ms for the client's delayed ACK, on every warm
invoke), and request bodies may be chunked with trailers, as aws-lambda-go sends every
POST (its trailers carry an error met while streaming a response).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

LOG = logging.getLogger(__name__)

MAX_LINE = 65536


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    trailers: dict[str, str] = field(default_factory=dict)  # names in lower case

    def header(self, name: str) -> str | None:
        name = name.lower()
        return self.trailers.get(name) or self.headers.get(name)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: object, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


Handler = Callable[[Request], Reply | None]  # None: drop the connection without a reply


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...
    def readline(self, size: int, /) -> bytes: ...


def read_chunked(rfile: Readable) -> tuple[bytes, dict[str, str]]:
    """A chunked body (RFC 9112 section 7.1) and its trailer fields."""
    data = bytearray()
    while True:
        line = rfile.readline(MAX_LINE)
        if not line.endswith(b"\n"):
            raise ValueError("chunked body ended early")
        size = int(line.split(b";", 1)[0].strip() or b"x", 16)
        if size == 0:
            break
        chunk = rfile.read(size)
        if len(chunk) != size or rfile.readline(MAX_LINE).strip():
            raise ValueError("malformed chunk")
        data += chunk
    trailers: dict[str, str] = {}
    while True:
        line = rfile.readline(MAX_LINE)
        if not line.strip():
            break
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            trailers[name.strip().lower()] = value.strip()
    return bytes(data), trailers


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a runtime's GET .../next blocks a thread until it is answered
    allow_reuse_address = False
    handler: Handler

    def get_request(self) -> tuple[socket.socket, object]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, self.path.split("?", 1)[0], headers)
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                request.body, request.trailers = read_chunked(self.rfile)
            elif length := int(headers.get("content-length") or 0):
                request.body = self.rfile.read(length)
        except ValueError as e:
            self._send(Reply.json(HTTPStatus.BAD_REQUEST, {"errorType": "InvalidRequest", "errorMessage": str(e)}))
            self.close_connection = True
            return
        try:
            reply = self.server.handler(request)
        except Exception:
            LOG.exception("hostmode: error handling %s %s", self.command, self.path)
            reply = Reply.json(HTTPStatus.INTERNAL_SERVER_ERROR, {"errorType": "InternalError"})
        if reply is None:
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        head = [f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}", f"Content-Length: {len(reply.body)}"]
        head += [f"{k}: {v}" for k, v in reply.headers.items()]
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body)
        except OSError:
            self.close_connection = True  # the client is gone (a killed function process)


class LoopbackServer:
    """Serves `handler` on 127.0.0.1 at a port of the kernel's choosing."""

    def __init__(self, handler: Handler, name: str) -> None:
        self._server = _Server(("127.0.0.1", 0), _RequestHandler)
        self._server.handler = handler
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving, without waiting for the serving thread to notice (up to its poll
        interval): nothing waits on a server that is going away."""
        threading.Thread(target=self._close, name="hostmode-server-close", daemon=True).start()

    def _close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
