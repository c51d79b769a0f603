"""The berofos key table: every value the device reads or writes over HTTP.

One row per value, named as the ``bnfos`` tool names it (``mode``, ``modedef``,
``wdogitime`` …), with where it appears in ``config.txt`` (the *wire key*, e.g.
``4_mode``), how it is written (``?cmd=4&mode=V``), its type and its bounds.
Everything else (parser, renderer, query builder, validation, the CLI's help
and the emulator) is derived from this table.  Its order is the order in which
the firmware prints ``config.txt`` (the firmware and ``bnfos`` share one table).

``smtpserv``, ``smtpfrom`` and ``smtpto`` cannot be set with ``bnfos``; they are
written here as the device's own web form writes them (``?cmd=2&mhost=…``).

Values have one Python type per kind: ``bool`` for checkboxes, ``int`` for
switches with two positions (``mode`` 0/1), numbers and states, ``str`` for
addresses and text, ``None`` for an address the device leaves empty.
"""

from __future__ import annotations

__all__ = [
    "Kind",
    "Key",
    "KEYS",
    "KEYS_BY_NAME",
    "KEYS_BY_WIRE",
    "RELAY_A_D",
    "RELAY_A_B",
    "RELAY_LABELS",
    "RELAY_WORDS",
    "WATCHDOG_LABELS",
    "lookup",
    "SCENARIO_LABELS",
    "parse_relay_mode",
    "parse_ipv4",
    "parse_decimal",
]

from .errors import FormatError, InvalidValue


class Kind:
    """Value kinds of the key table (plain strings: cheap to import, easy to print)."""

    BOOL = "bool"        # checkbox: 1/checked true, 0/empty false
    SWITCH = "switch"    # two positions 0/1 with names (mode, scenario)
    INT = "int"          # decimal number within bounds
    IPV4 = "ipv4"        # dotted quad; empty on the wire means unset
    TEXT = "text"        # free text without control characters
    SECRET = "secret"    # write-only text, never printed
    STATE = "state"      # read-only enumeration with names


RELAY_A_D = 0
RELAY_A_B = 1
RELAY_LABELS = {RELAY_A_D: "A--D", RELAY_A_B: "A--B"}
# What people call the relay positions: Wazo's master (port B) and slave (port D).
RELAY_WORDS = {
    "master": RELAY_A_B, "b": RELAY_A_B, "a--b": RELAY_A_B, "ab": RELAY_A_B, "1": RELAY_A_B,
    "slave": RELAY_A_D, "d": RELAY_A_D, "a--d": RELAY_A_D, "ad": RELAY_A_D, "0": RELAY_A_D,
}
WATCHDOG_LABELS = {0: "off", 1: "on", 2: "failure"}
SCENARIO_LABELS = {0: "fallback", 1: "bypass"}
# Every number of the protocol fits in 5 digits; the cap also keeps int() away
# from Python's limit on converting huge digit strings (a ValueError).
_MAX_DIGITS = 10

_TRUE_WORDS = frozenset({"1", "yes", "y", "true", "on"})
_FALSE_WORDS = frozenset({"0", "no", "n", "false", "off"})


