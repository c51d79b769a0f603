"""The GBL4 datagram codec (UDP port 50123), without I/O.

A datagram is ``b"GBL\\x04"``, one command byte, the payload and one check byte,
the XOR of every byte before it.  Integers are big-endian, IPv4 addresses four
raw bytes, MAC addresses six.  Every message of the protocol has a class here
with ``encode()`` (the whole datagram) and ``from_payload()``; :func:`decode_request`
and :func:`decode_reply` pick the class from the command byte.  Anything that is
not a well-formed datagram raises :class:`~berofos_ocf.errors.FormatError`.
"""

from __future__ import annotations

__all__ = [
    "PREFIX",
    "MIN_DATAGRAM",
    "PAGE_SIZE",
    "Command",
    "Options",
    "PhyState",
    "PHY_CONF_LABELS",
    "frame",
    "unframe",
    "parse_mac",
    "format_mac",
    "ScanRequest",
    "ScanReply",
    "NetconfRequest",
    "StatusReply",
    "FlashPrepare",
    "FlashPage",
    "ResetRequest",
    "PingRequest",
    "KickRequest",
    "AnyReply",
    "decode_request",
    "decode_reply",
    "image_checksum",
    "split_pages",
    "MIN_IMAGE_SIZE",
    "MAX_IMAGE_SIZE",
    "check_firmware_image",
]

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar

from .errors import FormatError, InvalidValue
from .keys import parse_ipv4

PREFIX = b"GBL\x04"
MIN_DATAGRAM = 6
PAGE_SIZE = 512
# Firmware images are raw binaries sent page by page; nothing in them says what
# they are.  The bounds are guesses around what the device can hold: a few
# hundred kilobytes (the protocol itself stops at 0xFFFF pages, 32 MiB).
MIN_IMAGE_SIZE = 1024
MAX_IMAGE_SIZE = 1024 * 1024
# What a file that is not a raw image starts with, and what to do about it.
_NOT_AN_IMAGE = (
    (b"PK\x03\x04", "a ZIP archive: unpack the .bin file from it"),
    (b"\x1f\x8b", "gzip-compressed: gunzip it first"),
    (b"\x7fELF", "an ELF executable, not a raw firmware image"),
    (b"BZh", "bzip2-compressed: bunzip2 it first"),
    (b"\xfd7zXZ\x00", "xz-compressed: unxz it first"),
)
# Bytes no text file holds; a firmware image has plenty.
_CONTROL_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D} | {0x7F}


class Command(IntEnum):
    """The command byte of a datagram (the reply carries the request's)."""

    SCAN = 1
    NETCONF = 2
    FLASH_PREPARE = 3
    FLASH_PAGE = 4
    RESET = 5
    PING = 9
    KICK = 11


class Options(IntFlag):
    """Bits of the ``options`` byte of scan replies and netconf requests."""

    DHCP = 1
    HTTP_AUTH = 2
    IP_ACL = 4


class PhyState(IntFlag):
    """Bits of the ``phy_state`` byte of a scan reply: the Ethernet link as it is."""

    LINK = 1
    SPEED_100 = 2
    FULL_DUPLEX = 4


# phy_conf: the link the device should negotiate.  bnfos sends 3 for "auto"
# (its header's 0xFF is commented out); 0xFF is read as auto too.
PHY_CONF_LABELS = {1: "10M", 2: "100M", 3: "auto", 0xFF: "auto"}


def _xor(data: bytes) -> int:
    check = 0
    for byte in data:
        check ^= byte
    return check


def frame(cmd: int, payload: bytes = b"") -> bytes:
    """Wrap a payload into a datagram."""
    body = PREFIX + bytes([cmd]) + payload
    return body + bytes([_xor(body)])


def unframe(datagram: bytes) -> tuple[int, bytes]:
    """Check a datagram's prefix, length and check byte; return ``(cmd, payload)``."""
    if len(datagram) < MIN_DATAGRAM:
        raise FormatError(f"datagram of {len(datagram)} bytes is too short")
    if datagram[:4] != PREFIX:
        raise FormatError("datagram does not start with GBL\\x04")
    if _xor(datagram[:-1]) != datagram[-1]:
        raise FormatError("datagram check byte does not match")
    return datagram[4], bytes(datagram[5:-1])


