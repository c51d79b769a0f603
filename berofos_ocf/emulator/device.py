"""The model of one berofos: settings, relays, watchdog, power, flash mode.

Pure state with a lock; no sockets.  The HTTP and UDP front ends call it, the
control interface drives it, a ticker thread calls :meth:`EmulatedDevice.tick`
so that the watchdog fires on time.  Every relay movement is reported to the
``on_relay_change`` callback (the emulator's relay log) with its cause:
``http`` (a client set ``mode``), ``manual`` (the control interface),
``watchdog`` (expiry), ``power-off`` (rest position A--D) and ``boot``
(``modedef`` applied at power-on).

Where the real device is not known (protocol notes §6) the behaviour is an
option of :class:`DeviceOptions`, and the defaults are the most plausible guess.
"""

from __future__ import annotations

__all__ = [
    "CHECKBOXES",
    "DeviceOptions",
    "OptionSwitch",
    "option_switches",
    "EmulatedDevice",
    "Fault",
    "FAULT_KINDS",
    "RequestRejected",
    "factory_values",
]

import hashlib
import math
import threading
import time
from dataclasses import dataclass, field, fields
from urllib.parse import unquote

from ..configtxt import Settings, render_config_txt
from ..errors import InvalidValue
from ..gbl4 import Options, PAGE_SIZE, image_checksum
from ..keys import (
    KEYS,
    KEYS_BY_NAME,
    RELAY_A_B,
    RELAY_A_D,
    Key,
    Kind,
    parse_decimal,
    parse_ipv4,
)

# The firmware renders these with its checkbox macro: on the legacy firmware a
# group write that omits one of them turns it off.
CHECKBOXES = frozenset({"modedef", "power1def", "power2def", "wdogdef", "wdogaudio",
                        "wdogmail", "dhcp", "pwd", "syslog"})

FAULT_KINDS = (
    "latency",       # wait `seconds`, then answer normally
    "hang",          # accept and never answer
    "drop",          # close the connection without a word
    "reset",         # abort the connection with a TCP reset
    "status",        # answer with HTTP `status` (default 500)
    "garbage",       # answer bytes that are not HTTP
    "no-magic",      # config.txt without its magic line
    "crlf",          # config.txt with CRLF line ends
    "truncate",      # config.txt cut in the middle of a line
    "no-challenge",  # 401 without WWW-Authenticate
    "ignore-writes", # acknowledge ?cmd= requests without acting on them
)

_REQUEST_LOG_SIZE = 10_000  # an emulator left running must not grow without bound

# Unknown lines printed by firmware 1.5.7.
_UNKNOWN_LINES = {"1_szd00": "0", "1_szd01": "0", "2_mail": ""}


class RequestRejected(Exception):
    """A ``?cmd=`` request the device refuses (answered with HTTP 400)."""


def _switch(default, flag: str, help: str):
    """A field of :class:`DeviceOptions` with its command line switch."""
    return field(default=default, metadata={"flag": flag, "help": help})


@dataclass
class DeviceOptions:
    """Switches for what is not known about the real device.

    Each field carries its ``berofos emulator`` switch (``flag``, ``help``): a
    boolean switch turns the default around, a number switch takes seconds.
    """

    checked_style: bool = _switch(False, "--checked-style",
                                  "booleans print as 'checked'/'' instead of 1/0")
    legacy_group_reset: bool = _switch(False, "--legacy-group-reset", "firmware 1.3 bug: a "
                                       "write resets the group's omitted checkboxes")
    auth_reads: bool = _switch(True, "--open-reads", "config.txt readable without the password")
    relay_delay: float = _switch(0.0, "--relay-delay",
                                 "acknowledge a mode change before the relays move")
    defaults_at_boot: bool = _switch(True, "--no-boot-defaults",
                                     "ignore modedef/wdogdef/powerNdef at power-on")
    unknown_lines: bool = _switch(False, "--unknown-lines",
                                  "print firmware 1.5.7's unknown config.txt lines")


