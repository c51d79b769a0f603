"""The commands that talk GBL4 over UDP: scan, netconf, flash, ping, kick, reset.

A device is reached by its MAC (from the file, or ``--mac`` with ``--host``)
at its address, or at ``--to``.  Each command's arguments are declared next to
its handler, by the function that registers it.
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import contextlib
import os
import time

from ..bnfosconf import DeviceEntry, load_bnfos_conf, merge_devices, render_bnfos_conf
from ..bnfosconf import write_bnfos_conf
from ..client import on_every_device
from ..deadline import Deadline
from ..errors import (
    BerofosError,
    DeviceCommunicationError,
    DeviceError,
    DeviceTimeout,
    InvalidValue,
)
from ..gbl4 import (
    MAX_IMAGE_SIZE,
    PHY_CONF_LABELS,
    NetconfRequest,
    Options,
    ScanReply,
    check_firmware_image,
    format_mac,
    split_pages,
)
from ..keys import lookup, parse_ipv4
from ..udp import BROADCAST, SCAN_WINDOW, Gbl4Client
from .context import (
    EXIT_DEVICE,
    EXIT_OK,
    UDP_OPTIONS,
    Interrupted,
    Once,
    UsageError,
    add_command,
    count,
    parse_mac_text,
    positive,
    port_number,
)
from .output import Progress, device_record, table_lines
from .password import check_writable

_PHY = {"auto": 3, "10": 1, "100": 2}
_KICK_INTERVAL = 5.0  # Wazo's cron job kicked every 5 s
_FLASH_MODE_HINT = "hold the black button while powering on, until port D's red LEDs blink"


def register(commands) -> None:
    for add in (_scan, _netconf, _flash, _ping, _kick, _reset):
        add(commands)


def _ipv4_arg(text: str) -> str:
    try:
        return parse_ipv4(text)
    except InvalidValue as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _to_option(sub, help: str = "send here instead of the device's address "
               "(e.g. 255.255.255.255)") -> None:
    sub.add_argument("--to", type=_ipv4_arg, action=Once, metavar="IP", help=help)


class _Target:
    """A device as GBL4 reaches it: its MAC, at an address."""

    __slots__ = ("device", "mac", "address")

    def __init__(self, ctx, device: DeviceEntry) -> None:
        if not device.mac:
            raise UsageError(f"{device.name} has no MAC address: add a mac line or give --mac")
        self.device = device
        self.mac = parse_mac_text(device.mac)
        self.address = getattr(ctx.args, "to", None) or _address(device)


def _address(device: DeviceEntry) -> str:
    return device.host if device.host and device.host != "0.0.0.0" else BROADCAST


@contextlib.contextmanager
def _udp_hint(target: _Target):
    """Errors name the device as the file does; a silent device asked by address may be
    elsewhere: say how to ask everyone."""
    try:
        yield
    except DeviceCommunicationError as err:
        detail = err.detail
        if isinstance(err, DeviceTimeout) and target.address != BROADCAST:
            detail += " (not at that address any more, or in flash mode? try --to " \
                      f"{BROADCAST})"
        raise type(err)(target.device.label, detail) from None


# -- scan -----------------------------------------------------------------------------------

def _scan(commands) -> None:
    sub = add_command(commands, "scan", _cmd_scan, uses=UDP_OPTIONS - {"mac"},
                      help="find devices with a GBL4 broadcast, or ask the addresses of --to, "
                           "--host or the devices of -c/-f")
    sub.add_argument("--to", type=_ipv4_arg, action="append", metavar="IP",
                     help=f"address to ask; repeat for several (default {BROADCAST})")
    sub.add_argument("--window", type=positive, default=SCAN_WINDOW, metavar="SECONDS",
                     help=f"how long to collect answers (default {SCAN_WINDOW:g})")
    sub.add_argument("--write", metavar="FILE", help="write the devices found to FILE in bnfos "
                     "format: its sections keep their order, names and logins (a device is "
                     "known by its MAC, or by its host in a section without mac), new devices "
                     "come last, named fos1, fos2 ... in the order of their MACs; a new file "
                     "gets mode 0600, an existing one (or a link's target) keeps owner, group "
                     "and mode, at most 0640 with a password; like bnfos --scan -x, comments "
                     "are not kept; nothing is written when no device answers")
    sub.add_argument("--yes", action="store_true", help="with --write: accept a known device's "
                     "change of address without asking (without a terminal and without --yes "
                     "the old address is kept)")


def _cmd_scan(ctx) -> int:
    args = ctx.args
    if args.yes and not args.write:
        raise UsageError("--yes goes with --write")
    asked = _asked_devices(ctx)
    targets = args.to or ([_address(d) for d in asked] if asked else [BROADCAST])
    known = _scan_file_devices(args.write) if args.write else None
    replies = ctx.udp().scan(targets, args.window)
    macs = {d.mac.upper() for d in asked if d.mac}
    if macs:  # a host serves several devices: keep those asked for
        replies = [r for r in replies if format_mac(r.mac).upper() in macs]
    names = {d.mac.upper(): d.name for d in (known or asked or []) if d.mac}
    records = [_scan_record(reply, names) for reply in replies]
    records += _silent(asked, replies, args.window)
    _scan_text(ctx, records)
    status = ctx.finish(records)
    if known is not None:
        return max(status, _write_scan(ctx, known, replies))
    return status


def _asked_devices(ctx) -> list[DeviceEntry]:
    """The devices of ``--host`` or ``-c``/``-f`` to ask; none for a broadcast or ``--to``."""
    chose = {"config", "device", "host"} & ctx.given
    if ctx.args.to and chose:
        raise UsageError("ask either --to addresses or the devices of -c/-f/--host, not both")
    return ctx.devices() if chose else []


def _scan_file_devices(path: str) -> list[DeviceEntry]:
    """The devices already in the file of --write; checked before the scan, like the file."""
    check_writable(path)
    if not os.path.exists(path):
        return []
    return load_bnfos_conf(path).devices


def _scan_record(reply: ScanReply, names: dict[str, str]) -> dict:
    mac = format_mac(reply.mac)
    record = device_record(DeviceEntry("", mac=mac, host=reply.ip, port=reply.http_port),
                           ip=reply.ip, netmask=reply.netmask, gateway=reply.gateway,
                           http_port=reply.http_port, firmware=reply.firmware_version,
                           bootloader=reply.bootloader_version,
                           flash_mode=not reply.operational, dhcp=reply.dhcp,
                           password_protection=bool(reply.options & Options.HTTP_AUTH))
    record["name"] = names.get(mac.upper())
    return record


def _silent(asked: list[DeviceEntry], replies: list[ScanReply], window: float) -> list[dict]:
    """A record for each asked device that did not answer."""
    answered = {format_mac(reply.mac).upper() for reply in replies}
    return [device_record(d, DeviceTimeout(d.label, f"no scan reply within {window:g} s"))
            for d in asked if not d.mac or d.mac.upper() not in answered]


def _scan_text(ctx, records: list[dict]) -> None:
    found = [r for r in records if r["ok"]]
    rows = [("NAME", "MAC", "ADDRESS", "FIRMWARE", "MODE", "DHCP")
            + (("NETMASK", "GATEWAY") if ctx.args.verbose else ())]
    for r in found:
        rows.append((r["name"] or "-", r["mac"], r["address"], r["firmware"],
                     "flash" if r["flash_mode"] else "operational", "on" if r["dhcp"] else "off")
                    + ((r["netmask"], r["gateway"]) if ctx.args.verbose else ()))
    for line in table_lines(rows):
        ctx.say(line)
    ctx.say(f"{len(found)} device{'s' if len(found) != 1 else ''} found.")


def _write_scan(ctx, known: list[DeviceEntry], replies: list[ScanReply]) -> int:
    path = ctx.args.write
    if not replies:
        ctx.warn(f"no device answered: {path} left as it was")
        return EXIT_DEVICE
    # New devices are named in the order of their MACs, not of their answers,
    # so that a rescan names them alike (and the emulator's fos1, fos2 ... match).
    found = [DeviceEntry("", mac=format_mac(r.mac), host=r.ip, port=r.http_port)
             for r in sorted(replies, key=lambda reply: reply.mac)]
    refused: list[str] = []

    def accept_move(device: DeviceEntry, seen: DeviceEntry) -> bool:
        # A scan reply is easy to forge: moving a device (and its login)
        # elsewhere is the operator's decision.
        change = f"{device.name} ({device.mac}): address {device.address} -> {seen.address}"
        if ctx.args.yes:
            ctx.say(change)
            return True
        if ctx.confirmed(f"{change}: accept?"):
            return True
        refused.append(f"{change} refused, {device.address} kept (add --yes to accept)")
        return False

    devices = merge_devices(known, found, accept_move=accept_move)
    write_bnfos_conf(path, render_bnfos_conf(devices).encode())
    ctx.say(f"{path}: {len(devices)} device(s) written (names and logins of known devices kept)")
    for message in refused:
        ctx.warn(message)
    return EXIT_DEVICE if refused else EXIT_OK


# -- netconf --------------------------------------------------------------------------------

def _netconf(commands) -> None:
    sub = add_command(commands, "netconf", _cmd_netconf, uses=UDP_OPTIONS,
                      help="set a device's network configuration over UDP, in operation or in "
                           "flash mode like bnfos (values not given stay as the device "
                           "reports them)")
    sub.add_argument("-i", "--ip", type=_ipv4_arg, action=Once, help="IPv4 address")
    sub.add_argument("-n", "--netmask", type=_ipv4_arg, action=Once,
                     help="netmask (contiguous, e.g. 255.255.255.0)")
    sub.add_argument("-g", "--gateway", type=_ipv4_arg, action=Once,
                     help="gateway, inside the subnet (0.0.0.0: none)")
    sub.add_argument("-d", "--dhcp", type=_yes_no, action=Once, metavar="yes|no",
                     help="DHCP on or off")
    sub.add_argument("-p", "--http-port", type=port_number, action=Once, metavar="PORT",
                     help="HTTP port")
    sub.add_argument("--phy", choices=sorted(_PHY), action=Once,
                     help="Ethernet link: auto, 10 or 100")
    _to_option(sub)


def _yes_no(text: str) -> bool:
    try:
        return bool(lookup("dhcp").parse_user(text))
    except InvalidValue:
        raise argparse.ArgumentTypeError(f"{text!r} is not yes or no") from None


def _as_number(address: str) -> int:
    return int.from_bytes(bytes(int(part) for part in address.split(".")), "big")


def _check_network(ip: str, netmask: str, gateway: str, given: set[str]) -> None:
    """Refuse a netmask with holes and a gateway the device could not reach."""
    mask = _as_number(netmask)
    hosts = ~mask & 0xFFFFFFFF
    if mask == 0 or hosts & (hosts + 1):
        raise UsageError(f"netmask {netmask} is not contiguous (ones, then zeros: "
                         "e.g. 255.255.255.0)")
    if gateway != "0.0.0.0" and _as_number(gateway) & mask != _as_number(ip) & mask:
        kept = "" if "gateway" in given else " (the device's, kept)"
        raise UsageError(f"gateway {gateway}{kept} is outside {ip}/{bin(mask).count('1')}: "
                         "give one inside it with -g, or -g 0.0.0.0 for none")


def _cmd_netconf(ctx) -> int:
    args = ctx.args
    target = _Target(ctx, ctx.one_device())
    udp = ctx.udp()
    # What is not given stays as the device reports it, and so do the option
    # bits netconf also carries (password protection, IP ACL).
    with _udp_hint(target):
        current = udp.identify(target.mac, target.address)
    given = {name for name in ("ip", "netmask", "gateway") if getattr(args, name, None)}
    request = _netconf_request(args, current, target.mac)
    if given:
        _check_network(request.ip, request.netmask, request.gateway, given)
    with _udp_hint(target):
        udp.netconf(request, target.address)
    dhcp = bool(request.options & Options.DHCP)
    ctx.say(f"{target.device.name} ({format_mac(target.mac)}): address {request.ip} netmask "
            f"{request.netmask} gateway {request.gateway}, DHCP {'on' if dhcp else 'off'}, "
            f"HTTP port {request.http_port}, link {PHY_CONF_LABELS[request.phy_conf]}")
    ctx.say(_after_netconf(ctx, request, dhcp, in_flash_mode=not current.operational))
    return ctx.finish([device_record(target.device, address=request.ip,
                                     netmask=request.netmask, gateway=request.gateway,
                                     dhcp=dhcp, http_port=request.http_port)])


def _netconf_request(args, current: ScanReply, mac: bytes) -> NetconfRequest:
    dhcp = current.dhcp if getattr(args, "dhcp", None) is None else args.dhcp
    options = (current.options & ~Options.DHCP) | (Options.DHCP if dhcp else 0)
    phy = _PHY[args.phy] if getattr(args, "phy", None) else (
        current.phy_conf if current.phy_conf in (1, 2, 3) else _PHY["auto"])
    return NetconfRequest(mac, getattr(args, "ip", None) or current.ip,
                          getattr(args, "netmask", None) or current.netmask,
                          getattr(args, "gateway", None) or current.gateway, phy, int(options),
                          getattr(args, "http_port", None) or current.http_port)


def _after_netconf(ctx, request: NetconfRequest, dhcp: bool, *, in_flash_mode: bool) -> str:
    """What to do next: leave flash mode, then record the address in the -c file."""
    ask = "" if dhcp else f" --to {request.ip}"
    record = f"'berofos scan{ask} --write {ctx.args.config}' to record the new address"
    if in_flash_mode:
        return f"power-cycle the device to leave flash mode, then {record}"
    return f"then {record} (the device may take it only after a reboot)"


# -- flash ----------------------------------------------------------------------------------

def _flash(commands) -> None:
    sub = add_command(commands, "flash", _cmd_flash, uses=UDP_OPTIONS,
                      help="write a firmware image, checked first (device in flash mode)")
    sub.add_argument("image", metavar="FILE")
    _to_option(sub)
    sub.add_argument("--yes", action="store_true", help="flash without asking (without a "
                     "terminal, --yes is required)")


def _read_image(path: str) -> bytes:
    """The image file, read no further than what a firmware can be, and checked."""
    try:
        with open(path, "rb") as handle:
            image = handle.read(MAX_IMAGE_SIZE + 1)
    except OSError as err:
        raise UsageError(f"{path}: {(err.strerror or str(err)).lower()}") from None
    try:
        check_firmware_image(image)
    except InvalidValue as err:
        raise UsageError(f"{path} is no berofos firmware: {err}") from None
    return image


def _cmd_flash(ctx) -> int:
    path = ctx.args.image
    image = _read_image(path)
    target = _Target(ctx, ctx.one_device())
    udp = ctx.udp()
    with _udp_hint(target):
        reply = udp.identify(target.mac, target.address)
    label = target.device.label
    if reply.operational:
        raise DeviceError(label, f"not in flash mode: {_FLASH_MODE_HINT}")
    pages = len(split_pages(image))
    if not ctx.confirmed(f"flash {label} (firmware {reply.firmware_version}) with {path} "
                         f"({len(image)} bytes, {pages} pages)?"):
        raise UsageError("nothing flashed: add --yes to flash without a terminal")
    stuck = (f"{label} stays in flash mode without a complete firmware: flash it again "
             f"('{_flash_again(ctx, target.device, path)}') before any power cycle")
    progress = Progress(ctx.stderr, f"flashing {target.device.name}", "pages",
                        live=hasattr(ctx.stderr, "isatty") and ctx.stderr.isatty())
    try:
        udp.flash(target.mac, target.address, image, progress.update)
    except KeyboardInterrupt:
        raise Interrupted(f"flashing interrupted: {stuck}") from None
    except BerofosError as err:
        detail = getattr(err, "detail", str(err))
        raise DeviceError(label, f"flashing failed ({detail}): {stuck}") from None
    ctx.say(f"{target.device.name}: {pages} pages flashed; power-cycle the device to start "
            "the new firmware")
    return ctx.finish([device_record(target.device, pages=pages)])


def _flash_again(ctx, device: DeviceEntry, path: str) -> str:
    if "host" in ctx.given:
        return f"berofos --host {device.address} --mac {device.mac} flash {path}"
    return f"berofos -c {ctx.args.config} -f {device.name} flash {path}"


# -- ping, kick, reset ----------------------------------------------------------------------

def _each_device(ctx, action, field: str) -> int:
    """``action(udp, target)`` on every device in parallel; its value is the record's ``field``."""
    udp = ctx.udp()
    targets = [_Target(ctx, device) for device in ctx.devices()]

    def run(target: _Target):
        with _udp_hint(target):
            return action(udp, target)

    records = [device_record(r.device, r.error, **{field: r.value})
               for r in on_every_device(run, targets, Deadline(None))]
    return ctx.finish(records)


