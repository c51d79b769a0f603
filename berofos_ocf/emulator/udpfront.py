"""The emulated devices' GBL4 endpoint (UDP, port 50123 by default).

One endpoint per listening address serves every device on that address.  It
answers a scan with one reply per powered device and every other command only
for the device whose MAC the request carries, replying to the sender's address
and port.  Extra sockets bound to broadcast addresses (``255.255.255.255`` in a
test network namespace, ``127.255.255.255`` on loopback) receive broadcasts;
replies always leave from the unicast socket.
"""

from __future__ import annotations

__all__ = ["UdpEndpoint"]

import select
import socket
import threading

from ..errors import FormatError
from ..gbl4 import (
    AnyReply,
    Command,
    FlashPage,
    FlashPrepare,
    KickRequest,
    NetconfRequest,
    PingRequest,
    ResetRequest,
    ScanReply,
    ScanRequest,
    StatusReply,
    decode_request,
)
from .device import EmulatedDevice


class UdpEndpoint:
    """GBL4 for the devices listening on ``host``."""

    def __init__(self, host: str, port: int, devices: list[EmulatedDevice],
                 broadcast_addresses: tuple[str, ...] = ()) -> None:
        self.devices = devices
        self._main = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._main.bind((host, port))  # no SO_REUSEADDR: a second emulator must fail here
        self.address = self._main.getsockname()
        self._sockets = [self._main]
        try:
            for address in broadcast_addresses:
                extra = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._sockets.append(extra)
                # every emulator on the machine may listen to the same broadcasts
                extra.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                extra.bind((address, self.address[1]))
        except OSError:
            self.close()
            raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"gbl4-{host}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self.close()

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select(self._sockets, [], [], 0.1)
            for sock in readable:
                try:
                    datagram, sender = sock.recvfrom(2048)
                except OSError:
                    continue
                for reply in self.handle(datagram):
                    try:
                        self._main.sendto(reply, sender)
                    except OSError:
                        pass

    def _device(self, mac: bytes) -> EmulatedDevice | None:
        for device in self.devices:
            if device.mac == mac and device.powered:
                return device
        return None

    def handle(self, datagram: bytes) -> list[bytes]:
        """The reply datagrams for one request datagram (none for foreign ones)."""
        try:
            request = decode_request(datagram)
        except FormatError:
            return []
        if isinstance(request, ScanRequest):
            return [ScanReply(**d.scan_fields()).encode() for d in self.devices if d.powered]
        device = self._device(request.mac)
        if device is None:
            return []
        mac = device.mac
        if isinstance(request, NetconfRequest):
            code = device.netconf(request.ip, request.netmask, request.gateway,
                                  request.options, request.http_port)
            return [StatusReply(Command.NETCONF, mac, code).encode()]
        if isinstance(request, PingRequest):
            return [AnyReply(Command.PING, mac).encode()]
        if isinstance(request, KickRequest):
            device.kick()
            return [AnyReply(Command.KICK, mac).encode()]
        if isinstance(request, FlashPrepare):
            ok = device.flash_prepare(request.num_pages, request.checksum)
            return [AnyReply(Command.FLASH_PREPARE, mac).encode()] if ok else []
        if isinstance(request, FlashPage):
            ok = device.flash_page(request.page, request.data)
            page = request.page.to_bytes(2, "big")
            return [AnyReply(Command.FLASH_PAGE, mac + page).encode()] if ok else []
        if isinstance(request, ResetRequest):
            return [StatusReply(Command.RESET, mac, device.erase()).encode()]
        return []