class OptionSwitch:
    """The command line switch of one :class:`DeviceOptions` field."""

    __slots__ = ("name", "flag", "help", "default")

    def __init__(self, name: str, flag: str, help: str, default) -> None:
        self.name = name
        self.flag = flag
        self.help = help
        self.default = default


def option_switches() -> list[OptionSwitch]:
    """Every switch of :class:`DeviceOptions`, in field order."""
    return [OptionSwitch(f.name, f.metadata["flag"], f.metadata["help"], f.default)
            for f in fields(DeviceOptions)]


@dataclass
class Fault:
    """An injected fault: ``kind`` (see FAULT_KINDS) on ``scope`` requests.

    ``scope`` is ``all``, ``read`` (config.txt) or ``write`` (``?cmd=``);
    ``count`` limits it to that many requests (None: until cleared).
    """

    kind: str
    scope: str = "all"
    count: int | None = None
    seconds: float = 0.0
    status: int = 500

    def applies_to(self, is_write: bool) -> bool:
        return self.scope == "all" or (self.scope == "write") == is_write


def factory_values(address: str, port: int) -> dict[str, object]:
    """The settings of a fresh device: relays A--B (the primary port), watchdog off.

    The real factory values are not known; A--B at power-on is what a failover
    switch in front of a primary PBX is for, and what Wazo's preparation sets.
    """
    return {
        "scenario": 0, "mode": RELAY_A_B, "modedef": RELAY_A_B,
        "power1": False, "power1def": False, "power2": False, "power2def": False,
        "hostname": "berofos", "address": address, "netmask": "255.255.255.0",
        "gateway": "0.0.0.0", "dns": "0.0.0.0", "dhcp": False, "port": port, "pwd": False,
        "smtpserv": "", "smtpfrom": "", "smtpto": "", "syslog": False,
        "slgip": "0.0.0.0", "slgpt": 514, "wdogdef": False, "wdogitime": 60,
        "wdogaudio": False, "wdogmail": False,
    }


@dataclass
class _Flash:
    pages: int = 0
    checksum: int = 0
    received: dict = field(default_factory=dict)


