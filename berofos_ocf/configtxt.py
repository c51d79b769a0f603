"""``/config.txt`` and ``?cmd=`` requests: the device's HTTP formats, without I/O.

Reading: :func:`parse_config_txt` turns the body of ``GET /config.txt`` into
:class:`Settings`.  It is tolerant the way a careful client must be: LF or CRLF,
``1``/``checked`` true and ``0``/empty false, unknown lines ignored, lines
before the magic ignored.  Two things are refused: a body without the magic line
(not a berofos answer at all) and, silently, a last line without its LF (a
truncated answer: ``4_mode=`` cut from ``4_mode=1`` must not read as A--D; the
C client ignores that line too).  Values are converted when asked for, so a
garbled field nobody needs does not make the whole answer unusable.

Writing: :func:`build_write_queries` turns a set of changes into requests that
are safe on the legacy firmware where setting one value of a ``cmd`` group
resets the group's other checkboxes: each request carries the whole group, the
unchanged values taken from the current settings.
"""

from __future__ import annotations

__all__ = [
    "MAGIC_KEY",
    "MAGIC_VALUE",
    "Settings",
    "parse_config_txt",
    "render_config_txt",
    "build_write_queries",
    "parse_query",
]

from urllib.parse import quote, unquote

from .errors import FormatError
from .keys import KEYS, KEYS_BY_NAME, KEYS_BY_WIRE, Key, Kind, parse_decimal

MAGIC_KEY = "bnfos_confmap_magic"
MAGIC_VALUE = "0.1"


class Settings:
    """The values of one ``config.txt`` answer, by key name.

    ``raw`` maps wire keys to the text the device printed, ``magic`` is the
    version on the magic line (``0.1`` on every known firmware), ``unknown``
    holds the lines the key table does not know (firmware 1.5.7's ``1_szd00`` …).
    """

    __slots__ = ("raw", "magic", "unknown")

    def __init__(self, raw: dict[str, str], magic: str = MAGIC_VALUE,
                 unknown: dict[str, str] | None = None) -> None:
        self.raw = raw
        self.magic = magic
        self.unknown = unknown or {}

    @classmethod
    def from_values(cls, values: dict[str, object], *, checked_style: bool = False) -> Settings:
        """Build settings from typed values by key name (what the emulator holds)."""
        raw = {}
        for name, value in values.items():
            key = KEYS_BY_NAME[name]
            if key.wire:
                raw[key.wire] = key.format_wire(value, checked_style=checked_style)
        return cls(raw)

    def __contains__(self, name: object) -> bool:
        key = KEYS_BY_NAME.get(name) if isinstance(name, str) else None
        return key is not None and key.wire in self.raw

    def __getitem__(self, name: str) -> object:
        """The typed value of ``name``; KeyError if absent, FormatError if garbled."""
        key = KEYS_BY_NAME[name]
        if key.wire not in self.raw:
            raise KeyError(name)
        return key.parse_wire(self.raw[key.wire])

    def get(self, name: str, default: object = None) -> object:
        return self[name] if name in self else default

    def require(self, name: str) -> object:
        """Like ``settings[name]`` but a missing value is a :class:`FormatError` too."""
        if name not in self:
            raise FormatError(f"config.txt has no {KEYS_BY_NAME[name].wire} line ({name})")
        return self[name]

    def values(self) -> dict[str, object]:
        """Every known value that parses, by key name, in table order."""
        result = {}
        for key in KEYS:
            if key.wire in self.raw:
                try:
                    result[key.name] = key.parse_wire(self.raw[key.wire])
                except FormatError:
                    continue
        return result

    def missing(self) -> list[str]:
        """Names of the readable keys that have no line: every firmware prints them all,
        so a missing line is an answer cut short (or not from a berofos)."""
        return [key.name for key in KEYS if key.readable and key.wire not in self.raw]

    def invalid(self) -> dict[str, str]:
        """Known keys whose value does not parse, by key name, with the raw text."""
        bad = {}
        for key in KEYS:
            if key.wire in self.raw:
                try:
                    key.parse_wire(self.raw[key.wire])
                except FormatError:
                    bad[key.name] = self.raw[key.wire]
        return bad

    @property
    def relay_mode(self) -> int:
        """0 (A--D) or 1 (A--B); raises :class:`FormatError` when missing or garbled."""
        return self.require("mode")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        return (self.raw, self.magic, self.unknown) == (other.raw, other.magic, other.unknown)

    def __repr__(self) -> str:
        return f"Settings({self.raw!r}, magic={self.magic!r})"


