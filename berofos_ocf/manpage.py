"""Man pages generated from their single sources.

``ocf_PROVIDER_berofos(7)`` and ``ocf_PROVIDER_berofos-bypass(7)`` come from
their agents' tables (the same tables as the meta-data), ``berofos(1)`` from
the command line parser.  The pages committed under ``man/`` are checked
against this output by the test suite, so they cannot go stale.

    python3 -m berofos_ocf.manpage agent [--provider NAME] > ocf_NAME_berofos.7
    python3 -m berofos_ocf.manpage agent --agent berofos-bypass > ocf_NAME_berofos-bypass.7
    python3 -m berofos_ocf.manpage cli > berofos.1
"""

from __future__ import annotations

__all__ = ["agent_manpage", "cli_manpage", "DEFAULT_PROVIDER"]

import argparse
import sys

from . import __version__

DEFAULT_PROVIDER = "berofos"


def _escape(text: str) -> str:
    """Escape text for roff: backslashes, and dots/quotes that would start a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.split("\n"):
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _paragraphs(text: str) -> list[str]:
    out = []
    for paragraph in text.split("\n\n"):
        out += [".PP", _escape(" ".join(paragraph.split()))]
    return out


def _bold(text: str) -> str:
    return f"\\fB{_escape(text)}\\fR"


def _italic(text: str) -> str:
    return f"\\fI{_escape(text)}\\fR"


def agent_manpage(provider: str = DEFAULT_PROVIDER, table=None) -> str:
    """``ocf_PROVIDER_NAME(7)`` of the agent whose table is ``table`` (default: berofos)."""
    from .agent.table import BEROFOS

    table = table or BEROFOS
    name = f"ocf_{provider}_{table.name}"
    lines = [
        f'.TH {name.upper()} 7 "" "berofos-ocf {__version__}" "OCF resource agents"',
        ".SH NAME", f"{_escape(name)} \\- {_escape(table.shortdesc)}",
        ".SH SYNOPSIS",
        " ".join(f"{_bold('OCF_RESKEY_' + p.name)}={_italic(p.type)}"
                 for p in table.parameters if p.required)
        + f" {_bold(table.name)} [{_escape(' | '.join(table.action_names()))}]",
        ".SH DESCRIPTION",
    ]
    lines += _paragraphs(table.longdesc)
    lines += _agent_parameters(table) + _agent_actions(table)
    lines.append(".SH MONITOR EXIT STATUS")
    for row in table.monitor_codes:
        lines += [".TP", _bold(row.codes), _escape(row.meaning)]
    if table.node_name:
        lines += [".SH NODE NAME", _escape(table.node_name)]
    lines += [".SH EXAMPLE CONFIGURATION", ".PP", ".nf",
              _escape(table.example.replace("PROVIDER", provider).rstrip("\n")), ".fi",
              ".SH FILES"]
    for path, meaning in table.files:
        lines += [".TP", _bold(path), _escape(meaning)]
    lines += [
        ".SH SEE ALSO",
        "\\fBberofos\\fR(1), \\fBcrm_mon\\fR(8), \\fBpcs\\fR(8), \\fBcrm\\fR(8), "
        "\\fBocf\\-tester\\fR(8)",
    ]
    return "\n".join(lines) + "\n"


def _agent_parameters(table) -> list[str]:
    lines = [".SH SUPPORTED PARAMETERS"]
    for parameter in table.parameters:
        facts = ["required" if parameter.required else "optional", parameter.type]
        if parameter.default is not None:
            facts.append(f'default "{parameter.default}"')
        if parameter.reloadable:
            facts.append("reloadable")
        lines += [".TP", _bold(parameter.name),
                  _escape(f"{parameter.longdesc} ({parameter.shortdesc}.)"),
                  ".br", _escape("(" + ", ".join(facts) + ")")]
    return lines


def _agent_actions(table) -> list[str]:
    lines = [".SH SUPPORTED ACTIONS",
             "Timeouts and intervals the agent advertises as minimums:"]
    for action in table.advertised():
        details = [f"timeout {action.timeout}s"]
        if action.interval is not None:
            details.append(f"interval {action.interval}s")
        if action.role:
            details.append(f"role {action.role}")
        text = ", ".join(details) + (f". {action.doc}" if action.doc else "")
        lines += [".TP", _bold(action.name), _escape(text)]
    return lines


def _option_line(action: argparse.Action) -> str:
    names = ", ".join(_bold(option) for option in action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar or action.dest.upper()
    if action.choices and not action.metavar:
        metavar = "|".join(str(c) for c in action.choices)
    return f"{names} {_italic(str(metavar))}"


def _options(parser: argparse.ArgumentParser, skip: set[str]) -> list[str]:
    lines = []
    for action in parser._actions:  # argparse has no public way to list them
        if (not action.option_strings or action.dest in skip or action.help == argparse.SUPPRESS
                or action.dest.startswith(_AFTER)):
            continue
        lines += [".TP", _option_line(action), _escape(action.help or "")]
    return lines


# The common options repeated after each command name: listed once, at the top.
_AFTER = "after_"


def _command_lines(name: str, sub: argparse.ArgumentParser, help: str) -> list[str]:
    """One command: its arguments, what it does, its options; ``emulator ctl``'s actions."""
    nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
    positionals = " ".join(_italic(str(a.metavar or a.dest)) + ("..." if a.nargs == "+" else "")
                           for a in sub._actions if not a.option_strings and a not in nested)
    lines = [".SS", f"{_bold(name)} {positionals}".rstrip(), _escape(help or "")]
    lines += _options(sub, {"help"})
    if name == "emulator":
        from .cli.emulatorcommand import ctl_actions

        ctl = nested[0].choices["ctl"]
        lines += [".SS", f"{_bold('emulator ctl')} {_italic('HOST:PORT')} {_italic('ACTION')}",
                  _escape(ctl.description)]
        for action, words, what in ctl_actions(ctl):
            lines += [".TP", f"{_bold(action)} {_escape(words)}".rstrip(), _escape(what)]
    return lines


