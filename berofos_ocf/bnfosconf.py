"""``/etc/bnfos.conf``: the device list shared with beroNet's ``bnfos`` tool.

The format is what ``bnfos -f NAME`` reads, line by line, by first character:
empty lines and lines starting with a tab, ``#`` or ``;`` are ignored; ``[name]``
opens a device section (names compare case-insensitively); ``mac``, ``host`` and
``login`` set its values (after the key, spaces, tabs and ``=`` are skipped);
anything else, a leading space included, is a syntax error.  ``host`` is a
dotted-quad IPv4 address; as an extension (for the emulator and devices moved
off port 80) it may carry ``:PORT``, which ``bnfos`` itself does not read, so
:func:`render_bnfos_conf` writes a port only when it is not 80.  Where ``bnfos``
is silently lax (an unparsable ``host`` becomes the broadcast address) this
reader refuses with the line number instead.

Every error names the file and the line.  :func:`parse_bnfos_conf` is pure;
:func:`load_bnfos_conf` reads the file and also reports whether it is readable
by others (it may hold a password).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_HTTP_PORT",
    "DeviceEntry",
    "BnfosConf",
    "parse_bnfos_conf",
    "load_bnfos_conf",
    "render_bnfos_conf",
    "parse_host",
    "set_login",
    "merge_devices",
]

import os
import stat

from .errors import ConfigFileError, InvalidValue
from .keys import parse_decimal, parse_ipv4

DEFAULT_PATH = "/etc/bnfos.conf"
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SEPARATORS = (" ", "\t", "=")  # what bnfos skips between a key and its value
DEFAULT_HTTP_PORT = 80
_MAC_LENGTH = 17


class DeviceEntry:
    """One ``[section]`` of the file: a device's name, MAC, address and login.

    ``password`` never appears in ``repr()`` or ``label``.
    """

    __slots__ = ("name", "mac", "host", "port", "user", "password", "line")

    def __init__(self, name: str, *, mac: str | None = None, host: str | None = None,
                 port: int = DEFAULT_HTTP_PORT, user: str | None = None,
                 password: str | None = None, line: int | None = None) -> None:
        self.name = name
        self.mac = mac
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.line = line

    @property
    def address(self) -> str:
        """``host`` or ``host:port`` when the port is not 80."""
        if self.port == DEFAULT_HTTP_PORT:
            return str(self.host)
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """How messages name the device: ``fos1 (10.34.1.50)``, or its address alone."""
        if self.name in (self.address, self.host):
            return self.address
        return f"{self.name} ({self.address})"

    @property
    def has_login(self) -> bool:
        return self.user is not None

    def __repr__(self) -> str:
        login = ", login=<hidden>" if self.has_login else ""
        return f"DeviceEntry({self.name!r}, mac={self.mac!r}, host={self.address!r}{login})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeviceEntry):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in self.__slots__ if a != "line")


class BnfosConf:
    """The devices of one file, in file order."""

    __slots__ = ("path", "devices", "world_readable")

    def __init__(self, devices: list[DeviceEntry], path: str = DEFAULT_PATH,
                 world_readable: bool = False) -> None:
        self.path = path
        self.devices = devices
        self.world_readable = world_readable

    @property
    def holds_password(self) -> bool:
        return any(device.password for device in self.devices)

    def select(self, names: list[str] | None = None) -> list[DeviceEntry]:
        """The devices called ``names`` (case-insensitive), or all of them.

        Raises :class:`ConfigFileError` (kind ``unknown-device``) for a name the
        file does not have, and for a selected device without ``host``.
        """
        if not names:
            chosen = list(self.devices)
            if not chosen:
                raise ConfigFileError("no device section in the file", path=self.path,
                                      kind="unknown-device")
        else:
            by_name = {device.name.lower(): device for device in self.devices}
            chosen = []
            for name in names:
                device = by_name.get(name.strip().lower())
                if device is None:
                    raise ConfigFileError(f"no device [{name}] in the file", path=self.path,
                                          kind="unknown-device")
                if device not in chosen:
                    chosen.append(device)
        for device in chosen:
            if device.host is None:
                raise ConfigFileError(f"device [{device.name}] has no host line",
                                      path=self.path, line=device.line, kind="syntax")
        return chosen


def parse_host(text: str) -> tuple[str, int]:
    """``10.0.0.5`` or ``10.0.0.5:8081`` → ``("10.0.0.5", 8081)``; raise :class:`InvalidValue`."""
    host, sep, port = text.strip().partition(":")
    address = parse_ipv4(host)
    if not sep:
        return address, DEFAULT_HTTP_PORT
    number = parse_decimal(port)
    if number is None or not 1 <= number <= 65535:
        raise InvalidValue(f"{text!r}: the port must be a number from 1 to 65535")
    return address, number


def _value_after(line: str, key: str) -> str:
    return line[len(key):].lstrip(" \t=").rstrip()


def parse_bnfos_conf(text: str, path: str = DEFAULT_PATH) -> BnfosConf:
    """Parse the text of a ``bnfos.conf``; raise :class:`ConfigFileError` naming the line."""
    devices: list[DeviceEntry] = []
    current: DeviceEntry | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")

        def fail(message: str) -> ConfigFileError:
            return ConfigFileError(message, path=path, line=number)

        if line == "" or line[0] in "\t#;":
            continue
        if line[0].isspace():
            raise fail("syntax error: the line starts with a blank")
        if line[0] == "[":
            name, closed, rest = line[1:].partition("]")
            if not closed or not name.strip() or rest.strip():
                raise fail(f"bad section header {line!r}")
            name = name.strip()
            if any(d.name.lower() == name.lower() for d in devices):
                raise fail(f"device [{name}] is defined twice")
            current = DeviceEntry(name, line=number)
            devices.append(current)
            continue
        letters = len(line) - len(line.lstrip(_LETTERS))
        word = line[:letters].lower()
        if word not in ("mac", "host", "login") or line[letters:letters + 1] not in _SEPARATORS:
            # Only the key is quoted: a mistyped line may hold a password.
            raise fail("syntax error: expected [name], mac, host or login, "
                       f"got {word or line[0]!r}")
        if current is None:
            raise fail(f"{word} outside a [device] section")
        value = _value_after(line, line[:letters])
        if word == "mac":
            if len(value) != _MAC_LENGTH:
                raise fail(f"mac must be 17 characters like 00:19:32:00:12:1D, got {value!r}")
            current.mac = _normalise_mac(value, fail)
        elif word == "host":
            try:
                current.host, current.port = parse_host(value)
            except InvalidValue as err:
                raise fail(f"host: {err}") from None
        else:
            user, sep, password = value.partition(":")
            if not user:
                raise fail("login must be USER:PASSWORD, e.g. admin:secret")
            if not value.isascii() or not value.isprintable():
                # HTTP Basic sends Latin-1; the device stores ASCII.  Not quoted:
                # it is a password.
                raise fail("login must be printable ASCII")
            current.user, current.password = user, password if sep else ""
    return BnfosConf(devices, path)


def _normalise_mac(value: str, fail) -> str:
    # Like bnfos: six pairs of hex digits, any one character between them.
    pairs = [value[i:i + 2] for i in range(0, 17, 3)]
    if not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in pairs):
        raise fail(f"mac {value!r} is not like 00:19:32:00:12:1D")
    return ":".join(pairs).upper()


def load_bnfos_conf(path: str = DEFAULT_PATH) -> BnfosConf:
    """Read and parse a file; missing and unreadable files are distinct errors."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.read()
    except FileNotFoundError:
        raise ConfigFileError("file not found", path=path, kind="missing") from None
    except PermissionError:
        raise ConfigFileError("permission denied", path=path, kind="permission") from None
    except IsADirectoryError:
        raise ConfigFileError("is a directory", path=path, kind="missing") from None
    except OSError as err:
        raise ConfigFileError(err.strerror or "cannot be read", path=path,
                              kind="permission") from None
    conf = parse_bnfos_conf(text, path)
    conf.world_readable = bool(mode & stat.S_IROTH)
    return conf


