"""A faithful berofos emulator: one process, one or many devices.

Each device listens for HTTP on its own ``HOST:PORT`` and shares the GBL4 UDP
endpoint of its host.  The emulator keeps a timestamped log of every relay
change (printed, optionally appended to a file, and served by the control
interface), so that tests can measure failover times and catch flapping.  It
depends on the protocol layer only, never on the client or the agent.

Run it with ``berofos emulator --listen 127.0.0.1:8081 …``; embed it with::

    with Emulator([("127.0.0.1", 0)], udp_port=0) as emulator:
        host, port = emulator.devices[0].listen
"""

from __future__ import annotations

__all__ = ["Emulator", "DeviceOptions", "EmulatedDevice", "Fault", "DEFAULT_BASE_MAC",
           "DEFAULT_LISTEN", "format_relay_entry", "option_switches"]

import json
import os
import threading
import time

from ..errors import BerofosError
from ..keys import RELAY_LABELS
from .control import ControlServer
from .device import DeviceOptions, EmulatedDevice, Fault, option_switches
from .httpfront import DeviceHttpServer
from .udpfront import UdpEndpoint

DEFAULT_BASE_MAC = bytes.fromhex("001932000001")
DEFAULT_LISTEN = ("127.0.0.1", 8080)
_TICK = 0.05


def _mac_plus(base: bytes, offset: int) -> bytes:
    return (int.from_bytes(base, "big") + offset).to_bytes(6, "big")


def _listening(what: str, factory, *args):
    """Create a server; a busy or foreign address becomes one clear error."""
    try:
        return factory(*args)
    except OSError as err:
        raise BerofosError(f"cannot listen on {what}: {(err.strerror or str(err)).lower()}") \
            from None


def format_relay_entry(entry: dict) -> str:
    """One relay-log line: time, device, address, old -> new, cause."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(entry["time"]))
    millis = int((entry["time"] % 1) * 1000)
    return (f"{stamp}.{millis:03d}Z {entry['device']} {entry['address']} relays "
            f"{RELAY_LABELS[entry['old']]} -> {RELAY_LABELS[entry['new']]} ({entry['cause']})")


class Emulator:
    """Devices, their servers, the ticker and the control interface.

    ``listen`` is a list of ``(host, port)``; port 0 picks a free one.
    ``udp_port`` None disables GBL4, 0 picks a free port per host.
    ``initial`` sets values on every device (``{"modedef": 1}``).
    """

    def __init__(self, listen: list[tuple[str, int]], *, udp_port: int | None = 50123,
                 broadcast: tuple[str, ...] = (), password: str | None = None,
                 base_mac: bytes = DEFAULT_BASE_MAC, options: DeviceOptions | None = None,
                 initial: dict | None = None, control: tuple[str, int] | None = None,
                 relay_log_path: str | None = None, out=None) -> None:
        if not listen:
            raise ValueError("the emulator needs at least one --listen address")
        self._lock = threading.Lock()
        self._relay_log: list[dict] = []
        self._relay_log_path = relay_log_path
        self._out = out
        self.devices: list[EmulatedDevice] = []
        self._servers: list[DeviceHttpServer] = []
        self._endpoints: list[UdpEndpoint] = []
        self.control = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        try:
            self._bind(listen, udp_port, broadcast, password, base_mac, options, initial,
                       control)
        except BaseException:
            self._close()
            raise

    def _bind(self, listen, udp_port, broadcast, password, base_mac, options, initial,
              control) -> None:
        for index, (host, port) in enumerate(listen):
            device_options = DeviceOptions(**vars(options)) if options else DeviceOptions()
            # Named as 'berofos scan --write' names the devices it finds: fos1,
            # fos2 ... in the order of their MACs, which count up here.
            device = EmulatedDevice(f"fos{index + 1}", _mac_plus(base_mac, index), host, port,
                                    password=password, options=device_options,
                                    initial=initial, on_relay_change=self._log_relay_change)
            server = _listening(f"{host}:{port} (HTTP)", DeviceHttpServer, (host, port), device)
            device.listen = server.server_address[:2]
            device.values["port"] = device.listen[1]
            self.devices.append(device)
            self._servers.append(server)
        if udp_port is not None:
            hosts: dict[str, list[EmulatedDevice]] = {}
            for device in self.devices:
                hosts.setdefault(device.listen[0], []).append(device)
            for host, devices in hosts.items():
                self._endpoints.append(_listening(f"{host}:{udp_port} (GBL4)", UdpEndpoint,
                                                  host, udp_port, devices, broadcast))
        if control:
            self.control = _listening("%s:%d (control)" % control, ControlServer, control,
                                      self)

    @property
    def udp_port(self) -> int | None:
        return self._endpoints[0].address[1] if self._endpoints else None

    @property
    def control_address(self) -> str | None:
        if self.control is None:
            return None
        return "%s:%d" % self.control.server_address[:2]

    def device(self, name: str) -> EmulatedDevice:
        """A device by name (``fos1``) or ``HOST:PORT``."""
        for device in self.devices:
            if name in (device.name, "%s:%d" % device.listen):
                return device
        raise LookupError(f"no device {name!r}")

    def start(self) -> Emulator:
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, args=(_TICK,),
                                      name=server.device.name, daemon=True)
            thread.start()
            self._threads.append(thread)
        for endpoint in self._endpoints:
            endpoint.start()
        ticker = threading.Thread(target=self._tick, name="ticker", daemon=True)
        ticker.start()
        self._threads.append(ticker)
        if self.control:
            self.control.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for device in self.devices:
            device.shutdown()
        if self.control:
            self.control.stop()
        for server in self._servers:
            server.stop()
        for endpoint in self._endpoints:
            endpoint.stop()

    def _close(self) -> None:
        """Release sockets of an emulator that never started."""
        for server in self._servers + ([self.control] if self.control else []):
            server.server_close()
        for endpoint in self._endpoints:
            endpoint.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _tick(self) -> None:
        while not self._stop.wait(_TICK):
            for device in self.devices:
                device.tick()

    def _log_relay_change(self, entry: dict) -> None:
        with self._lock:
            self._relay_log.append(entry)
            line = format_relay_entry(entry)
            if self._out is not None:
                print(line, file=self._out, flush=True)
            if self._relay_log_path:
                with open(self._relay_log_path, "a", encoding="utf-8") as handle:
                    handle.write(line + "\n")

    def relay_log_since(self, index: int = 0) -> list[dict]:
        with self._lock:
            return self._relay_log[index:]

    def describe(self) -> dict:
        """Addresses of everything, as written to ``--ready-file``."""
        return {
            "pid": os.getpid(),
            "control": self.control_address,
            "udp_port": self.udp_port,
            "devices": [{"name": d.name, "address": "%s:%d" % d.listen,
                         "mac": ":".join(f"{b:02X}" for b in d.mac)} for d in self.devices],
        }

    def write_ready_file(self, path: str) -> None:
        temporary = f"{path}.tmp{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(self.describe(), handle)
        os.replace(temporary, path)