def parse_mac(text: str) -> bytes:
    """``00:19:32:00:12:1D`` (or with ``-``) → six bytes; raise :class:`InvalidValue`."""
    parts = text.strip().replace("-", ":").split(":")
    if len(parts) != 6 or any(len(p) != 2 for p in parts):
        raise InvalidValue(f"{text!r} is not a MAC address like 00:19:32:00:12:1D")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise InvalidValue(f"{text!r} is not a MAC address like 00:19:32:00:12:1D") from None


def format_mac(mac: bytes) -> str:
    """Six bytes → ``00:19:32:00:12:1D`` (upper case, as ``bnfos --scan -x`` writes it)."""
    return ":".join(f"{b:02X}" for b in mac)


def _ip_bytes(address: str) -> bytes:
    return bytes(int(p) for p in parse_ipv4(address).split("."))


def _ip_text(data: bytes) -> str:
    return ".".join(str(b) for b in data)


class _Message:
    """A message of the protocol: ``payload()`` to encode, ``from_payload()`` to decode."""

    CMD: ClassVar[int]
    SIZE: ClassVar[int]

    def payload(self) -> bytes:
        raise NotImplementedError

    def encode(self) -> bytes:
        return frame(self.CMD, self.payload())

    @classmethod
    def from_payload(cls, payload: bytes):
        if len(payload) < cls.SIZE:
            raise FormatError(f"{cls.__name__} needs {cls.SIZE} payload bytes, got {len(payload)}")
        return cls._from(payload)

    @classmethod
    def _from(cls, payload: bytes):
        raise NotImplementedError


def _check_mac(mac: bytes) -> None:
    if len(mac) != 6:
        raise InvalidValue("a MAC address has 6 bytes")


@dataclass(frozen=True)
class ScanRequest(_Message):
    """Who is there?  Every device answers, with or without an address."""

    CMD: ClassVar[int] = Command.SCAN
    SIZE: ClassVar[int] = 0

    def payload(self) -> bytes:
        return b""

    @classmethod
    def _from(cls, payload: bytes) -> ScanRequest:
        return cls()


@dataclass(frozen=True)
class ScanReply(_Message):
    """What a device says about itself: identity, firmware, network settings."""

    CMD: ClassVar[int] = Command.SCAN
    SIZE: ClassVar[int] = 30
    _FORMAT: ClassVar[str] = ">6sHBBBBB4s4s4sBBBH"

    mac: bytes
    hw_magic: int
    bootloader: tuple[int, int]
    firmware: tuple[int, int]
    dev_mode: int
    ip: str
    netmask: str
    gateway: str
    phy_conf: int
    phy_state: int
    options: int
    http_port: int

    @property
    def operational(self) -> bool:
        """False when the device is in flash mode (``devmode`` non-zero)."""
        return self.dev_mode == 0

    @property
    def dhcp(self) -> bool:
        return bool(self.options & Options.DHCP)

    @property
    def firmware_version(self) -> str:
        return f"{self.firmware[0]}.{self.firmware[1]}"

    @property
    def bootloader_version(self) -> str:
        return f"{self.bootloader[0]}.{self.bootloader[1]}"

    def payload(self) -> bytes:
        _check_mac(self.mac)
        return struct.pack(self._FORMAT, self.mac, self.hw_magic, *self.bootloader,
                           *self.firmware, self.dev_mode, _ip_bytes(self.ip),
                           _ip_bytes(self.netmask), _ip_bytes(self.gateway), self.phy_conf,
                           self.phy_state, self.options, self.http_port)

    @classmethod
    def _from(cls, payload: bytes) -> ScanReply:
        (mac, hw_magic, boot_major, boot_minor, fw_major, fw_minor, dev_mode, ip, netmask,
         gateway, phy_conf, phy_state, options, http_port) = struct.unpack(
            cls._FORMAT, payload[:cls.SIZE])
        return cls(mac, hw_magic, (boot_major, boot_minor), (fw_major, fw_minor), dev_mode,
                   _ip_text(ip), _ip_text(netmask), _ip_text(gateway), phy_conf, phy_state,
                   options, http_port)