def parse_config_txt(body: str | bytes) -> Settings:
    """Parse the body of ``GET /config.txt``; raise :class:`FormatError` without magic."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    lines = body.split("\n")
    lines.pop()  # the part after the last LF: empty, or an unterminated (truncated) line
    magic = None
    raw: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for line in lines:
        line = line.rstrip("\r")
        name, sep, value = line.partition("=")
        name = name.strip()
        if magic is None:
            if sep and name == MAGIC_KEY:
                magic = value.strip()
            continue
        if not sep or not name:
            continue
        if name in KEYS_BY_WIRE:
            raw[name] = value
        else:
            unknown[name] = value
    if magic is None:
        raise FormatError("no valid configuration: the bnfos_confmap_magic line is missing")
    return Settings(raw, magic, unknown)


def render_config_txt(settings: Settings, *, line_end: str = "\n") -> str:
    """Render settings as a device does: magic first, every line terminated."""
    lines = [f"{MAGIC_KEY}={settings.magic}"]
    lines += [f"{wire}={value}" for wire, value in settings.raw.items()]
    lines += [f"{wire}={value}" for wire, value in settings.unknown.items()]
    return "".join(line + line_end for line in lines)


def _encode(value: str) -> str:
    # Everything but the unreserved characters A-Z a-z 0-9 - . _ ~ is escaped,
    # exactly like the C client.
    return quote(value, safe="-._~")


def build_write_queries(changes: dict[str, object], current: Settings | None = None) -> list[str]:
    """Return the request paths (``/?cmd=…``) that write ``changes``.

    Keys of one ``cmd`` group go into one request together with the group's
    other readable values from ``current``, so that a legacy firmware that
    resets omitted checkboxes keeps them.  Keys with fixed parameters
    (``power1`` → ``?cmd=5&p=0&s=V``) get a request each.  Groups come out in
    the order their first key appears in ``changes``: a caller that needs
    separate steps (the password before ``pwd=1``) calls this once per step.
    """
    groups: dict[int, dict[str, object]] = {}
    singles: list[tuple[Key, object]] = []
    for name, value in changes.items():
        key = KEYS_BY_NAME[name]
        if not key.writable:
            raise FormatError(f"{name} is read-only")
        if key.groupable:
            groups.setdefault(key.cmd, {})[name] = value
        else:
            singles.append((key, value))
    paths = []
    for cmd, group in groups.items():
        params = []
        for key in KEYS:
            if key.cmd != cmd or not key.groupable:
                continue
            if key.name in group:
                params.append((key.param, key.format_query(group[key.name])))
            elif current is not None and key.name in current:
                try:
                    value = current[key.name]
                except FormatError:
                    continue  # a garbled value is better left alone than echoed
                if value in (None, "") and key.kind not in (Kind.BOOL, Kind.SWITCH):
                    continue  # never blank an address or a name the device keeps itself
                params.append((key.param, key.format_query(value)))
        paths.append(_path(cmd, params))
    for key, value in singles:
        paths.append(_path(key.cmd, list(key.fixed) + [(key.param, key.format_query(value))]))
    return paths


def _path(cmd: int, params: list[tuple[str, str]]) -> str:
    query = "&".join(f"{name}={_encode(value)}" for name, value in params)
    return f"/?cmd={cmd}&{query}"


def parse_query(query: str) -> tuple[int, list[tuple[str, str]]]:
    """Split ``cmd=4&mode=1`` (the part after ``?``) into ``(4, [("mode", "1")])``.

    Used by the emulator; raises :class:`FormatError` unless there is exactly
    one numeric ``cmd``.
    """
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((unquote(name.replace("+", " ")), unquote(value.replace("+", " "))))
    commands = [parse_decimal(value) for name, value in pairs if name == "cmd"]
    if len(commands) != 1 or commands[0] is None:
        raise FormatError("request without exactly one numeric cmd parameter")
    return commands[0], [(name, value) for name, value in pairs if name != "cmd"]