class Key:
    """One row of the key table.

    ``wire`` is the ``config.txt`` key (None: write-only); ``param`` the query
    parameter (None: read-only); ``fixed`` query parameters that precede it
    (``power1`` is ``?cmd=5&p=0&s=V``), which also makes the key impossible to
    write together with others of its group.  ``words`` are more names a
    person may type for a value (``master`` for ``mode=1``); ``wire_values``
    are values the firmware prints besides those of the kind, with what they
    mean (``6_wen=2`` after the watchdog fired).
    """

    __slots__ = ("name", "cmd", "wire", "param", "kind", "minimum", "maximum",
                 "max_length", "labels", "fixed", "description", "words", "wire_values")

    def __init__(self, name: str, cmd: int, wire: str | None, param: str | None,
                 kind: str, description: str, *, minimum: int = 0,
                 maximum: int | None = None, max_length: int | None = None,
                 labels: dict[int, str] | None = None,
                 fixed: tuple[tuple[str, str], ...] = (),
                 words: dict[str, int] | None = None,
                 wire_values: dict[str, object] | None = None) -> None:
        self.name = name
        self.cmd = cmd
        self.wire = wire
        self.param = param
        self.kind = kind
        self.description = description
        self.minimum = minimum
        self.maximum = maximum
        self.max_length = max_length
        self.labels = labels or {}
        self.fixed = fixed
        self.words = words or {}
        self.wire_values = wire_values or {}

    def __repr__(self) -> str:
        return f"Key({self.name!r})"

    @property
    def readable(self) -> bool:
        return self.wire is not None

    @property
    def writable(self) -> bool:
        return self.param is not None

    @property
    def groupable(self) -> bool:
        """True when the key can share one ``?cmd=`` request with its group."""
        return self.writable and not self.fixed

    # -- values coming from the device -------------------------------------------------

    def parse_wire(self, text: str) -> object:
        """Convert a ``config.txt`` value; raise :class:`FormatError` if it does not fit."""
        if self.kind not in (Kind.TEXT, Kind.SECRET):
            text = text.strip()  # text values are the device's own, blanks included
        if text in self.wire_values:
            return self.wire_values[text]
        if self.kind in (Kind.BOOL, Kind.SWITCH):
            if text in ("1", "checked"):
                value = 1
            elif text in ("0", ""):
                value = 0
            else:
                raise FormatError(f"{self.wire}: {text!r} is not 0, 1, 'checked' or empty")
            return bool(value) if self.kind == Kind.BOOL else value
        if self.kind in (Kind.INT, Kind.STATE):
            number = parse_decimal(text)
            if number is None:
                raise FormatError(f"{self.wire}: {text[:20]!r} is not a number")
            return number
        if self.kind == Kind.IPV4:
            if text == "":
                return None
            try:
                return parse_ipv4(text)
            except InvalidValue as err:
                raise FormatError(f"{self.wire}: {err}") from None
        return text

    def format_wire(self, value: object, *, checked_style: bool = False) -> str:
        """Render a value as the device prints it in ``config.txt``."""
        if self.kind == Kind.BOOL:
            if checked_style:
                return "checked" if value else ""
            return "1" if value else "0"
        if value is None:
            return ""
        return str(int(value)) if self.kind in (Kind.SWITCH, Kind.INT, Kind.STATE) else str(value)

    # -- values coming from a person ---------------------------------------------------

    def parse_user(self, text: str) -> object:
        """Validate a value typed by a person (CLI ``set``); raise :class:`InvalidValue`."""
        if not self.writable:
            raise InvalidValue(f"{self.name} is read-only")
        word = text.strip().lower()
        if self.kind in (Kind.BOOL, Kind.SWITCH):
            named = {label.lower(): number for number, label in self.labels.items()}
            named.update(self.words)
            if word in named:
                return named[word]
            if word in _TRUE_WORDS or word in _FALSE_WORDS:
                flag = word in _TRUE_WORDS
                return flag if self.kind == Kind.BOOL else int(flag)
            choices = "yes/no" if self.kind == Kind.BOOL else "0/1"
            names = list(self.labels.values()) + [w for w in self.words if w.isalpha()
                                                  and len(w) > 2]
            if names:
                choices += " or " + "/".join(names)
            raise InvalidValue(f"{self.name}: {text!r} is not {choices}")
        if self.kind == Kind.INT:
            number = parse_decimal(word)
            if number is None:
                raise InvalidValue(f"{self.name}: {text[:20]!r} is not a number")
            if number < self.minimum or (self.maximum is not None and number > self.maximum):
                raise InvalidValue(
                    f"{self.name}: {number} is outside {self.minimum}-{self.maximum}")
            return number
        if self.kind == Kind.IPV4:
            try:
                return parse_ipv4(text)
            except InvalidValue as err:
                raise InvalidValue(f"{self.name}: {err}") from None
        return self._check_text(text)

    def _check_text(self, text: str) -> str:
        if text == "":
            raise InvalidValue(f"{self.name} must not be empty")
        if text != text.strip():
            # bnfos.conf trims them: a password ending in a blank would lock
            # every client out, a host name with one would never read back.
            raise InvalidValue(f"{self.name} must not begin or end with blanks")
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise InvalidValue(f"{self.name} must not contain control characters")
        if self.max_length is not None and len(text) > self.max_length:
            raise InvalidValue(f"{self.name} is limited to {self.max_length} characters")
        if self.kind == Kind.SECRET and not text.isascii():
            raise InvalidValue(f"{self.name} must be ASCII (HTTP Basic cannot carry the rest)")
        return text

    def format_user(self, value: object) -> str:
        """Render a value for people: names where the table has them."""
        if self.kind == Kind.SECRET:
            return "********"
        if value is None:
            return "-"
        if self.kind == Kind.BOOL:
            return "yes" if value else "no"
        if self.labels and value in self.labels:
            return f"{int(value)} ({self.labels[value]})"
        return str(value)

    def format_query(self, value: object) -> str:
        """Render a value as it goes into a ``?cmd=`` request (before percent-encoding)."""
        if self.kind in (Kind.BOOL, Kind.SWITCH):
            return "1" if value else "0"
        return "" if value is None else str(value)


def parse_ipv4(text: str) -> str:
    """Return a canonical dotted quad or raise :class:`InvalidValue`.

    Strict on purpose: the C client never resolves names and leading zeros are
    ambiguous (octal to some tools), so ``010.1.1.1`` is refused.
    """
    parts = text.strip().split(".")
    if len(parts) != 4:
        raise InvalidValue(f"{text!r} is not a dotted-quad IPv4 address")
    for part in parts:
        if not (part.isdigit() and part.isascii()) or len(part) > 3 or (
                len(part) > 1 and part[0] == "0") or int(part) > 255:
            raise InvalidValue(f"{text!r} is not a dotted-quad IPv4 address")
    return ".".join(parts)