@dataclass(frozen=True)
class NetconfRequest(_Message):
    """Set a device's network configuration (the device picks it by MAC)."""

    CMD: ClassVar[int] = Command.NETCONF
    SIZE: ClassVar[int] = 22
    _FORMAT: ClassVar[str] = ">6s4s4s4sBBH"

    mac: bytes
    ip: str
    netmask: str
    gateway: str
    phy_conf: int
    options: int
    http_port: int

    def payload(self) -> bytes:
        _check_mac(self.mac)
        return struct.pack(self._FORMAT, self.mac, _ip_bytes(self.ip), _ip_bytes(self.netmask),
                           _ip_bytes(self.gateway), self.phy_conf, self.options, self.http_port)

    @classmethod
    def _from(cls, payload: bytes) -> NetconfRequest:
        mac, ip, netmask, gateway, phy_conf, options, http_port = struct.unpack(
            cls._FORMAT, payload[:cls.SIZE])
        return cls(mac, _ip_text(ip), _ip_text(netmask), _ip_text(gateway), phy_conf, options,
                   http_port)


@dataclass(frozen=True)
class StatusReply:
    """Reply to netconf and reset: the device's MAC and an error code (0 = OK)."""

    SIZE: ClassVar[int] = 7

    cmd: int
    mac: bytes
    errcode: int

    def payload(self) -> bytes:
        _check_mac(self.mac)
        return self.mac + bytes([self.errcode])

    def encode(self) -> bytes:
        return frame(self.cmd, self.payload())

    @classmethod
    def from_datagram_payload(cls, cmd: int, payload: bytes) -> StatusReply:
        if len(payload) < cls.SIZE:
            raise FormatError(f"status reply needs {cls.SIZE} payload bytes, got {len(payload)}")
        return cls(cmd, payload[:6], payload[6])


@dataclass(frozen=True)
class FlashPrepare(_Message):
    """Announce a firmware image: its number of pages and the XOR of its bytes."""

    CMD: ClassVar[int] = Command.FLASH_PREPARE
    SIZE: ClassVar[int] = 9

    mac: bytes
    num_pages: int
    checksum: int

    def payload(self) -> bytes:
        _check_mac(self.mac)
        return struct.pack(">6sHB", self.mac, self.num_pages, self.checksum)

    @classmethod
    def _from(cls, payload: bytes) -> FlashPrepare:
        return cls(*struct.unpack(">6sHB", payload[:cls.SIZE]))


@dataclass(frozen=True)
class FlashPage(_Message):
    """One page of a firmware image (512 bytes, the last one zero-padded)."""

    CMD: ClassVar[int] = Command.FLASH_PAGE
    SIZE: ClassVar[int] = 8 + PAGE_SIZE

    mac: bytes
    page: int
    data: bytes

    def payload(self) -> bytes:
        _check_mac(self.mac)
        if len(self.data) != PAGE_SIZE:
            raise InvalidValue(f"a flash page has {PAGE_SIZE} bytes")
        return struct.pack(">6sH", self.mac, self.page) + self.data

    @classmethod
    def _from(cls, payload: bytes) -> FlashPage:
        mac, page = struct.unpack(">6sH", payload[:8])
        return cls(mac, page, payload[8:cls.SIZE])


@dataclass(frozen=True)
class ResetRequest(_Message):
    """Erase settings and firmware (the device acts on it in flash mode)."""

    CMD: ClassVar[int] = Command.RESET
    SIZE: ClassVar[int] = 6

    mac: bytes

    def payload(self) -> bytes:
        _check_mac(self.mac)
        return self.mac

    @classmethod
    def _from(cls, payload: bytes) -> ResetRequest:
        return cls(payload[:6])


