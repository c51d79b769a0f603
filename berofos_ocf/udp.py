"""GBL4 over UDP: scan, network setup, ping, watchdog kick, firmware flash, reset.

One :class:`Gbl4Client` sends requests from an ephemeral port and reads the
replies on the same socket.  ``target`` is the device's address, or a
broadcast address (the device acts only on requests carrying its MAC, so a
broadcast reaches exactly one device; a scan reaches all of them).

Single-reply commands wait for the first well-formed reply with the same
command (and, where the reply carries one, the same MAC); foreign datagrams
are skipped rather than fatal.  A scan reply counts only when it comes
from the address it gives (or from the address asked): anyone on the
segment can answer a broadcast, and a forged reply must not move a known
device.  Lost datagrams are retried only where re-sending is harmless:
flash pages (numbered) and nothing else.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_UDP_PORT",
    "SCAN_WINDOW",
    "BROADCAST",
    "HW_MAGICS",
    "Gbl4Client",
]

import socket
import time
from typing import Sequence

from .errors import DeviceError, DeviceTimeout, DeviceUnreachable, FormatError
from .gbl4 import (
    FlashPage,
    FlashPrepare,
    KickRequest,
    NetconfRequest,
    PingRequest,
    ResetRequest,
    ScanReply,
    ScanRequest,
    StatusReply,
    decode_reply,
    format_mac,
    image_checksum,
    split_pages,
)

DEFAULT_UDP_PORT = 50123
BROADCAST = "255.255.255.255"
HW_MAGICS = (0x0050, 0x00BB)
DEFAULT_TIMEOUT = 3.0
SCAN_WINDOW = DEFAULT_TIMEOUT  # how long bnfos collects scan replies
RESET_TIMEOUT = 8.0
_PAGE_ATTEMPTS = 3


class Gbl4Client:
    """The UDP side of the berofos protocol.

    ``port`` is the device's UDP port (50123 on real devices; tests and the
    emulator may use another one).
    """

    def __init__(self, *, port: int = DEFAULT_UDP_PORT, timeout: float = DEFAULT_TIMEOUT,
                 clock=time.monotonic) -> None:
        self.port = port
        self.timeout = timeout
        self._clock = clock

    def _open(self, target: str) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Allowed for every target: a subnet broadcast (10.0.0.255) fails
        # without it, which bnfos never fixed.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(("0.0.0.0", 0))
        return sock

    def _send(self, sock: socket.socket, datagram: bytes, target: str, label: str) -> None:
        try:
            sock.sendto(datagram, (target, self.port))
        except OSError as err:
            raise DeviceUnreachable(label, f"cannot send to {target}: "
                                           f"{(err.strerror or str(err)).lower()}") from err

    def _receive(self, sock: socket.socket, until: float):
        """Yield (decoded reply, sender) until the monotonic time ``until``."""
        while True:
            left = until - self._clock()
            if left <= 0:
                return
            sock.settimeout(left)
            try:
                datagram, sender = sock.recvfrom(2048)
            except socket.timeout:
                return
            except OSError:
                continue  # ICMP errors surface here on Linux; keep listening
            try:
                yield decode_reply(datagram), sender
            except FormatError:
                continue

    def scan(self, target: str | Sequence[str] = BROADCAST, window: float = SCAN_WINDOW, *,
             until_mac: bytes | None = None) -> list[ScanReply]:
        """Collect scan replies for ``window`` seconds, one per MAC, in arrival order.

        ``target`` is one address or several, all asked from one socket within
        the one window.  With ``until_mac``, stop as soon as that device has
        answered.
        """
        targets = [target] if isinstance(target, str) else list(target)
        found: dict[bytes, ScanReply] = {}
        with self._open(targets[0]) as sock:
            for address in targets:
                self._send(sock, ScanRequest().encode(), address, address)
            for reply, sender in self._receive(sock, self._clock() + window):
                if _genuine_scan_reply(reply, sender[0], targets):
                    found.setdefault(reply.mac, reply)
                    if reply.mac == until_mac:
                        break
        return list(found.values())

    def _exchange(self, request, target: str, *, timeout: float | None = None,
                  attempts: int = 1, what: str = "request"):
        label = format_mac(request.mac)
        with self._open(target) as sock:
            for _ in range(attempts):
                self._send(sock, request.encode(), target, label)
                until = self._clock() + (timeout or self.timeout)
                for reply, _sender in self._receive(sock, until):
                    if _reply_matches(reply, request):
                        return reply
        raise DeviceTimeout(label, f"no answer to {what} from {target} "
                                   f"within {timeout or self.timeout:g} s")

    def identify(self, mac: bytes, target: str) -> ScanReply:
        """Scan one device (by MAC) and return its reply; time out if it is silent."""
        for reply in self.scan(target, self.timeout, until_mac=mac):
            if reply.mac == mac:
                return reply
        raise DeviceTimeout(format_mac(mac), f"no scan reply from {target} "
                                             f"within {self.timeout:g} s")

    def netconf(self, request: NetconfRequest, target: str) -> None:
        """Set the network configuration; raise :class:`DeviceError` on an error code."""
        reply = self._exchange(request, target, what="netconf")
        _check_status(reply, "netconf")

    def ping(self, mac: bytes, target: str) -> float:
        """Ping over GBL4; return the round trip in seconds."""
        started = self._clock()
        self._exchange(PingRequest(mac), target, what="ping")
        return self._clock() - started

    def kick(self, mac: bytes, target: str) -> None:
        """Kick the hardware watchdog once."""
        self._exchange(KickRequest(mac), target, what="watchdog kick")

    def reset(self, mac: bytes, target: str) -> None:
        """Erase the device (settings and firmware); only a device in flash mode does it."""
        reply = self._exchange(ResetRequest(mac), target, timeout=RESET_TIMEOUT, what="reset")
        _check_status(reply, "reset")

    def flash(self, mac: bytes, target: str, image: bytes, progress=None) -> int:
        """Write a firmware image; ``progress(done, total)`` after each page. Returns pages.

        The device must be in flash mode (held button at power-on); this is
        checked first, by MAC, so that a device in operation is never sent pages.
        """
        if self.identify(mac, target).operational:
            raise DeviceError(format_mac(mac), "not in flash mode: hold the black button "
                                               "while powering on, until port D's red LEDs blink")
        pages = split_pages(image)
        if len(pages) > 0xFFFF:
            raise DeviceError(format_mac(mac), "image too large for the flash protocol")
        self._exchange(FlashPrepare(mac, len(pages), image_checksum(image)), target,
                       what="flash prepare")
        for number, data in enumerate(pages):
            self._exchange(FlashPage(mac, number, data), target, attempts=_PAGE_ATTEMPTS,
                           what=f"flash page {number}")
            if progress is not None:
                progress(number + 1, len(pages))
        return len(pages)


def _genuine_scan_reply(reply, sender: str, targets: list[str]) -> bool:
    """A scan reply of a berofos, sent from the address it gives or from one asked."""
    return (isinstance(reply, ScanReply) and reply.hw_magic in HW_MAGICS
            and (sender == reply.ip or sender in targets))


def _reply_matches(reply, request) -> bool:
    if _reply_cmd(reply) != request.CMD:
        return False
    mac = getattr(reply, "mac", None)
    return mac is None or mac == request.mac


def _reply_cmd(reply) -> int:
    return reply.CMD if isinstance(reply, ScanReply) else reply.cmd


def _check_status(reply, what: str) -> None:
    if isinstance(reply, StatusReply) and reply.errcode != 0:
        raise DeviceError(format_mac(reply.mac), f"{what} refused with error code {reply.errcode}")
