"""The commands that talk HTTP to the devices: status, show, get, set, switch, check, keys.

Each command's arguments are declared next to its handler, by the function
that registers it.  Devices are handled together, in parallel, through
:func:`~berofos_ocf.client.on_every_device`; what a device's state means is
:mod:`berofos_ocf.health`'s judgement, the same the agent uses.
"""

from __future__ import annotations

__all__ = ["register", "CHECK_WAIT"]

from ..bnfosconf import DeviceEntry, load_bnfos_conf
from ..client import DEFAULT_WAIT, BerofosClient, DeviceStatus, on_every_device, read_status
from ..configtxt import Settings
from ..deadline import Deadline
from ..errors import BerofosError, ConfigFileError, FormatError, InvalidValue, ProtocolError
from ..health import DeviceHealth, assess
from ..keys import KEYS, KEYS_BY_NAME, RELAY_LABELS, SCENARIO_LABELS, lookup, parse_relay_mode
from ..runstate import DEFAULT_RUN_DIR, RunDirectory, UnsafeRunDirectory, promoted_instances
from ..text import shown
from . import cluster
from .context import EXIT_OK, OUTPUT_OPTIONS, NotHolding, UsageError, add_command, positive
from .output import device_record, json_text, paint, table_lines

# The corosync-qdevice heuristic must end within its own timeout (5 s).
CHECK_WAIT = 4.0
STATE_DIR_ENV = "HA_RSCTMP"  # where resource-agents keeps the agent's run files


def register(commands) -> None:
    for add in (_status, _show, _get, _set, _switch, _check, _keys):
        add(commands)


def _read(ctx, devices: list[DeviceEntry]) -> list[DeviceStatus]:
    """Every device read once, in parallel, within one request timeout (and a second)."""
    return read_status(ctx.clients(devices), Deadline(ctx.args.timeout + 1))


def _not_understood(raw: str) -> str:
    """A value the device printed that does not fit its key, made safe to show."""
    return f"'{shown(raw)}' (not understood)"


# -- status ---------------------------------------------------------------------------------

def _status(commands) -> None:
    add_command(commands, "status", _cmd_status, help="what every device needs: relays, "
                "power-on relays, watchdog, and each problem with the command that fixes it; "
                "exit 1 when anything needs a human (details with -v)")


def _cmd_status(ctx) -> int:
    healths = assess(_read(ctx, ctx.devices()), ctx.fixes())
    for line in _status_table(ctx, healths):
        ctx.say(line)
    for health in healths:
        for problem in health.problems:
            ctx.say(health.message(problem))
            if problem.fix:
                ctx.say(f"    fix: {problem.fix}")
    return ctx.finish([_status_record(h) for h in healths], warn=False)


def _status_record(health: DeviceHealth) -> dict:
    values = health.settings.values() if health.settings else {}
    record = device_record(health.device, health.error, relays=_label(health.relay_mode),
                           relay_mode=health.relay_mode,
                           power_on_relays=_label(health.power_on_mode),
                           scenario=SCENARIO_LABELS.get(health.scenario),
                           watchdog=health.watchdog.value,
                           watchdog_remaining=health.watchdog_left,
                           password_protection=values.get("pwd"),
                           problems=[{"kind": p.kind.value, "words": p.words, "fix": p.fix}
                                     for p in health.problems])
    record["ok"] = not health.problems
    return record


def _label(mode: int | None) -> str | None:
    return RELAY_LABELS.get(mode)


def _status_table(ctx, healths: list[DeviceHealth]) -> list[str]:
    verbose = ctx.args.verbose
    head = ("DEVICE", "ADDRESS", "RELAYS", "POWER-ON", "WATCHDOG", "STATE")
    rows = [head + (("MAC", "SCENARIO", "PASSWORD") if verbose else ())]
    for health in healths:
        row = (health.device.name, health.device.address, _label(health.relay_mode) or "-",
               _label(health.power_on_mode) or "-", _watchdog_cell(health),
               _state_cell(health))
        if verbose:
            values = health.settings.values() if health.settings else {}
            pwd = values.get("pwd")
            row += (health.device.mac or "-", SCENARIO_LABELS.get(health.scenario, "-"),
                    "-" if pwd is None else ("on" if pwd else "off"))
        rows.append(row)

    def style(row: int, column: int, text: str) -> str:
        if not ctx.colour or row == 0 or column != 5:
            return text
        health = healths[row - 1]
        if not health.problems:
            return paint(text, "green")
        return paint(text, "yellow" if health.usable else "red")

    return table_lines(rows, style=style)


