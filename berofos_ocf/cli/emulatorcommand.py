"""``berofos emulator``: run emulated devices, or drive running ones with ``emulator ctl``.

The command owns its options: where to listen and what to start with are
declared here, the switches for what is not known about the real device come
from :class:`~berofos_ocf.emulator.DeviceOptions` itself, and none of the
device selection options of the other commands apply.  ``emulator ctl
HOST:PORT ACTION`` is the control interface from the command line: power,
flash mode, watchdog expiry, faults, values set by hand, the relay log.
"""

from __future__ import annotations

__all__ = ["register", "ctl_actions", "ctl_summary"]

import argparse
import signal
import threading

from ..emulator import DEFAULT_BASE_MAC, DEFAULT_LISTEN, DeviceOptions, option_switches
from ..emulator.control import EmulatorControl
from ..emulator.device import FAULT_KINDS
from ..gbl4 import format_mac
from ..keys import RELAY_LABELS, WATCHDOG_LABELS, parse_decimal, parse_ipv4
from ..udp import DEFAULT_UDP_PORT
from .context import (
    EXIT_OK,
    OUTPUT_OPTIONS,
    UsageError,
    add_command,
    add_common_options,
    count,
    parse_mac_text,
    positive,
)
from .httpcommands import parse_assignments
from .output import json_text, table_lines

_DEFAULT_LISTEN = "%s:%d" % DEFAULT_LISTEN


def register(commands) -> None:
    sub = add_command(commands, "emulator", _cmd_emulator, uses=OUTPUT_OPTIONS,
                      help="run emulated devices (HTTP, GBL4, control interface); 'emulator "
                           "ctl HOST:PORT ACTION' drives running ones")
    _run_arguments(sub)
    actions = sub.add_subparsers(dest="emulator_action", metavar="ctl")
    ctl = actions.add_parser("ctl", help="drive running emulated devices through their "
                             "control interface (--control of the emulator)",
                             description="Drive running emulated devices through their "
                             "control interface. Devices are named fos1, fos2 ... as 'berofos "
                             "scan --write' names them, or HOST:PORT.")
    ctl.add_argument("control_address", metavar="HOST:PORT",
                     help="the emulator's --control address")
    _ctl_arguments(ctl)
    sub.epilog = ctl.epilog = ctl_summary(ctl)
    sub.formatter_class = ctl.formatter_class = argparse.RawDescriptionHelpFormatter


def ctl_actions(ctl: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    """(action, its arguments, what it does) of every ``emulator ctl`` action."""
    choices = next(a for a in ctl._actions if isinstance(a, argparse._SubParsersAction))
    helps = {action.dest: action.help for action in choices._choices_actions}
    actions = []
    for name, parser in choices.choices.items():
        words = []
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or action.dest in ("help",) \
                    or action.dest.startswith("after_"):
                continue
            value = action.metavar or "|".join(action.choices or ()) or action.dest.upper()
            value += "..." if action.nargs == "+" else ""
            words.append(value if not action.option_strings else
                         f"[{action.option_strings[0]} {value}]")
        actions.append((name, " ".join(words), helps[name]))
    return actions


def ctl_summary(ctl: argparse.ArgumentParser) -> str:
    """The actions of ``emulator ctl``, for --help."""
    lines = ["berofos emulator ctl HOST:PORT ACTION, HOST:PORT the emulator's --control:"]
    for name, words, help in ctl_actions(ctl):
        lines += [f"  {name} {words}".rstrip(), f"      {help}"]
    lines.append("Devices are fos1, fos2 ... (the names 'berofos scan --write' gives them) "
                 "or HOST:PORT.")
    lines.append("Example: berofos emulator ctl 127.0.0.1:8090 flash-mode fos2 on")
    return "\n".join(lines)


# -- run ------------------------------------------------------------------------------------

def _run_arguments(sub) -> None:
    sub.add_argument("--listen", action="append", metavar="HOST:PORT",
                     help=f"one device per address (repeat; default {_DEFAULT_LISTEN})")
    sub.add_argument("--udp-port", dest="listen_udp_port", type=_port_or_zero,
                     default=DEFAULT_UDP_PORT, metavar="PORT",
                     help=f"GBL4 port of every listen host (default {DEFAULT_UDP_PORT}, "
                          "0 picks one)")
    sub.add_argument("--no-udp", action="store_true", help="no GBL4 endpoint")
    sub.add_argument("--udp-broadcast", action="append", metavar="ADDR",
                     help="also receive GBL4 broadcasts sent to ADDR (repeat)")
    sub.add_argument("--password", metavar="PW", help="password protection on, user admin")
    sub.add_argument("--mac", dest="base_mac", default=format_mac(DEFAULT_BASE_MAC),
                     metavar="MAC", help="MAC of the first device; the next ones count up "
                     "(default %(default)s)")
    sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="initial value on every device (repeat)")
    sub.add_argument("--control", metavar="HOST:PORT", help="serve the control interface")
    sub.add_argument("--relay-log", metavar="FILE", help="append relay changes to FILE")
    sub.add_argument("--ready-file", metavar="FILE",
                     help="write the addresses in use as JSON once serving")
    for switch in option_switches():
        if isinstance(switch.default, bool):
            sub.add_argument(switch.flag, dest=f"switch_{switch.name}", action="store_true",
                             help=switch.help)
        else:
            sub.add_argument(switch.flag, dest=f"switch_{switch.name}", type=_seconds,
                             default=switch.default, metavar="SECONDS", help=switch.help)