def render_bnfos_conf(devices: list[DeviceEntry]) -> str:
    """Write devices the way ``bnfos --scan -x`` does, so that ``bnfos -f`` reads it.

    Each section starts with an empty line; a device without address gets
    ``;host = 0.0.0.0``, one without login the ``#login = <user>:<password>``
    reminder.
    """
    lines = []
    for device in devices:
        lines += ["", f"[{device.name}]"]
        if device.mac:
            lines.append(f"mac = {device.mac}")
        if device.host and device.host != "0.0.0.0":
            lines.append(f"host = {device.address}")
        else:
            lines.append(";host = 0.0.0.0")
        if device.has_login:
            lines.append(f"login = {device.user}:{device.password or ''}")
        else:
            lines.append("#login = <user>:<password>")
    return "".join(line + "\n" for line in lines)


def set_login(text: str, name: str, user: str, password: str, path: str = DEFAULT_PATH) -> str:
    """Return ``text`` with the ``login`` line of device ``name`` set, the rest untouched.

    An existing ``login`` (or ``#login`` reminder) line of the section is
    replaced; otherwise the line goes at the end of the section.
    """
    parse_bnfos_conf(text, path)  # refuse to edit a file that does not parse
    lines = text.split("\n")
    start = end = None
    for index, line in enumerate(lines):
        if line.startswith("["):
            if start is not None:
                end = index
                break
            if line[1:].split("]", 1)[0].strip().lower() == name.lower():
                start = index
    if start is None:
        raise ConfigFileError(f"no device [{name}] in the file", path=path, kind="unknown-device")
    end = end if end is not None else len(lines)
    new_line = f"login = {user}:{password}"
    for index in range(start + 1, end):
        if lines[index].lstrip("#;").lower().startswith("login"):
            lines[index] = new_line
            return "\n".join(lines)
    insert_at = end
    while insert_at > start + 1 and lines[insert_at - 1].strip() == "":
        insert_at -= 1
    lines.insert(insert_at, new_line)
    return "\n".join(lines)


def merge_devices(existing: list[DeviceEntry], found: list[DeviceEntry]) -> list[DeviceEntry]:
    """Devices for a rescanned file: known MACs keep their name and login.

    ``found`` come from a scan (name unset or provisional); devices of
    ``existing`` that the scan did not see are kept, after the found ones.
    New devices are named ``fos1``, ``fos2`` … skipping names in use.
    """
    by_mac = {d.mac.upper(): d for d in existing if d.mac}
    used = {d.name.lower() for d in existing}
    merged = []
    counter = 1
    for device in found:
        known = by_mac.pop(device.mac.upper(), None) if device.mac else None
        host, port = device.host, device.port
        if known is not None:
            name, user, password = known.name, known.user, known.password
            if host in (None, "0.0.0.0") and known.host:
                host, port = known.host, known.port  # no address yet: keep the known one
        else:
            while f"fos{counter}" in used:
                counter += 1
            name, user, password = f"fos{counter}", None, None
            used.add(name)
        merged.append(DeviceEntry(name, mac=device.mac, host=host, port=port, user=user,
                                  password=password))
    merged += [d for d in existing if d.mac is None or d.mac.upper() in by_mac]
    return merged