def _watchdog_cell(health: DeviceHealth) -> str:
    risk = health.watchdog.value
    if risk == "enabled" and health.watchdog_left is not None:
        return f"on {health.watchdog_left}s"
    return "-" if risk == "unknown" else risk


def _state_cell(health: DeviceHealth) -> str:
    """ok, the kind of the one problem, or how many there are (each is said below)."""
    if len(health.problems) > 1:
        return f"{len(health.problems)} problems"
    return health.problems[0].kind.value if health.problems else "ok"


# -- show, get ------------------------------------------------------------------------------

def _show(commands) -> None:
    add_command(commands, "show", _cmd_show, help="every value of every device")


def _cmd_show(ctx) -> int:
    records = []
    for status in _read(ctx, ctx.devices()):
        if status.error:
            records.append(device_record(status.device, status.error))
            continue
        settings = status.settings
        records.append(device_record(
            status.device, _incomplete(status.device, settings), values=settings.values(),
            not_understood=dict(settings.invalid()), unknown_lines=dict(settings.unknown)))
        _show_text(ctx, status.device, settings)
    return ctx.finish(records)


def _show_text(ctx, device: DeviceEntry, settings: Settings) -> None:
    ctx.say(f"Configuration of {device.label}:")
    values = settings.values()
    for key in KEYS:
        if key.name in values:
            ctx.say(f" {key.name:<10}= {shown(key.format_user(values[key.name]))}")
    for name, raw in settings.invalid().items():
        ctx.say(f" {name:<10}= {_not_understood(raw)}")
    for wire, raw in settings.unknown.items():
        ctx.say(f" {shown(wire):<10}= {shown(raw)} (unknown line)")
    ctx.say("")


def _incomplete(device: DeviceEntry, settings: Settings) -> ProtocolError | None:
    """An answer without every line is no answer to trust: it was cut short."""
    missing = [KEYS_BY_NAME[name].wire for name in settings.missing()]
    if not missing:
        return None
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    return ProtocolError(device.label, f"answer incomplete (cut short?): no "
                                       f"{', '.join(missing[:3])}{more} line")


def _get(commands) -> None:
    sub = add_command(commands, "get", _cmd_get, help="some values (see 'berofos keys')")
    sub.add_argument("keys", nargs="+", metavar="KEY")


def _cmd_get(ctx) -> int:
    try:
        keys = [lookup(name) for name in ctx.args.keys]
    except InvalidValue as err:
        raise UsageError(str(err)) from None
    for key in keys:
        if not key.readable:
            raise UsageError(f"{key.name} is write-only")
    statuses = _read(ctx, ctx.devices())
    records = [_get_record(ctx, status, keys, prefix=len(statuses) > 1) for status in statuses]
    return ctx.finish(records)


def _get_record(ctx, status: DeviceStatus, keys: list, *, prefix: bool) -> dict:
    if status.error:
        return device_record(status.device, status.error)
    values, problems = {}, []
    for key in keys:
        try:
            values[key.name] = status.settings[key.name]
        except KeyError:
            problems.append(f"config.txt has no {key.wire} line ({key.name}): the answer was "
                            "cut short, or is not from a berofos")
            continue
        except FormatError:
            problems.append(f"{key.name} = {_not_understood(status.settings.raw[key.wire])}")
            continue
        value = shown(key.format_user(values[key.name]))
        ctx.say(f"{status.device.name}: {key.name} = {value}" if prefix
                else f"{key.name} = {value}")
    error = ProtocolError(status.device.label, "; ".join(problems)) if problems else None
    return device_record(status.device, error, values=values)


# -- set, switch ----------------------------------------------------------------------------

def _wait_option(sub, default: float, what: str) -> None:
    sub.add_argument("--wait", type=positive, default=default, metavar="SECONDS",
                     help=f"{what} (default {default:g})")