def _port_or_zero(text: str) -> int:
    number = parse_decimal(text)
    if number is None or number > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 0 to 65535")
    return number


def _seconds(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0.0") else positive(text)


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    number = parse_decimal(port)
    if not sep or number is None or number > 65535:
        raise UsageError(f"{text!r} is not HOST:PORT")
    try:
        parse_ipv4(host)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return host, number


def _device_options(args) -> DeviceOptions:
    values = {}
    for switch in option_switches():
        given = getattr(args, f"switch_{switch.name}")
        # a boolean switch turns its default around
        values[switch.name] = (not switch.default if given else switch.default) \
            if isinstance(switch.default, bool) else given
    return DeviceOptions(**values)


def _cmd_emulator(ctx) -> int:
    if ctx.args.emulator_action == "ctl":
        return _cmd_ctl(ctx)
    from ..emulator import Emulator

    args = ctx.args
    listen = [_address(text) for text in args.listen or [_DEFAULT_LISTEN]]
    initial = parse_assignments(args.set or [])
    password = initial.pop("apwd", None) or args.password
    emulator = Emulator(listen, udp_port=None if args.no_udp else args.listen_udp_port,
                        broadcast=tuple(args.udp_broadcast or ()), password=password,
                        base_mac=parse_mac_text(args.base_mac), options=_device_options(args),
                        initial=initial,
                        control=_address(args.control) if args.control else None,
                        relay_log_path=args.relay_log, out=None if ctx.json else ctx.stdout)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    emulator.start()
    _say_serving(ctx, emulator)
    if args.ready_file:
        emulator.write_ready_file(args.ready_file)
    try:
        while not stopped.wait(0.5):
            pass
    finally:
        emulator.stop()
    return EXIT_OK


def _say_serving(ctx, emulator) -> None:
    described = emulator.describe()
    if ctx.json:
        ctx.print(json_text([dict(device, ok=True, error=None, udp_port=described["udp_port"],
                                  control=described["control"])
                             for device in described["devices"]]))
        return
    for device in described["devices"]:
        ctx.print(f"{device['name']}: http://{device['address']} mac {device['mac']}")
    if described["udp_port"] is not None:
        ctx.print(f"GBL4 on UDP port {described['udp_port']}")
    if described["control"]:
        ctx.print(f"control interface: http://{described['control']}")


# -- ctl ------------------------------------------------------------------------------------

def _ctl_arguments(ctl) -> None:
    actions = ctl.add_subparsers(dest="ctl_action", metavar="ACTION", required=True)

    def action(name: str, help: str, device: str | None = "DEVICE"):
        parser = actions.add_parser(name, help=help, description=help)
        if device == "DEVICE":
            parser.add_argument("target", metavar="DEVICE", help="fos1, fos2 ... or HOST:PORT")
        elif device:
            parser.add_argument("target", metavar=device, nargs="*",
                                help="fos1, fos2 ... or HOST:PORT (default: every device)")
        add_common_options(parser, OUTPUT_OPTIONS, after=True)
        return parser

    action("devices", "every device: power, flash mode, relays, watchdog, faults", None)
    action("power", "power a device off or on").add_argument("state", choices=["on", "off"])
    action("power-cycle", "power off, then on again after --off seconds (flash mode ends)",
           "[DEVICE...]").add_argument("--off", type=positive, default=1.0, metavar="SECONDS",
                                       help="how long the power stays off (default 1)")
    action("flash-mode", "the black button held at power-on: flash mode on or off"
           ).add_argument("state", choices=["on", "off"])
    action("fire-watchdog", "fire the hardware watchdog now (relays fall to A--D)")
    action("set", "set values by hand, as at the front panel").add_argument(
        "assignments", nargs="+", metavar="KEY=VALUE")
    fault = action("fault", "inject a fault into the device's HTTP answers, KIND one of "
                   + ", ".join(FAULT_KINDS))
    fault.add_argument("kind", choices=FAULT_KINDS, metavar="KIND")
    fault.add_argument("--scope", choices=["all", "read", "write"], default="all",
                       help="the requests it hits (default all)")
    fault.add_argument("--count", type=count, metavar="N",
                       help="only the next N requests (default: until cleared)")
    fault.add_argument("--seconds", type=_seconds, default=0.0, metavar="SECONDS",
                       help="for latency and hang")
    fault.add_argument("--status", type=count, default=500, metavar="CODE",
                       help="HTTP status for the status fault (default 500)")
    action("clear-faults", "remove every fault of the device")
    action("relay-log", "every relay change since the start (or --since N)", None
           ).add_argument("--since", type=parse_decimal, default=0, metavar="N")
    action("requests", "the HTTP requests the device served (passwords hidden)")


def _cmd_ctl(ctx) -> int:
    args = ctx.args
    host, port = _address(args.control_address)
    control = EmulatorControl(f"{host}:{port}")
    action = args.ctl_action
    if action == "relay-log":
        return _show_list(ctx, control.relay_log(args.since), _relay_line)
    if action == "requests":
        return _show_list(ctx, control.requests(args.target),
                          lambda r: f"{r['status']} {r['path']}")
    if action == "devices":
        return _show_devices(ctx, control.devices())
    names = args.target if action != "power-cycle" else (
        args.target or [d["name"] for d in control.devices()])
    described = [_act(control, action, args, name) for name in
                 ([names] if isinstance(names, str) else names)]
    return _show_devices(ctx, described)


def _act(control: EmulatorControl, action: str, args, name: str) -> dict:
    if action == "power":
        return control.power(name, args.state)
    if action == "power-cycle":
        return control.power(name, "cycle", args.off)
    if action == "flash-mode":
        return control.flash_mode(name, args.state == "on")
    if action == "fire-watchdog":
        return control.expire_watchdog(name)
    if action == "set":
        return control.set_values(name, **dict(_pair(item) for item in args.assignments))
    if action == "fault":
        return control.fault(name, args.kind, scope=args.scope, count=args.count,
                             seconds=args.seconds, status=args.status)
    return control.clear_faults(name)


def _pair(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep:
        raise UsageError(f"{item!r} is not KEY=VALUE")
    return name.strip().lower(), value


def _show_devices(ctx, devices: list[dict]) -> int:
    if ctx.json:
        ctx.print(json_text([dict(d, ok=True, error=None) for d in devices]))
        return EXIT_OK
    rows = [("DEVICE", "ADDRESS", "MAC", "POWER", "MODE", "RELAYS", "WATCHDOG", "FAULTS")]
    rows += [(d["name"], d["address"], d["mac"], "on" if d["powered"] else "off",
              "flash" if d["flash_mode"] else "operational", RELAY_LABELS[d["relay_mode"]],
              WATCHDOG_LABELS.get(d["watchdog_state"], "?"),
              ",".join(f["kind"] for f in d["faults"]) or "-") for d in devices]
    for line in table_lines(rows):
        ctx.print(line)
    return EXIT_OK


def _show_list(ctx, entries: list[dict], line) -> int:
    if ctx.json:
        ctx.print(json_text(entries))
        return EXIT_OK
    for entry in entries:
        ctx.print(line(entry))
    return EXIT_OK


def _relay_line(entry: dict) -> str:
    from ..emulator import format_relay_entry

    return format_relay_entry(entry)
