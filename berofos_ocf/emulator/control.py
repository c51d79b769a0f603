"""The emulator's control interface: JSON over HTTP, for tests and people.

Server side (:class:`ControlServer`) and client side (:class:`EmulatorControl`).
Devices are named ``fos1``, ``fos2`` … in ``--listen`` order, or by their
``HOST:PORT``.

========================================  ==========================================
``GET  /devices``                         every device: settings, relays, power, faults
``GET  /devices/NAME/requests``           the HTTP requests it served (passwords hidden)
``GET  /relay-log?since=N``               relay changes from entry N on, and the next N
``POST /devices/NAME/fault``              ``{"kind", "scope", "count", "seconds", "status"}``
``DELETE /devices/NAME/fault``            clear every fault
``POST /devices/NAME/power``              ``{"action": "off"|"on"|"cycle", "seconds": S}``
``POST /devices/NAME/watchdog-expire``    fire the watchdog now
``POST /devices/NAME/set``                ``{"values": {"mode": 1, …}}`` set by hand
``POST /devices/NAME/flash-mode``         ``{"on": true}`` the button held at power-on
``POST /devices/NAME/options``            switch behaviours (``legacy_group_reset`` …)
========================================  ==========================================
"""

from __future__ import annotations

__all__ = ["ControlServer", "EmulatorControl", "ControlError"]

import json
import socketserver
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ..errors import BerofosError, InvalidValue
from .device import Fault


class ControlError(BerofosError):
    """The control interface refused a request or could not be reached."""


class ControlServer(ThreadingHTTPServer):
    """Serves the control interface of one emulator in a thread of its own."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator) -> None:
        self.emulator = emulator
        super().__init__(address, _ControlHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up, which takes seconds
        # where no DNS answers (a test network namespace).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="control",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _ControlHandler(BaseHTTPRequestHandler):
    server: ControlServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        try:
            body = self._body() if method == "POST" else {}
            result = self._route(method, parts, parse_qs(url.query), body)
        except LookupError as err:
            self._send(404, {"error": str(err.args[0] if err.args else err)})
        except (InvalidValue, ValueError, TypeError) as err:
            self._send(400, {"error": str(err)})
        else:
            self._send(200, result)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        data = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data

    def _route(self, method: str, parts: list[str], query: dict, body: dict):
        emulator = self.server.emulator
        if method == "GET" and parts == ["devices"]:
            return [device.describe() for device in emulator.devices]
        if method == "GET" and parts == ["relay-log"]:
            since = int(query.get("since", ["0"])[0])
            entries = emulator.relay_log_since(since)
            return {"entries": entries, "next": since + len(entries)}
        if len(parts) < 2 or parts[0] != "devices":
            raise LookupError(f"no such resource {'/'.join(parts)!r}")
        device = emulator.device(parts[1])
        action = parts[2] if len(parts) > 2 else ""
        if method == "GET" and action == "":
            return device.describe()
        if method == "GET" and action == "requests":
            return list(device.requests)
        if method == "DELETE" and action == "fault":
            device.clear_faults()
        elif method == "POST" and action == "fault":
            device.add_fault(Fault(**body))
        elif method == "POST" and action == "power":
            _power(device, body)
        elif method == "POST" and action == "watchdog-expire":
            device.expire_watchdog()
        elif method == "POST" and action == "set":
            device.operator_set(body.get("values", {}))
        elif method == "POST" and action == "flash-mode":
            device.set_flash_mode(bool(body.get("on", True)))
        elif method == "POST" and action == "options":
            device.set_options(body)
        else:
            raise LookupError(f"no such action {method} {action!r}")
        return device.describe()

    def _send(self, status: int, data) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _power(device, body: dict) -> None:
    action = body.get("action")
    if action == "off":
        device.power_off()
    elif action == "on":
        device.power_on()
    elif action == "cycle":
        device.power_cycle(float(body.get("seconds", 1.0)))
    else:
        raise InvalidValue("power action is off, on or cycle")


class EmulatorControl:
    """Client of the control interface at ``HOST:PORT``."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.base = f"http://{address}"
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = json.loads(err.read() or b"{}").get("error", err.reason)
            raise ControlError(f"emulator control: {detail}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            detail = getattr(reason, "strerror", None) or str(reason)
            raise ControlError(f"emulator control at {self.base} unreachable: "
                               f"{detail.lower()}") from None

    def _device(self, name: str) -> str:
        return "/devices/" + quote(name, safe="")

    def devices(self) -> list[dict]:
        return self._call("GET", "/devices")

    def device(self, name: str) -> dict:
        return self._call("GET", self._device(name))

    def requests(self, name: str) -> list[dict]:
        return self._call("GET", self._device(name) + "/requests")

    def relay_log(self, since: int = 0) -> list[dict]:
        return self._call("GET", f"/relay-log?since={since}")["entries"]

    def fault(self, name: str, kind: str, **details) -> dict:
        return self._call("POST", self._device(name) + "/fault", {"kind": kind, **details})

    def clear_faults(self, name: str) -> dict:
        return self._call("DELETE", self._device(name) + "/fault")

    def power(self, name: str, action: str, seconds: float = 1.0) -> dict:
        return self._call("POST", self._device(name) + "/power",
                          {"action": action, "seconds": seconds})

    def expire_watchdog(self, name: str) -> dict:
        return self._call("POST", self._device(name) + "/watchdog-expire", {})

    def set_values(self, name: str, **values) -> dict:
        return self._call("POST", self._device(name) + "/set", {"values": values})

    def flash_mode(self, name: str, on: bool = True) -> dict:
        return self._call("POST", self._device(name) + "/flash-mode", {"on": on})

    def options(self, name: str, **options) -> dict:
        return self._call("POST", self._device(name) + "/options", options)