def _set(commands) -> None:
    sub = add_command(commands, "set", _cmd_set, help="write values and read them back "
                      "(e.g. wdog=0 wdogdef=0 scenario=0 mode=1 modedef=1); mode and modedef "
                      "are refused while Pacemaker manages a berofos resource here (--force)")
    sub.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    _wait_option(sub, DEFAULT_WAIT, "give up after this long")
    sub.add_argument("--force", action="store_true", help="set mode or modedef even while "
                     "the cluster manages the lines")


def parse_assignments(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` words as typed values by key name; a key given twice is an error."""
    changes: dict[str, object] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"{item!r} is not KEY=VALUE")
        try:
            key = lookup(name)
            value = key.parse_user(text)
        except InvalidValue as err:
            raise UsageError(str(err)) from None
        if key.name in changes:
            raise UsageError(f"{key.name} given twice")
        changes[key.name] = value
    return changes


def _describe_changes(changes: dict[str, object]) -> dict[str, str]:
    return {name: lookup(name).format_user(value) for name, value in changes.items()}


def _cmd_set(ctx) -> int:
    changes = parse_assignments(ctx.args.assignments)
    if "apwd" in changes:
        raise UsageError("a password on the command line shows in the process list: "
                         "use 'berofos password'")
    devices = ctx.devices()
    if changes.get("pwd") and not all(d.has_login for d in devices):
        raise UsageError("pwd=1 without a login would lock you out: use 'berofos password'")
    relays = {"mode", "modedef"} & changes.keys()
    if relays and not ctx.args.force:
        # the cluster owns where the lines are and where they go at power-on
        cluster.refuse_if_managed(ctx.runner, changes.get("mode", changes.get("modedef")))
    deadline = Deadline(ctx.args.wait)
    written = _describe_changes(changes)
    text = ", ".join(f"{name}={value}" for name, value in written.items())
    records = []
    for result in on_every_device(lambda c: c.write(changes, deadline),
                                  ctx.clients(devices), deadline):
        confirmed = result.ok and result.value is not None
        if result.ok:
            ctx.say(f"{result.device.label}: {text} (confirmed)" if confirmed else
                    f"{result.device.label}: {text} written; network settings are not read "
                    "back: check with 'berofos scan'")
        records.append(device_record(result.device, result.error, written=written,
                                     confirmed=confirmed))
    return ctx.finish(records)


def _switch(commands) -> None:
    sub = add_command(commands, "switch", _cmd_switch, help="move the relays and confirm: "
                      "master/b (A--B) or slave/d (A--D); refused while Pacemaker manages "
                      "a berofos resource here (--force)")
    sub.add_argument("position", metavar="master|slave|b|d|A--B|A--D")
    _wait_option(sub, DEFAULT_WAIT, "retry until confirmed for this long")
    sub.add_argument("--force", action="store_true", help="switch even while the cluster "
                     "manages the lines (it may switch them back)")


def _cmd_switch(ctx) -> int:
    try:
        mode = parse_relay_mode(ctx.args.position)
    except InvalidValue as err:
        raise UsageError(str(err)) from None
    devices = ctx.devices()
    if not ctx.args.force:
        cluster.refuse_if_managed(ctx.runner, mode)
    deadline = Deadline(ctx.args.wait)
    records = []
    for result in on_every_device(lambda c: c.switch_relays(mode, deadline),
                                  ctx.clients(devices), deadline):
        switch = result.value
        if result.ok and switch.changed:
            ctx.say(f"{result.device.label}: relays {RELAY_LABELS[switch.old_mode]} -> "
                    f"{RELAY_LABELS[switch.new_mode]} (confirmed)")
        elif result.ok:
            ctx.say(f"{result.device.label}: relays already {RELAY_LABELS[mode]}")
        records.append(device_record(
            result.device, result.error, relays=RELAY_LABELS[mode] if result.ok else None,
            previous=RELAY_LABELS[switch.old_mode] if result.ok else None,
            changed=bool(result.ok and switch.changed)))
    return ctx.finish(records)


# -- check: the heuristic of corosync-qdevice ------------------------------------------------

def _check(commands) -> None:
    sub = add_command(commands, "check", _cmd_check, help="exit 0, silently, when every "
                      "device answers with the credentials of the file; one line per failing "
                      "device otherwise (a corosync-qdevice heuristic)")
    sub.add_argument("--holder", action="store_true",
                     help="pass only where the lines are held: a berofos resource is "
                          "promoted on this node and the relays of its devices connect it "
                          "(devices from the agent's state, not -c/-f/--host)")
    sub.add_argument("--state-dir", metavar="DIR",
                     help=f"the agent's run directory (default ${STATE_DIR_ENV}, or "
                          f"{DEFAULT_RUN_DIR})")
    _wait_option(sub, CHECK_WAIT, "give up on the devices after this long in all")


def _cmd_check(ctx) -> int:
    """Silent exit 0 when every device answers (and, with --holder, connects this node)."""
    if ctx.args.holder:
        expected = _held_devices(ctx)
    else:
        if ctx.args.state_dir:
            raise UsageError("--state-dir goes with --holder")
        expected = [(device, None) for device in ctx.devices()]
    clients = ctx.clients([device for device, _ in expected])
    statuses = read_status(clients, Deadline(ctx.args.wait))
    records = [device_record(status.device, _check_problem(client, status, own_mode))
               for client, status, (_, own_mode) in zip(clients, statuses, expected)]
    return ctx.finish(records)


def _held_devices(ctx) -> list[tuple[DeviceEntry, int]]:
    """(device, relay mode that connects this node) of every instance promoted here."""
    given = [flag for flag, dest in (("-c", "config"), ("-f", "device"), ("--host", "host"))
             if dest in ctx.given]
    if given:
        raise UsageError(f"check --holder takes its devices from the agent's state on this "
                         f"node: drop {', '.join(given)}")
    state_dir = ctx.args.state_dir or ctx.environ.get(STATE_DIR_ENV) or DEFAULT_RUN_DIR
    instances = _promoted_here(state_dir)
    if not instances:
        raise NotHolding("this node holds no lines: no berofos resource is promoted here")
    held = []
    for instance, state in instances:
        if state.own_mode not in RELAY_LABELS or not state.config or not state.devices:
            raise NotHolding(f"instance {instance} is promoted here but its state file in "
                             f"{state_dir} says nothing usable (no config, devices or mode)")
        devices = load_bnfos_conf(state.config).select(state.devices)
        held += [(device, state.own_mode) for device in devices]
    return held


def _promoted_here(state_dir: str) -> list:
    try:
        RunDirectory(state_dir).check()  # a directory others may write to proves nothing
    except FileNotFoundError:
        return []
    except UnsafeRunDirectory as err:
        raise ConfigFileError(str(err), kind="permission") from None
    return promoted_instances(state_dir)


def _check_problem(client: BerofosClient, status: DeviceStatus,
                   own_mode: int | None) -> BerofosError | None:
    """Why this device fails the check, or None."""
    if status.error is not None:
        return status.error
    try:
        mode = client.relay_mode(status.settings)
    except BerofosError as err:
        return err
    if own_mode is not None and mode != own_mode:
        return NotHolding(f"{client.label}: relays at {RELAY_LABELS[mode]}, this node is on "
                          f"{RELAY_LABELS[own_mode]}")
    return None


# -- keys -----------------------------------------------------------------------------------

def _keys(commands) -> None:
    add_command(commands, "keys", _cmd_keys, uses=OUTPUT_OPTIONS, help="list the keys of get/set")


def _cmd_keys(ctx) -> int:
    records = []
    for key in KEYS:
        access = "rw" if key.readable and key.writable else ("r" if key.readable else "w")
        query = ""
        if key.writable:
            fixed = "".join(f"&{n}={v}" for n, v in key.fixed)
            query = f"?cmd={key.cmd}{fixed}&{key.param}=V"
        records.append({"name": key.name, "access": access, "type": key.kind,
                        "config_txt": key.wire, "write": query or None,
                        "meaning": key.description})
    if ctx.json:
        ctx.print(json_text(records))
        return EXIT_OK
    rows = [("KEY", "ACCESS", "TYPE", "CONFIG.TXT", "WRITE", "MEANING")]
    rows += [(r["name"], r["access"], r["type"], r["config_txt"] or "-", r["write"] or "-",
              r["meaning"]) for r in records]
    for line in table_lines(rows):
        ctx.print(line)
    return EXIT_OK