class EmulatedDevice:
    """One emulated berofos.

    ``name`` is how the emulator's log and control interface call it;
    ``mac`` six bytes; ``clock`` a monotonic clock, ``wall_clock`` the time of
    log entries.
    """

    def __init__(self, name: str, mac: bytes, address: str, port: int, *,
                 password: str | None = None, options: DeviceOptions | None = None,
                 initial: dict[str, object] | None = None, on_relay_change=None,
                 clock=time.monotonic, wall_clock=time.time) -> None:
        self.name = name
        self.mac = mac
        self.listen = (address, port)
        self.options = options or DeviceOptions()
        self._lock = threading.RLock()
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_relay_change = on_relay_change or (lambda entry: None)
        self.values = factory_values(address, port)
        self.values.update(initial or {})
        self.password = password or ""
        if password:
            self.values["pwd"] = True
        self.powered = True
        self.flash_mode = False
        self.ip_acl = False
        self.firmware = (1, 53)
        self.bootloader = (1, 2)
        self.image: bytes | None = None
        self._flash = _Flash()
        self._wdog_state = 0
        self._wdog_expires = 0.0
        self._faults: list[Fault] = []
        self.fault_generation = 0  # bumped by clear_faults: releases hanging requests
        self.requests: list[dict] = []  # the newest _REQUEST_LOG_SIZE
        self.refused_connections = 0  # while powered off or in flash mode
        self._pending_move: threading.Timer | None = None
        self._power_timer: threading.Timer | None = None
        if self.values.pop("wdog", False):
            self._start_watchdog()

    # -- state seen by clients ---------------------------------------------------------

    @property
    def relay_mode(self) -> int:
        return int(self.values["mode"])

    @property
    def watchdog_state(self) -> int:
        with self._lock:
            return self._wdog_state

    def settings(self) -> Settings:
        """The current values as ``config.txt`` shows them."""
        with self._lock:
            values = dict(self.values)
            values["wdog"] = self._wdog_state == 1
            values["wdogstate"] = self._wdog_state
            values["wdogrtime"] = self._watchdog_left()
            ordered = {key.name: values[key.name] for key in KEYS if key.readable}
            settings = Settings.from_values(ordered, checked_style=self.options.checked_style)
            # The firmware prints 6_wen from the watchdog's state, a number in
            # every style: 2 once the watchdog has fired.
            settings.raw[KEYS_BY_NAME["wdog"].wire] = str(self._wdog_state)
            if self.options.unknown_lines:
                settings.unknown.update(_UNKNOWN_LINES)
            return settings

    def config_txt(self, *, crlf: bool = False, no_magic: bool = False,
                   truncate: bool = False) -> bytes:
        text = render_config_txt(self.settings(), line_end="\r\n" if crlf else "\n")
        if no_magic:
            text = text.split("\n", 1)[1]
        if truncate:
            cut = text.index("4_mode=") + len("4_mode=")
            text = text[:cut]
        return text.encode()

    def needs_auth(self, is_write: bool) -> bool:
        with self._lock:
            return bool(self.values["pwd"]) and (is_write or self.options.auth_reads)

    def check_password(self, user: str, password: str) -> bool:
        with self._lock:
            return user == "admin" and password == self.password

    # -- HTTP writes -------------------------------------------------------------------

    def apply(self, cmd: int, params: list[tuple[str, str]]) -> None:
        """Apply a ``?cmd=`` request; raise :class:`RequestRejected` for a bad one."""
        with self._lock:
            if cmd == 5:
                self._apply_power(params)
                return
            group = {key.param: key for key in KEYS if key.cmd == cmd and key.groupable}
            if not group:
                raise RequestRejected(f"unknown cmd {cmd}")
            changes = {}
            for param, text in params:
                if cmd == 6 and param == "wstate":
                    continue  # rsclib sends it back; the state itself is read-only
                key = group.get(param)
                if key is None:
                    raise RequestRejected(f"cmd {cmd} has no parameter {param!r}")
                changes[key.name] = _parse_request_value(key, text)
            if self.options.legacy_group_reset:
                for key in group.values():
                    if key.name in CHECKBOXES and key.name not in changes:
                        changes[key.name] = False if key.kind == Kind.BOOL else 0
            for name, value in changes.items():
                self._set(name, value, cause="http")

    def _apply_power(self, params: list[tuple[str, str]]) -> None:
        ports = [value for name, value in params if name == "p"]
        states = [value for name, value in params if name == "s"]
        if not ports or len(ports) != len(states) or len(params) != 2 * len(ports):
            raise RequestRejected("cmd 5 needs p=PORT&s=STATE pairs")
        changes = {}
        for port, state in zip(ports, states):
            if port not in ("0", "1"):
                raise RequestRejected(f"no power port {port!r}")
            key = KEYS_BY_NAME["power1" if port == "0" else "power2"]
            changes[key.name] = _parse_request_value(key, state)
        self.values.update(changes)  # all or nothing, like every other request

    def _set(self, name: str, value: object, *, cause: str) -> None:
        if name == "mode":
            self._request_relays(int(value), cause)
        elif name == "wdog":
            if value:
                self._start_watchdog()
            else:
                self._wdog_state = 0
        elif name == "apwd":
            self.password = str(value)
        else:
            self.values[name] = value

    def _request_relays(self, mode: int, cause: str) -> None:
        self._cancel_pending_move()
        delay = self.options.relay_delay if cause == "http" else 0.0
        if delay <= 0:
            self._move_relays(mode, cause)
            return
        timer = threading.Timer(delay, self._delayed_move, args=(mode, cause))
        timer.daemon = True
        self._pending_move = timer
        timer.start()

    def _cancel_pending_move(self) -> None:
        if self._pending_move is not None:
            self._pending_move.cancel()
            self._pending_move = None

    def _delayed_move(self, mode: int, cause: str) -> None:
        with self._lock:
            # A timer that fired while a newer request held the lock has been
            # superseded: cancel() came too late to stop it, this check does not.
            if self._pending_move is not threading.current_thread():
                return
            self._pending_move = None
            if self.powered:
                self._move_relays(mode, cause)

    def _move_relays(self, mode: int, cause: str) -> None:
        old = int(self.values["mode"])
        self.values["mode"] = mode
        if old != mode:
            self._on_relay_change({"time": self._wall_clock(), "device": self.name,
                                   "address": "%s:%d" % self.listen, "old": old, "new": mode,
                                   "cause": cause})

    # -- watchdog ----------------------------------------------------------------------

    def _start_watchdog(self) -> None:
        self._wdog_state = 1
        self._wdog_expires = self._clock() + int(self.values["wdogitime"])

    def _watchdog_left(self) -> int:
        if self._wdog_state != 1:
            return 0
        return max(0, math.ceil(self._wdog_expires - self._clock()))

    def kick(self) -> None:
        """A GBL4 kick: restart the interval while the watchdog runs."""
        with self._lock:
            if self._wdog_state == 1:
                self._wdog_expires = self._clock() + int(self.values["wdogitime"])

    def expire_watchdog(self) -> None:
        """Fire the watchdog now (as if nobody had kicked it)."""
        with self._lock:
            self._wdog_state = 2
            self._move_relays(RELAY_A_D, "watchdog")

    def tick(self) -> None:
        with self._lock:
            if self.powered and self._wdog_state == 1 and self._clock() >= self._wdog_expires:
                self.expire_watchdog()

    # -- power -------------------------------------------------------------------------

    def power_off(self) -> None:
        with self._lock:
            self._cancel_power_timer()
            if not self.powered:
                return
            self._cancel_pending_move()
            self.powered = False
            self._wdog_state = 0
            self._move_relays(RELAY_A_D, "power-off")  # the relays' rest position

    def power_on(self) -> None:
        """Power back on, in operation: flash mode needs the button held (see
        :meth:`set_flash_mode`), so a power cycle leaves it."""
        with self._lock:
            self._cancel_power_timer()
            if self.powered:
                return
            self.powered = True
            self.flash_mode = False
            self._flash = _Flash()
            if self.options.defaults_at_boot:
                self.values["power1"] = self.values["power1def"]
                self.values["power2"] = self.values["power2def"]
                if self.values["wdogdef"]:
                    self._start_watchdog()
                self._move_relays(int(self.values["modedef"]), "boot")

    def power_cycle(self, off_seconds: float = 1.0) -> None:
        """Power off now and on again after ``off_seconds``."""
        with self._lock:
            self.power_off()
            timer = threading.Timer(off_seconds, self._timed_power_on)
            timer.daemon = True
            self._power_timer = timer
            timer.start()

    def _timed_power_on(self) -> None:
        with self._lock:
            if self._power_timer is threading.current_thread():  # not superseded
                self.power_on()

    def _cancel_power_timer(self) -> None:
        if self._power_timer is not None and self._power_timer is not threading.current_thread():
            self._power_timer.cancel()
        self._power_timer = None

    def shutdown(self) -> None:
        """Cancel pending timers (a delayed relay move, a power-on): the emulator stops."""
        with self._lock:
            self._cancel_pending_move()
            self._cancel_power_timer()

    def set_flash_mode(self, on: bool) -> None:
        """The black button held at power-on: the bootloader takes over (no watchdog)."""
        with self._lock:
            self.flash_mode = on
            self._flash = _Flash()
            if on:
                self._wdog_state = 0

    def set_options(self, changes: dict) -> None:
        """Change behaviour switches; all or nothing, each with its field's type."""
        with self._lock:
            checked = {}
            for name, value in changes.items():
                if name not in DeviceOptions.__dataclass_fields__:
                    raise InvalidValue(f"unknown option {name!r}")
                current = getattr(self.options, name)
                if isinstance(current, bool):
                    if not isinstance(value, bool):
                        raise InvalidValue(f"option {name} takes true or false")
                elif isinstance(current, float):
                    if isinstance(value, bool) or not isinstance(value, (int, float)) \
                            or value < 0:
                        raise InvalidValue(f"option {name} takes a number of seconds")
                    value = float(value)
                checked[name] = value
            for name, value in checked.items():
                setattr(self.options, name, value)

    # -- faults ------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise InvalidValue(f"unknown fault {fault.kind!r} (known: {', '.join(FAULT_KINDS)})")
        if fault.scope not in ("all", "read", "write"):
            raise InvalidValue("fault scope is all, read or write")
        if fault.count is not None and (type(fault.count) is not int or fault.count < 1):
            raise InvalidValue("fault count is a whole number of requests, 1 or more")
        if isinstance(fault.seconds, bool) or not isinstance(fault.seconds, (int, float)) \
                or fault.seconds < 0:
            raise InvalidValue("fault seconds is a number, 0 or more")
        if type(fault.status) is not int or not 100 <= fault.status <= 599:
            raise InvalidValue("fault status is an HTTP status from 100 to 599")
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self.fault_generation += 1

    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take_faults(self, is_write: bool) -> list[Fault]:
        """The faults that hit this request (counted ones are used up)."""
        with self._lock:
            hit = [f for f in self._faults if f.applies_to(is_write)]
            for fault in hit:
                if fault.count is not None:
                    fault.count -= 1
            self._faults = [f for f in self._faults if f.count is None or f.count > 0]
            return hit

    def record_request(self, path: str, status: int, received: float | None = None) -> None:
        """Log a served request: ``received`` when it arrived, ``time`` when answered."""
        with self._lock:
            path = _hide_passwords(path)
            now = self._wall_clock()
            self.requests.append({"received": received or now, "time": now, "path": path,
                                  "status": status})
            if len(self.requests) > _REQUEST_LOG_SIZE:
                del self.requests[0]

    # -- GBL4 --------------------------------------------------------------------------

    def scan_fields(self) -> dict:
        """What a scan reply says about this device."""
        with self._lock:
            options = Options.DHCP if self.values["dhcp"] else 0
            if self.values["pwd"]:
                options |= Options.HTTP_AUTH
            if self.ip_acl:
                options |= Options.IP_ACL
            return {
                "mac": self.mac, "hw_magic": 0x0050, "bootloader": self.bootloader,
                "firmware": self.firmware, "dev_mode": 1 if self.flash_mode else 0,
                "ip": self.values["address"] or "0.0.0.0",
                "netmask": self.values["netmask"] or "0.0.0.0",
                "gateway": self.values["gateway"] or "0.0.0.0", "phy_conf": 3, "phy_state": 7,
                "options": int(options), "http_port": int(self.values["port"]),
            }

    def netconf(self, ip: str, netmask: str, gateway: str, options: int, http_port: int) -> int:
        """Apply a GBL4 netconf; return the error code for the reply (0 = OK).

        The options byte sets DHCP, password protection and the IP ACL, as the
        scan reply reports them.  The emulator keeps serving on its --listen
        address: whether a real device moves at once is not known.
        """
        with self._lock:
            if not 1 <= http_port <= 65535:
                return 1
            self.values.update(address=ip, netmask=netmask, gateway=gateway,
                               dhcp=bool(options & Options.DHCP),
                               pwd=bool(options & Options.HTTP_AUTH), port=http_port)
            self.ip_acl = bool(options & Options.IP_ACL)
            return 0

    def flash_prepare(self, pages: int, checksum: int) -> bool:
        with self._lock:
            if not self.flash_mode:
                return False
            self._flash = _Flash(pages, checksum)
            return True

    def flash_page(self, page: int, data: bytes) -> bool:
        with self._lock:
            if not self.flash_mode or page >= self._flash.pages:
                return False
            self._flash.received[page] = data
            if len(self._flash.received) == self._flash.pages:
                image = b"".join(self._flash.received[i] for i in range(self._flash.pages))
                if image_checksum(image) == self._flash.checksum:
                    self.image = image
            return True

    def image_info(self) -> dict | None:
        with self._lock:
            if self.image is None:
                return None
            return {"pages": len(self.image) // PAGE_SIZE,
                    "sha256": hashlib.sha256(self.image).hexdigest()}

    def erase(self) -> int:
        """GBL4 reset: erase settings and firmware (flash mode only); error code."""
        with self._lock:
            if not self.flash_mode:
                return 1
            address, port = self.listen
            self.values = factory_values(address, port)
            self._wdog_state = 0
            self.password = ""
            self.firmware = (0, 0)
            self.image = None
            return 0

    # -- control -----------------------------------------------------------------------

    def operator_set(self, values: dict[str, object]) -> None:
        """Set values by hand (front panel, engineering access): no auth, no HTTP."""
        with self._lock:
            parsed = {}
            for name, value in values.items():
                key = KEYS_BY_NAME.get(name)
                if key is None or not key.writable:
                    raise InvalidValue(f"cannot set {name!r}")
                parsed[name] = key.parse_user(value) if isinstance(value, str) else value
            for name, value in parsed.items():  # nothing applied if one value is refused
                self._set(name, value, cause="manual")

    def describe(self) -> dict:
        """Everything the control interface shows about this device."""
        with self._lock:
            settings = self.settings().values()
            return {
                "name": self.name, "address": "%s:%d" % self.listen,
                "mac": ":".join(f"{b:02X}" for b in self.mac), "powered": self.powered,
                "flash_mode": self.flash_mode, "relay_mode": self.relay_mode,
                "watchdog_state": self._wdog_state,
                "firmware": "%d.%d" % self.firmware, "settings": settings,
                "password_set": bool(self.password), "image": self.image_info(),
                "faults": [vars(f) for f in self._faults],
                "options": vars(self.options),
                "requests": len(self.requests),
                "refused_connections": self.refused_connections,
                "writes": sum(1 for r in self.requests if r["path"].startswith("/?")),
            }


