"""The emulated device's web server: ``/config.txt`` and ``/?cmd=…``.

Behaves like the device as far as clients can tell: HTTP/1.0, one request per
connection, Basic authentication with the ``WWW-Authenticate`` challenge that
the C ``bnfos`` (libcurl) needs before it sends credentials, one or many keys
per request.  A powered-off device or one in flash mode resets connections.
Injected faults (see :data:`~berofos_ocf.emulator.device.FAULT_KINDS`) are
applied before anything else.
"""

from __future__ import annotations

__all__ = ["DeviceHttpServer"]

import base64
import select
import socket
import socketserver
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from ..configtxt import parse_query
from ..errors import FormatError
from .device import EmulatedDevice, RequestRejected

_HANG_LIMIT = 600.0
_GARBAGE = b"\x00\x17garbage \xff\xfe not http at all\r\n\r\n"


def _abort(conn: socket.socket) -> None:
    """Close with a TCP reset (linger 0), as a rebooting device would."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    except OSError:
        pass


class DeviceHttpServer(ThreadingHTTPServer):
    """One device's HTTP listener."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], device: EmulatedDevice) -> None:
        self.device = device
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up, which takes seconds
        # where no DNS answers (a test network namespace).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def verify_request(self, request, client_address) -> bool:
        if not self.device.powered or self.device.flash_mode:
            self.device.refused_connections += 1
            _abort(request)
            return False
        return True

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: DeviceHttpServer
    protocol_version = "HTTP/1.0"
    server_version = "berofos"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:
        pass  # the emulator has its own request log

    def do_GET(self) -> None:
        self.received = time.time()
        device = self.server.device
        url = urlsplit(self.path)
        is_write = url.path == "/" and bool(url.query)
        faults = device.take_faults(is_write)
        kinds = {fault.kind: fault for fault in faults}
        if self._disrupt(kinds):
            return
        if device.needs_auth(is_write) and not self._authorized():
            self._reply(401, b"Unauthorized\n",
                        {"WWW-Authenticate": 'Basic realm="berofos"'})
            return
        if url.path == "/config.txt":
            body = device.config_txt(crlf="crlf" in kinds, no_magic="no-magic" in kinds,
                                     truncate="truncate" in kinds)
            self._reply(200, body, {"Content-Type": "text/plain"})
        elif is_write:
            self._write(url.query, ignore="ignore-writes" in kinds)
        elif url.path in ("/", "/index.html"):
            self._reply(200, b"<html><body>berofos</body></html>\n",
                        {"Content-Type": "text/html"})
        else:
            self._reply(404, b"Not Found\n")

    def _disrupt(self, kinds: dict) -> bool:
        """Apply faults; True when the request got no normal answer (it is then logged,
        with status 0 when no HTTP answer went out)."""
        if "latency" in kinds:
            time.sleep(kinds["latency"].seconds)
        broken = [kind for kind in ("hang", "drop", "reset", "garbage") if kind in kinds]
        if broken:
            # logged first: a client that gives up at once may ask the log before
            # this thread would have got to it
            self.server.device.record_request(self.path, 0, self.received)
            self._break_connection(broken[0])
            return True
        if "status" in kinds:
            self._reply(kinds["status"].status, b"Internal Server Error\n")
            return True
        if "no-challenge" in kinds:
            self._reply(401, b"Unauthorized\n")
            return True
        return False

    def _break_connection(self, kind: str) -> None:
        """Faults below HTTP: no answer, a reset, or bytes that are not HTTP."""
        if kind == "hang":
            self._hang()
        elif kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif kind == "reset":
            _abort(self.connection)
        else:
            self.wfile.write(_GARBAGE)

    def _hang(self) -> None:
        # Hold the connection until the client gives up, the fault is cleared or
        # the emulator stops: a device whose web server has locked up.
        until = time.monotonic() + _HANG_LIMIT
        device, conn = self.server.device, self.connection
        generation = device.fault_generation
        while time.monotonic() < until and not self.server.stopping.is_set():
            if device.fault_generation != generation or not device.powered:
                break
            readable, _, _ = select.select([conn], [], [], 0.1)
            if readable:
                try:
                    if conn.recv(1, socket.MSG_PEEK) == b"":
                        break
                except OSError:
                    break
        self.close_connection = True

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return self.server.device.check_password(user, password)

    def _write(self, query: str, *, ignore: bool) -> None:
        try:
            cmd, params = parse_query(query)
            if not ignore:
                self.server.device.apply(cmd, params)
        except (FormatError, RequestRejected) as err:
            self._reply(400, f"Bad Request: {err}\n".encode())
            return
        self._reply(200, b"<html><body>OK</body></html>\n", {"Content-Type": "text/html"})

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.server.device.record_request(self.path, status, self.received)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