def _ping(commands) -> None:
    sub = add_command(commands, "ping", _cmd_ping, uses=UDP_OPTIONS, help="GBL4 ping")
    sub.add_argument("--count", type=count, default=1, metavar="N", help="pings (default 1)")
    _to_option(sub)


def _cmd_ping(ctx) -> int:
    def ping(udp: Gbl4Client, target: _Target) -> list[float]:
        times = []
        for _ in range(ctx.args.count):
            times.append(round(udp.ping(target.mac, target.address) * 1000, 1))
            ctx.say(f"{target.device.label}: answer in {times[-1]:.1f} ms")
        return times
    return _each_device(ctx, ping, "round_trips_ms")


def _kick(commands) -> None:
    sub = add_command(commands, "kick", _cmd_kick, uses=UDP_OPTIONS,
                      help="kick the hardware watchdog")
    sub.add_argument("--count", type=count, default=1, metavar="N", help="kicks (default 1)")
    sub.add_argument("--interval", type=positive, default=_KICK_INTERVAL, metavar="SECONDS",
                     help=f"pause between kicks (default {_KICK_INTERVAL:g})")
    _to_option(sub)


def _cmd_kick(ctx) -> int:
    def kick(udp: Gbl4Client, target: _Target) -> int:
        for number in range(ctx.args.count):
            if number:
                time.sleep(ctx.args.interval)
            udp.kick(target.mac, target.address)
            ctx.say(f"{target.device.label}: watchdog kicked")
        return ctx.args.count
    return _each_device(ctx, kick, "kicks")


def _reset(commands) -> None:
    sub = add_command(commands, "reset", _cmd_reset, uses=UDP_OPTIONS,
                      help="erase settings and firmware (flash mode only)")
    sub.add_argument("--yes", action="store_true", help="really do it")
    _to_option(sub)


def _cmd_reset(ctx) -> int:
    if not ctx.args.yes:
        raise UsageError("reset erases the device's settings and firmware; "
                         "add --yes if that is what you want")
    target = _Target(ctx, ctx.one_device())
    with _udp_hint(target):
        ctx.udp().reset(target.mac, target.address)
    ctx.say(f"{target.device.name}: erased; flash a firmware before rebooting it")
    return ctx.finish([device_record(target.device, erased=True)])
