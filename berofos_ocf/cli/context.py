"""What every command gets: its options, its devices, and a way to talk to the operator.

The options that pick devices (``-c``, ``-f``, ``--host``, ``--mac``, ``-t``,
``--udp-port``) and shape the output (``--json``, ``-v``) are accepted before
and after the command name.  Each is declared once here, with its default
taken from the module it belongs to; a command says which it uses
(:data:`HTTP_OPTIONS`, :data:`UDP_OPTIONS`) and an option it does not use, or
one given twice, is a usage error rather than silently ignored.

:class:`Context` carries the parsed arguments and everything a command needs
from outside (standard streams, environment, password prompt, command runner,
clock), so that tests inject them.
"""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_DEVICE",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "LOGIN_ENV",
    "HTTP_OPTIONS",
    "UDP_OPTIONS",
    "OUTPUT_OPTIONS",
    "UsageError",
    "NotHolding",
    "Interrupted",
    "Context",
    "add_command",
    "add_common_options",
    "settle_common_options",
    "Once",
    "positive",
    "count",
    "port_number",
    "parse_mac_text",
]

import argparse
import getpass as getpass_module
import sys
import threading

from ..bnfosconf import (
    DEFAULT_PATH,
    BnfosConf,
    DeviceEntry,
    load_bnfos_conf,
    parse_device_names,
    parse_host,
)
from ..client import DEFAULT_TIMEOUT, BerofosClient
from ..errors import BerofosError, ConfigFileError, InvalidValue
from ..gbl4 import format_mac, parse_mac
from ..health import FixCommands
from ..keys import parse_decimal
from ..udp import DEFAULT_UDP_PORT, Gbl4Client
from .output import json_text, want_colour

EXIT_OK, EXIT_DEVICE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
LOGIN_ENV = "BEROFOS_LOGIN"


class UsageError(BerofosError):
    """Wrong arguments: exit status 2."""


class NotHolding(BerofosError):
    """``check --holder`` on a node that does not hold the lines: exit status 1."""


class Interrupted(BerofosError):
    """Ctrl-C where the operator must be told more than "interrupted": exit status 130."""