def parse_decimal(text: str) -> int | None:
    """A plain decimal number of at most 10 ASCII digits, or None."""
    if 0 < len(text) <= _MAX_DIGITS and text.isdigit() and text.isascii():
        return int(text)
    return None


def parse_relay_mode(text: str) -> int:
    """``master``/``b``/``A--B``/``1`` → 1 and ``slave``/``d``/``A--D``/``0`` → 0."""
    mode = RELAY_WORDS.get(text.strip().lower())
    if mode is not None:
        return mode
    raise InvalidValue(f"{text!r} is not a relay position (master, slave, b, d, A--B, A--D)")


_IP = Kind.IPV4
KEYS: tuple[Key, ...] = (
    Key("scenario", 1, "1_sz", "sz", Kind.SWITCH,
        "0 fallback (A-B or A-D), 1 bypass (A-B + C-D, or A-D)",
        labels=SCENARIO_LABELS),
    Key("mode", 4, "4_mode", "mode", Kind.SWITCH, "relay mode: 0 A-D (slave), 1 A-B (master)",
        labels=RELAY_LABELS, words=RELAY_WORDS),
    Key("modedef", 1, "1_rm", "rm", Kind.SWITCH, "relay mode at power-on", labels=RELAY_LABELS,
        words=RELAY_WORDS),
    Key("power1", 5, "5_p0", "s", Kind.BOOL, "power port 1", fixed=(("p", "0"),)),
    Key("power1def", 1, "1_p0", "p0", Kind.BOOL, "power port 1 at power-on"),
    Key("power2", 5, "5_p1", "s", Kind.BOOL, "power port 2", fixed=(("p", "1"),)),
    Key("power2def", 1, "1_p1", "p1", Kind.BOOL, "power port 2 at power-on"),
    Key("hostname", 3, "3_dn", "dn", Kind.TEXT, "device host name", max_length=63),
    Key("address", 3, "3_ip", "ip", _IP, "IPv4 address"),
    Key("netmask", 3, "3_nm", "nm", _IP, "IPv4 netmask"),
    Key("gateway", 3, "3_gw", "gw", _IP, "IPv4 gateway"),
    Key("dns", 3, "3_dns", "dns", _IP, "DNS server"),
    Key("dhcp", 3, "3_dhcp", "dhcp", Kind.BOOL, "take the address from DHCP"),
    Key("port", 3, "3_port", "port", Kind.INT, "HTTP port", minimum=1, maximum=65535),
    Key("pwd", 3, "3_pwd", "pwd", Kind.BOOL, "HTTP password protection (user admin)"),
    Key("apwd", 3, None, "apwd", Kind.SECRET, "admin password (write-only)", max_length=15),
    Key("smtpserv", 2, "2_mhost", "mhost", Kind.TEXT, "alarm mail: SMTP server", max_length=63),
    Key("smtpfrom", 2, "2_mfrom", "mfrom", Kind.TEXT, "alarm mail: sender", max_length=63),
    Key("smtpto", 2, "2_mto", "mto", Kind.TEXT, "alarm mail: recipient", max_length=63),
    Key("syslog", 3, "3_log", "syslog", Kind.BOOL, "remote syslog"),
    Key("slgip", 3, "3_loghost", "slgip", _IP, "remote syslog server"),
    Key("slgpt", 3, "3_logport", "slgpt", Kind.INT, "remote syslog port", minimum=1, maximum=65535),
    # The firmware prints 6_wen from the value of 6_wstate: 2 once the
    # watchdog has fired, when it no longer runs (wdogstate says it fired).
    Key("wdog", 6, "6_wen", "wen", Kind.BOOL, "watchdog enabled (reads yes only while it runs)",
        wire_values={"2": False}),
    Key("wdogdef", 2, "2_wen", "wen", Kind.BOOL, "watchdog enabled at power-on"),
    Key("wdogstate", 6, "6_wstate", None, Kind.STATE, "watchdog state: 0 off, 1 on, 2 failure",
        labels=WATCHDOG_LABELS),
    Key("wdogitime", 2, "2_wintv", "wintv", Kind.INT, "watchdog interval, seconds",
        minimum=1, maximum=65535),
    Key("wdogaudio", 2, "2_as", "as", Kind.BOOL, "watchdog alarm: sound"),
    Key("wdogmail", 2, "2_men", "men", Kind.BOOL, "watchdog alarm: mail"),
    Key("wdogrtime", 0, "0_wretv", None, Kind.INT, "seconds left before the watchdog fires"),
)

KEYS_BY_NAME: dict[str, Key] = {key.name: key for key in KEYS}
KEYS_BY_WIRE: dict[str, Key] = {key.wire: key for key in KEYS if key.wire}


def lookup(name: str) -> Key:
    """Return the key called ``name`` (case-insensitive) or raise :class:`InvalidValue`."""
    try:
        return KEYS_BY_NAME[name.strip().lower()]
    except KeyError:
        raise InvalidValue(f"unknown key {name!r} (known: {', '.join(KEYS_BY_NAME)})") from None