def _exit_status_lines() -> list[str]:
    """Every exit status, then what makes ``berofos status`` exit 1."""
    from .cli.entry import EXIT_STATUSES
    from .health import ProblemKind

    lines = [".SH EXIT STATUS"]
    for status, meaning in EXIT_STATUSES:
        lines += [".TP", str(status), _escape(meaning)]
    lines += [".PP", _escape("berofos status exits 1 when a device has any of these problems, "
                             "each in words with the command that fixes it below the table; "
                             "the STATE column shows the kind (or how many problems), --json "
                             "lists them under problems:")]
    for kind in ProblemKind:
        lines += [".TP", _bold(kind.value), _escape(kind.meaning)]
    return lines


_EXAMPLES = """\
berofos scan --write /etc/bnfos.conf
    find the devices and write the device file (bnfos --scan -x)
berofos scan --to 10.34.1.50 --write /etc/bnfos.conf
    ask one address (bnfos --scan -x -h 10.34.1.50)
berofos -f fos1 netconf -i 10.34.1.20 -n 255.255.255.0 -g 10.34.1.1 -d no
    static address, device in flash mode (bnfos --netconf -f fos1 ... -d 0)
berofos -f fos1 flash bnfos_v153.bin
    firmware update, device in flash mode (bnfos --flash bnfos_v153.bin -f fos1)
berofos -f fos1 password --update-config
    apwd, then pwd=1, then the login line of the file
berofos -f fos1 set wdog=0 wdogdef=0 scenario=0 mode=1 modedef=1
    preparation for a cluster (five bnfos --set calls), confirmed by read-back
berofos switch master
    relays to A--B on every device, confirmed (xivo-berofos master); on a node
    where Pacemaker manages the lines: pcs resource move isdn-clone NODE --promoted
berofos status
    what every device needs, as a table, each problem with its fix (--json for
    scripts); exit 1 when anything needs a human
berofos emulator ctl 127.0.0.1:8090 fire-watchdog fos1
    what an expired watchdog does, on an emulated device"""


def cli_manpage() -> str:
    """``berofos(1)``."""
    from .cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in subparsers._choices_actions}
    lines = [
        f'.TH BEROFOS 1 "" "berofos-ocf {__version__}" "User Commands"',
        ".SH NAME", "berofos \\- " + _escape(parser.description[0].lower()
                                            + parser.description[1:].rstrip(".")),
        ".SH SYNOPSIS",
        f"{_bold('berofos')} [{_bold('-c')} {_italic('FILE')}] [{_bold('-f')} "
        f"{_italic('NAME')}]... [{_bold('--host')} {_italic('IP[:PORT]')}] "
        f"{_italic('COMMAND')} [{_italic('ARGUMENTS')}]",
        ".SH DESCRIPTION",
    ]
    lines += _paragraphs(parser.epilog)
    lines.append(".SH DEVICE SELECTION AND OUTPUT")
    lines.append("Accepted before or after the command name; an option a command does not "
                 "use, or one given twice, is a usage error.")
    lines += _options(parser, {"help", "version"})
    lines.append(".SH COMMANDS")
    for name, sub in subparsers.choices.items():
        lines += _command_lines(name, sub, helps[name])
    lines += [".SH EXAMPLES", "The steps of Wazo's berofos integration, with the bnfos "
              "command each one replaces:", ".PP", ".nf", _escape(_EXAMPLES), ".fi"]
    lines += _exit_status_lines()
    lines += [".SH ENVIRONMENT", ".TP", _bold("BEROFOS_LOGIN"),
              _escape("USER:PASSWORD for the device given with --host."),
              ".TP", _bold("NO_COLOR"),
              _escape("set and not empty: no colour, even on a terminal."),
              ".SH FILES", ".TP", _bold("/etc/bnfos.conf"),
              _escape("The devices: [name] sections with mac, host and login lines, as "
                      "beroNet's bnfos reads them; host may carry :PORT."),
              ".SH SEE ALSO", "\\fBocf_berofos_berofos\\fR(7)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m berofos_ocf.manpage")
    parser.add_argument("page", choices=["agent", "cli"])
    parser.add_argument("--provider", default=DEFAULT_PROVIDER)
    parser.add_argument("--agent", choices=["berofos", "berofos-bypass"], default="berofos")
    args = parser.parse_args(argv)
    if args.page == "cli":
        sys.stdout.write(cli_manpage())
        return 0
    from .agent.bypass_table import BYPASS
    from .agent.table import BEROFOS

    table = BYPASS if args.agent == "berofos-bypass" else BEROFOS
    sys.stdout.write(agent_manpage(args.provider, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