class Once(argparse.Action):
    """An option that takes one value: given twice, it is an error, not the last one wins."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        marker = f"_given_{self.dest}"
        if getattr(namespace, marker, False):
            raise UsageError(f"{option_string} given twice")
        setattr(namespace, marker, True)
        setattr(namespace, self.dest, values)


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def count(text: str) -> int:
    """A whole number of 1 or more (pings, kicks, requests)."""
    number = parse_decimal(text)
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return number


def port_number(text: str) -> int:
    number = parse_decimal(text)
    if number is None or not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return number


def parse_mac_text(text: str) -> bytes:
    try:
        return parse_mac(text)
    except InvalidValue as err:
        raise UsageError(str(err)) from None


class _Common:
    """One option accepted before and after the command name."""

    def __init__(self, flags: tuple[str, ...], dest: str, default, help: str,
                 **argparse_options) -> None:
        self.flags = flags
        self.dest = dest
        self.default = default
        self.help = help
        self.options = argparse_options

    @property
    def name(self) -> str:
        """How messages call it: its long form (``--config``, ``--verbose``)."""
        return next((flag for flag in self.flags if flag.startswith("--")), self.flags[0])

    def add(self, group, dest: str) -> None:
        options = dict(self.options)
        options.setdefault("action", Once)
        group.add_argument(*self.flags, dest=dest, default=argparse.SUPPRESS, help=self.help,
                           **options)


_COMMON = (
    _Common(("-c", "--config"), "config", DEFAULT_PATH, "device file in bnfos format "
            f"(default {DEFAULT_PATH})", metavar="FILE"),
    _Common(("-f", "--device"), "device", [], "device section to use; repeat or separate "
            "with commas or spaces (default: every section)", action="append",
            metavar="NAME"),
    _Common(("--host",), "host", None, "talk to this device instead of the file's",
            metavar="IP[:PORT]"),
    _Common(("--mac",), "mac", None, "MAC address of the --host device (for UDP commands)",
            metavar="MAC"),
    _Common(("-t", "--timeout"), "timeout", DEFAULT_TIMEOUT, "timeout of each request "
            f"(default {DEFAULT_TIMEOUT:g})", type=positive, metavar="SECONDS"),
    _Common(("--udp-port",), "udp_port", DEFAULT_UDP_PORT, "the devices' GBL4 port "
            f"(default {DEFAULT_UDP_PORT})", type=port_number, metavar="PORT"),
    _Common(("--json",), "json", False, "machine-readable output: a list of device records, "
            "failures included with their error", action="store_true"),
    _Common(("-v", "--verbose", "--debug"), "verbose", False, "more detail, and every "
            "request on standard error", action="store_true"),
)
_BY_DEST = {option.dest: option for option in _COMMON}
OUTPUT_OPTIONS = frozenset({"json", "verbose"})
HTTP_OPTIONS = frozenset({"config", "device", "host", "timeout"}) | OUTPUT_OPTIONS
UDP_OPTIONS = HTTP_OPTIONS | {"mac", "udp_port"}
_AFTER = "after_"  # the dest of an option given after the command name


def add_common_options(parser: argparse.ArgumentParser, uses=UDP_OPTIONS, *,
                       after: bool = False) -> None:
    """The common options ``uses`` names, for the parser before or ``after`` a command."""
    chosen = [option for option in _COMMON if option.dest in uses]
    selection = [option for option in chosen if option.dest not in OUTPUT_OPTIONS]
    output = [option for option in chosen if option.dest in OUTPUT_OPTIONS]
    for title, options in (("device selection", selection), ("output", output)):
        if options:
            group = parser.add_argument_group(title)
            for option in options:
                option.add(group, _AFTER + option.dest if after else option.dest)


def add_command(commands, name: str, handler, *, help: str, uses=HTTP_OPTIONS,
                **parser_options) -> argparse.ArgumentParser:
    """A subcommand that runs ``handler(ctx)``, with the common options it ``uses``."""
    sub = commands.add_parser(name, help=help, description=help, **parser_options)
    add_common_options(sub, uses, after=True)
    sub.set_defaults(handler=handler, uses=uses, command=name)
    return sub


def settle_common_options(args: argparse.Namespace) -> set[str]:
    """Merge the common options given before and after the command; return those given.

    Refuses an option given on both sides (``-f`` adds up) and one the command
    does not use; fills in the defaults of the others.
    """
    given = set()
    for option in _COMMON:
        before = getattr(args, option.dest, None)
        after = getattr(args, _AFTER + option.dest, None)
        if hasattr(args, _AFTER + option.dest):
            delattr(args, _AFTER + option.dest)
        if before is None and after is None:
            setattr(args, option.dest, option.default)
            continue
        given.add(option.dest)
        if option.dest not in args.uses:
            raise UsageError(f"{option.name} does not apply to '{args.command}'")
        setattr(args, option.dest, _merged(option, before, after))
    return given


def _merged(option: _Common, before, after):
    if before is None or after is None:
        return after if before is None else before
    if option.dest == "device":
        return before + after
    if option.options.get("action") == "store_true":
        return True
    raise UsageError(f"{option.name} given twice")


class Context:
    """What a command needs besides its arguments; injectable for tests.

    ``getpass(prompt)`` reads a secret at the terminal; ``runner(argv,
    timeout)`` runs a local tool and returns (status, stdout, stderr).
    """

    _lock = threading.Lock()  # devices are handled in threads: one line at a time

    def __init__(self, args: argparse.Namespace, given: set[str], *, stdout, stderr, stdin,
                 environ, getpass=None, runner=None) -> None:
        self.args = args
        self.given = given
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
        self.environ = environ
        self.getpass = getpass or _getpass
        self.runner = runner
        self.colour = want_colour(stdout, environ)
        self._clients: list[BerofosClient] = []

    # -- talking to the operator ---------------------------------------------------------

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def print(self, line: str = "") -> None:
        with self._lock:
            self.stdout.write(f"{line}\n")
            self.stdout.flush()

    def say(self, line: str = "") -> None:
        """A line of the text output (none with --json)."""
        if not self.json:
            self.print(line)

    def warn(self, message: str) -> None:
        with self._lock:
            self.stderr.write(f"berofos: {message}\n")
            self.stderr.flush()

    def ask(self, question: str) -> str:
        """The line the operator types after ``question``."""
        with self._lock:
            self.stdout.write(question)
            self.stdout.flush()
        return self.stdin.readline()

    def at_terminal(self) -> bool:
        return hasattr(self.stdin, "isatty") and self.stdin.isatty()

    def confirmed(self, question: str) -> bool:
        """``--yes``, or yes from the operator at a terminal; never without one."""
        if getattr(self.args, "yes", False):
            return True
        if not self.at_terminal():
            return False
        return self.ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    def finish(self, records: list[dict], *, warn: bool = True) -> int:
        """Print the records with --json, each failure on stderr; the exit status."""
        if self.json:
            self.print(json_text(records))
        if warn:
            for record in records:
                if record["error"]:
                    self.warn(record["error"])
        return EXIT_OK if all(record["ok"] for record in records) else EXIT_DEVICE

    # -- devices -------------------------------------------------------------------------

    def devices(self) -> list[DeviceEntry]:
        """The devices chosen by ``--host`` or by ``-c``/``-f``."""
        if "host" in self.given:
            return [self._host_device()]
        if "mac" in self.given:
            raise UsageError("--mac goes with --host (the file gives each device's MAC)")
        return self.config().select(self.device_names())

    def device_names(self) -> list[str]:
        return [name for item in self.args.device for name in parse_device_names(item)]

    def _host_device(self) -> DeviceEntry:
        if "device" in self.given:
            raise UsageError("use either --host or -f, not both")
        try:
            host, port = parse_host(self.args.host)
        except InvalidValue as err:
            raise UsageError(f"--host: {err}") from None
        user = password = None
        login = self.environ.get(LOGIN_ENV)
        if login:
            user, colon, password = login.partition(":")
            if not user or not colon:
                raise UsageError(f"{LOGIN_ENV} must be USER:PASSWORD, e.g. admin:secret")
        mac = format_mac(parse_mac_text(self.args.mac)) if self.args.mac else None
        return DeviceEntry(host, mac=mac, host=host, port=port, user=user, password=password)

    def config(self) -> BnfosConf:
        path = self.args.config
        try:
            return load_bnfos_conf(path)
        except ConfigFileError as err:
            if err.kind != "missing":
                raise
            raise ConfigFileError(f"file not found: write it with 'berofos scan --write "
                                  f"{path}', or name a device with --host", path=path,
                                  kind="missing") from None

    def one_device(self) -> DeviceEntry:
        devices = self.devices()
        if len(devices) != 1:
            names = ", ".join(d.name for d in devices)
            raise UsageError(f"this command works on one device; choose one with -f ({names})")
        return devices[0]

    def clients(self, devices: list[DeviceEntry]) -> list[BerofosClient]:
        made = [BerofosClient(d, timeout=self.args.timeout) for d in devices]
        self._clients += made
        return made

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def udp(self) -> Gbl4Client:
        return Gbl4Client(port=self.args.udp_port, timeout=self.args.timeout)

    def fixes(self) -> FixCommands:
        """How fix commands name the devices, the way this command was given them."""
        if "host" in self.given:
            return FixCommands(None)
        return FixCommands(self.args.config, names=self.device_names() or None)


def _getpass(prompt: str) -> str:
    """A secret typed at the terminal; an error rather than a read of standard input."""
    try:
        with open("/dev/tty", "rb"):
            pass
    except OSError:
        raise UsageError("no terminal to ask the password on: give it on standard input "
                         "with --stdin") from None
    try:
        return getpass_module.getpass(prompt)
    except EOFError:
        if sys.stderr.isatty():
            sys.stderr.write("\n")  # end the line of the prompt
        raise UsageError("no password typed (end of input): type it, or give it on "
                         "standard input with --stdin") from None
