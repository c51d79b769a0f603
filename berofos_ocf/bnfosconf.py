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

Every error names the file and the line, and quotes nothing of a line it
could not parse: a mistyped line may be a password, and the message reaches
``crm_mon`` and the logs.  :func:`parse_bnfos_conf` is pure;
:func:`load_bnfos_conf` reads the file and also reports whether it is readable
by others (it may hold a password).

Reading is bounded: only a regular file of at most :data:`MAX_FILE_SIZE`
bytes is read, opened without blocking, so that ``config=/dev/zero`` or a FIFO
fails at once (:class:`ConfigFileError` kinds ``not-a-file`` and ``too-large``,
besides ``missing``, ``permission``, ``syntax`` and ``unknown-device``).
:func:`write_bnfos_conf` replaces a file atomically and durably, through a
symbolic link, keeping owner, group and (narrowed) mode; :func:`update_logins`
edits login lines and keeps every other byte.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_HTTP_PORT",
    "MAX_FILE_SIZE",
    "DeviceEntry",
    "BnfosConf",
    "parse_bnfos_conf",
    "read_bnfos_bytes",
    "load_bnfos_conf",
    "render_bnfos_conf",
    "write_bnfos_conf",
    "parse_host",
    "parse_device_names",
    "set_login",
    "update_logins",
    "merge_devices",
]

import contextlib
import copy
import os
import stat
import tempfile

from .errors import ConfigFileError, InvalidValue
from .keys import parse_decimal, parse_ipv4

DEFAULT_PATH = "/etc/bnfos.conf"
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SEPARATORS = (" ", "\t", "=")  # what bnfos skips between a key and its value
DEFAULT_HTTP_PORT = 80
_MAC_LENGTH = 17
MAX_FILE_SIZE = 1024 * 1024  # a file for a hundred devices is under 10 kB
_BOM = b"\xef\xbb\xbf"
_PRIVATE_MODE = 0o640  # at most: owner writes, its group (e.g. the cluster's) reads
_NEW_FILE_MODE = 0o600
_EXPECTED_LINE = "syntax error: expected [name], mac, host or login"
_EXPECTED_HOST = ("host must be a dotted-quad IPv4 address like 10.0.0.5, with :PORT "
                  "(1 to 65535) when the port is not 80")


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


def parse_device_names(text: str) -> list[str]:
    """Device names from one word list, separated by spaces, tabs or commas.

    What the agent's ``devices`` parameter and each ``-f`` of the command line take.
    """
    return text.replace(",", " ").split()


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
                raise fail("bad section header: expected [name]")
            name = name.strip()
            if any(d.name.lower() == name.lower() for d in devices):
                raise fail(f"device [{name}] is defined twice")
            current = DeviceEntry(name, line=number)
            devices.append(current)
            continue
        letters = len(line) - len(line.lstrip(_LETTERS))
        word = line[:letters].lower()
        if word not in ("mac", "host", "login") or line[letters:letters + 1] not in _SEPARATORS:
            raise fail(_EXPECTED_LINE)
        if current is None:
            raise fail(f"{word} outside a [device] section")
        value = _value_after(line, line[:letters])
        if word == "mac":
            if len(value) != _MAC_LENGTH:
                raise fail("mac must be 17 characters like 00:19:32:00:12:1D, "
                           f"not {len(value)}")
            current.mac = _normalise_mac(value, fail)
        elif word == "host":
            try:
                current.host, current.port = parse_host(value)
            except InvalidValue:
                raise fail(_EXPECTED_HOST) from None
        else:
            user, sep, password = value.partition(":")
            if not user or not sep:
                # without the colon bnfos would send the whole line as the user
                raise fail("login must be USER:PASSWORD, e.g. admin:secret")
            if not value.isascii() or not value.isprintable():
                # HTTP Basic sends Latin-1; the device stores ASCII.  Not quoted:
                # it is a password.
                raise fail("login must be printable ASCII")
            current.user, current.password = user, password
    return BnfosConf(devices, path)