def _hide_passwords(path: str) -> str:
    """A request path with every ``apwd`` value replaced: passwords never reach a log.

    Names are compared decoded, as the device decodes them (``%61pwd`` is apwd).
    """
    head, sep, query = path.partition("?")
    if not sep:
        return path
    items = []
    for item in query.split("&"):
        name, equals, _ = item.partition("=")
        if equals and unquote(name.replace("+", " ")) == "apwd":
            item = f"{name}=<hidden>"
        items.append(item)
    return f"{head}?{'&'.join(items)}"


def _parse_request_value(key: Key, text: str) -> object:
    """Parse a value from a request the way a tolerant firmware would."""
    if key.kind in (Kind.BOOL, Kind.SWITCH):
        word = text.strip().lower()
        if word in ("1", "on", "checked", "true", "yes"):
            flag = True
        elif word in ("0", "", "off", "false", "no"):
            flag = False
        else:
            raise RequestRejected(f"{key.param}={text!r} is not 0 or 1")
        return flag if key.kind == Kind.BOOL else int(flag)
    if key.kind == Kind.INT:
        number = parse_decimal(text)
        if number is None or not key.minimum <= number <= (key.maximum or 65535):
            raise RequestRejected(f"{key.param}={text[:20]!r} is out of range")
        return number
    if key.kind == Kind.IPV4:
        try:
            return parse_ipv4(text)
        except InvalidValue:
            raise RequestRejected(f"{key.param}={text!r} is not an IPv4 address") from None
    if key.kind == Kind.SECRET and len(text) > (key.max_length or 15):
        raise RequestRejected("password too long")
    if any(ord(c) < 32 for c in text):
        raise RequestRejected(f"{key.param} holds control characters")
    return text