@dataclass(frozen=True)
class PingRequest(_Message):
    """Are you alive?  ``number`` is 0 for bnfos."""

    CMD: ClassVar[int] = Command.PING
    SIZE: ClassVar[int] = 8

    mac: bytes
    number: int = 0

    def payload(self) -> bytes:
        _check_mac(self.mac)
        return struct.pack(">6sH", self.mac, self.number)

    @classmethod
    def _from(cls, payload: bytes) -> PingRequest:
        return cls(*struct.unpack(">6sH", payload[:cls.SIZE]))


@dataclass(frozen=True)
class KickRequest(_Message):
    """Restart the hardware watchdog's interval."""

    CMD: ClassVar[int] = Command.KICK
    SIZE: ClassVar[int] = 7

    mac: bytes

    def payload(self) -> bytes:
        _check_mac(self.mac)
        return self.mac + b"\x00"

    @classmethod
    def _from(cls, payload: bytes) -> KickRequest:
        return cls(payload[:6])


@dataclass(frozen=True)
class AnyReply:
    """A reply whose payload the protocol leaves open (ping, kick, flash)."""

    cmd: int
    payload: bytes

    def encode(self) -> bytes:
        return frame(self.cmd, self.payload)


_REQUESTS = {cls.CMD: cls for cls in (ScanRequest, NetconfRequest, FlashPrepare, FlashPage,
                                      ResetRequest, PingRequest, KickRequest)}


def decode_request(datagram: bytes):
    """Decode a request datagram into its message class."""
    cmd, payload = unframe(datagram)
    try:
        cls = _REQUESTS[cmd]
    except KeyError:
        raise FormatError(f"unknown GBL4 command {cmd}") from None
    return cls.from_payload(payload)


def decode_reply(datagram: bytes):
    """Decode a reply datagram: ScanReply, StatusReply (netconf, reset) or AnyReply."""
    cmd, payload = unframe(datagram)
    if cmd == Command.SCAN:
        return ScanReply.from_payload(payload)
    if cmd in (Command.NETCONF, Command.RESET):
        return StatusReply.from_datagram_payload(cmd, payload)
    return AnyReply(cmd, payload)


def image_checksum(image: bytes) -> int:
    """The flash checksum: XOR of every byte of the image (padding adds nothing)."""
    return _xor(image)


def check_firmware_image(image: bytes) -> None:
    """Raise :class:`InvalidValue` saying why ``image`` is no firmware for the device.

    What is known: a raw binary, within :data:`MIN_IMAGE_SIZE` and
    :data:`MAX_IMAGE_SIZE`; not text (an Intel HEX file, an HTML page saved
    instead of the download), not an archive, not blank.
    """
    if not MIN_IMAGE_SIZE <= len(image) <= MAX_IMAGE_SIZE:
        raise InvalidValue(f"{len(image)} bytes: a firmware image has {MIN_IMAGE_SIZE} to "
                           f"{MAX_IMAGE_SIZE} bytes")
    for magic, what in _NOT_AN_IMAGE:
        if image.startswith(magic):
            raise InvalidValue(what)
    head = image[:4096]
    if _is_text(head):
        if head.startswith(b":") and all(c in b"0123456789ABCDEFabcdef\r\n:"
                                         for c in head):
            raise InvalidValue("an Intel HEX file: convert it to a raw binary first "
                               "(objcopy -I ihex -O binary)")
        raise InvalidValue("a text file, not a firmware image")
    if image.count(image[:1]) == len(image) and image[:1] in (b"\x00", b"\xff"):
        raise InvalidValue("blank: every byte is the same")


def _is_text(head: bytes) -> bool:
    """Text in any ASCII-compatible encoding: no control bytes, UTF-8 to its last line end."""
    if any(byte in _CONTROL_BYTES for byte in head):
        return False
    try:
        head[:head.rfind(b"\n") + 1 or len(head)].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def split_pages(image: bytes) -> list[bytes]:
    """Cut a firmware image into 512-byte pages, the last one zero-padded."""
    if not image:
        raise InvalidValue("the firmware image is empty")
    pages = [image[i:i + PAGE_SIZE] for i in range(0, len(image), PAGE_SIZE)]
    pages[-1] = pages[-1].ljust(PAGE_SIZE, b"\x00")
    return pages