def _normalise_mac(value: str, fail) -> str:
    # Like bnfos: six pairs of hex digits, any one character between them.
    pairs = [value[i:i + 2] for i in range(0, 17, 3)]
    if not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in pairs):
        raise fail("mac must be six pairs of hex digits like 00:19:32:00:12:1D")
    return ":".join(pairs).upper()


def read_bnfos_bytes(path: str = DEFAULT_PATH) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file of at most :data:`MAX_FILE_SIZE` bytes, and its status.

    Opened without blocking (a FIFO would wait for a writer for ever), then
    checked with fstat, then read no further than the limit: ``/dev/zero``
    and a FIFO are ``not-a-file``, a larger file is ``too-large``.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigFileError("file not found", path=path, kind="missing") from None
    except PermissionError:
        raise ConfigFileError("permission denied", path=path, kind="permission") from None
    except OSError as err:
        raise ConfigFileError((err.strerror or "cannot be read").lower(), path=path,
                              kind="permission") from None
    try:
        info = os.fstat(descriptor)
        _check_regular(path, info)
        data = _read_at_most(path, descriptor, MAX_FILE_SIZE)
    finally:
        os.close(descriptor)
    return data, info


def _check_regular(path: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ConfigFileError("is a directory", path=path, kind="missing")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigFileError("not a regular file (a device, FIFO or socket)", path=path,
                              kind="not-a-file")
    if info.st_size > MAX_FILE_SIZE:
        raise ConfigFileError(f"larger than {MAX_FILE_SIZE // 1024} KiB", path=path,
                              kind="too-large")


def _read_at_most(path: str, descriptor: int, limit: int) -> bytes:
    chunks, size = [], 0
    try:
        while size <= limit:
            chunk = os.read(descriptor, limit + 1 - size)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise ConfigFileError((err.strerror or "cannot be read").lower(), path=path,
                              kind="permission") from None
    # the file grew after fstat
    raise ConfigFileError(f"larger than {limit // 1024} KiB", path=path, kind="too-large")


def load_bnfos_conf(path: str = DEFAULT_PATH) -> BnfosConf:
    """Read and parse a file; missing and unreadable files are distinct errors.

    Text that is not UTF-8 (a Latin-1 comment) is read with replacement
    characters, a byte order mark is skipped, as ``bnfos`` skips what it
    does not use.
    """
    data, info = read_bnfos_bytes(path)
    conf = parse_bnfos_conf(data.decode("utf-8-sig", errors="replace"), path)
    conf.world_readable = bool(info.st_mode & stat.S_IROTH)
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


def update_logins(data: bytes, names: list[str], user: str, password: str,
                  path: str = DEFAULT_PATH) -> bytes:
    """The bytes of a file with the ``login`` line of each device set, every other byte kept.

    A byte order mark and bytes that are not UTF-8 (a Latin-1 comment) come
    out as they went in.  The result is parsed before it is returned, so that
    a caller can check an edit before it changes anything else.
    """
    bom = _BOM if data.startswith(_BOM) else b""
    text = data[len(bom):].decode("utf-8", errors="surrogateescape")
    for name in names:
        text = set_login(text, name, user, password, path)
    parse_bnfos_conf(text, path)
    return bom + text.encode("utf-8", errors="surrogateescape")


def write_bnfos_conf(path: str, data: bytes) -> None:
    """Replace the file at ``path`` with ``data``, atomically and durably.

    A symbolic link is written through: its target is replaced, the link
    stays.  The new file keeps the owner and group of the old one and its
    mode, narrowed to 0640 when it holds a password (never opened wider); a
    new file gets 0600.  The temporary file is made next to the target, and
    file and directory are synced before and after the rename, so that a
    crash leaves the old file or the new one, never an empty one.
    """
    _refuse_planted_links(path)
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    private = parse_bnfos_conf(data.decode("utf-8-sig", errors="replace"), path).holds_password
    descriptor, temporary = tempfile.mkstemp(prefix=".bnfos.", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as out:
            if old is not None:
                _keep_owner(out.fileno(), old)
            os.fchmod(out.fileno(), _written_mode(old, private))
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        _sync_directory(directory)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_directory(directory)


def _refuse_planted_links(path: str, hops: int = 40) -> None:
    """Refuse to follow a link that another user planted where anyone may write.

    realpath() resolves links in user space, so the kernel's
    ``fs.protected_symlinks`` never gets to apply its rule; this applies it:
    in a world-writable directory with the sticky bit (``/tmp``), a link is
    followed only when it belongs to the writer or to the directory's owner.
    Otherwise ``berofos scan --write /tmp/bnfos.conf`` run as root would replace
    whatever file a local user pointed that name at.
    """
    for _ in range(hops):
        try:
            link = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISLNK(link.st_mode):
            return
        parent = os.stat(os.path.dirname(os.path.abspath(path)))
        shared = parent.st_mode & stat.S_IWOTH and parent.st_mode & stat.S_ISVTX
        if shared and link.st_uid not in (os.geteuid(), parent.st_uid):
            raise ConfigFileError("a link another user made in a directory anyone may write "
                                  "to: not written through", path=path, kind="permission")
        path = os.path.join(os.path.dirname(path), os.readlink(path))


def _written_mode(old: os.stat_result | None, private: bool) -> int:
    if old is None:
        return _NEW_FILE_MODE
    mode = stat.S_IMODE(old.st_mode) & 0o777
    return mode & _PRIVATE_MODE if private else mode


def _keep_owner(descriptor: int, old: os.stat_result) -> None:
    # root keeps both; a user keeps the group if a member of it; otherwise the
    # file becomes the writer's, which is what an editor would do too
    for uid in (old.st_uid, -1):
        try:
            os.fchown(descriptor, uid, old.st_gid)
            return
        except PermissionError:
            continue


def _sync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def merge_devices(existing: list[DeviceEntry], found: list[DeviceEntry], *,
                  accept_move=None) -> list[DeviceEntry]:
    """Devices for a rescanned file: the file's sections, in their order, then new devices.

    A found device is the section with its MAC, or else the section without
    a MAC at its address (``host`` and port); that section keeps its name and
    login and takes the MAC and, when ``accept_move(known, found)`` allows (by
    default always), the new address.  A found device without an address
    keeps the known one.  Other found devices are appended, named ``fos1``,
    ``fos2`` … skipping names in use; a device is never written twice.
    """
    merged = [copy.copy(device) for device in existing]
    by_mac = {d.mac.upper(): d for d in merged if d.mac}
    by_address = {(d.host, d.port): d for d in reversed(merged) if not d.mac and d.host}
    used = {d.name.lower() for d in merged}
    for device in found:
        known = by_mac.get(device.mac.upper()) if device.mac else None
        known = known or by_address.pop((device.host, device.port), None)
        if known is None:
            known = DeviceEntry(_free_name(used))
            merged.append(known)
        _update_known(known, device, accept_move)
        if known.mac:
            by_mac[known.mac.upper()] = known
    return merged


def _free_name(used: set[str]) -> str:
    number = 1
    while f"fos{number}" in used:
        number += 1
    used.add(f"fos{number}")
    return f"fos{number}"


def _update_known(known: DeviceEntry, found: DeviceEntry, accept_move) -> None:
    known.mac = known.mac or found.mac
    if found.host in (None, "0.0.0.0"):
        return  # no address yet: keep the known one
    moved = known.host not in (None, "0.0.0.0") and (known.host, known.port) != (
        found.host, found.port)
    if not moved or accept_move is None or accept_move(known, found):
        known.host, known.port = found.host, found.port
