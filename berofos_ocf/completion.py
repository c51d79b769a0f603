"""Bash completion for ``berofos``, generated from the command line parser.

Like the man page (:mod:`berofos_ocf.manpage`), the script comes from
``berofos_ocf.cli.build_parser()``: the commands, the options of each, and
what an option's value is (a file for ``FILE``, a directory for ``DIR``, one
of its ``choices`` or of the words of a ``yes|no`` metavar, a key of the key
table for ``KEY``; nothing to propose otherwise), so it cannot drift from the
command line.  ``make install`` writes it to
``$(COMPLETIONDIR)/berofos``:

    python3 -m berofos_ocf.completion > /usr/share/bash-completion/completions/berofos

The script needs bash only, not the bash-completion package: ``_berofos``
reads ``COMP_WORDS`` and ``COMP_CWORD`` and fills ``COMPREPLY``.
"""

from __future__ import annotations

__all__ = ["bash_completion", "main", "FUNCTION"]

import argparse
import re
import shlex
import sys

from . import __version__

FUNCTION = "_berofos"
_GLOBAL = ""  # the scope before any command name
# Names land unquoted in case patterns: refuse anything that would mean more there.
_PLAIN_NAME = re.compile(r"-{0,2}[A-Za-z0-9][A-Za-z0-9_-]*")

_FILES = 'compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur")'
_DIRS = 'compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur")'
_NOTHING = "COMPREPLY=()"


class Scope:
    """What can be typed at one place of the line: before a command, or after one."""

    def __init__(self, name: str, parser: argparse.ArgumentParser) -> None:
        self.name = name
        self.options: list[str] = []
        self.values: dict[str, str] = {}  # option string -> bash completing its value
        self.positional = _NOTHING
        positionals = []
        for action in parser._actions:  # argparse has no public way to list them
            if isinstance(action, argparse._SubParsersAction):
                positionals.append(_words(action.choices))
            elif not action.option_strings:
                positionals.append(_value_completion(action))
            elif action.help != argparse.SUPPRESS:
                self._add_option(action)
        if positionals:  # every command takes at most one kind of argument
            self.positional = positionals[0]

    def _add_option(self, action: argparse.Action) -> None:
        for option in action.option_strings:
            _check_plain(option)
            self.options.append(option)
            if action.nargs != 0:
                self.values[option] = _value_completion(action)


def _check_plain(name: str) -> None:
    if not _PLAIN_NAME.fullmatch(name):
        raise ValueError(f"{name!r} cannot be put in the completion script as it is")


def _words(words) -> str:
    listed = " ".join(str(word) for word in words)
    return f'mapfile -t COMPREPLY < <(compgen -W {shlex.quote(listed)} -- "$cur")'


def _value_completion(action: argparse.Action) -> str:
    """The bash that fills COMPREPLY with candidates for the value of ``action``."""
    if action.choices:
        return _words(sorted(str(choice) for choice in action.choices))
    metavar = str(action.metavar or action.dest.upper())
    if "|" in metavar:  # e.g. yes|no, master|slave|b|d|A--B|A--D
        return _words(metavar.split("|"))
    if metavar == "FILE":
        return _FILES
    if metavar == "DIR":
        return _DIRS
    if metavar == "KEY":
        from .keys import KEYS

        return _words(key.name for key in KEYS)
    return _NOTHING  # an address, a number: nothing sensible to propose


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in subparsers.choices:
        _check_plain(name)
    return subparsers.choices


def _case(subject: str, branches: dict[str, str], indent: str) -> list[str]:
    """A bash ``case`` whose branches are pattern -> commands."""
    lines = [f"{indent}case {subject} in"]
    for pattern, body in branches.items():
        lines.append(f"{indent}    {pattern}) {body} ;;")
    lines.append(f"{indent}esac")
    return lines


def _value_branches(scopes: list[Scope]) -> dict[str, str]:
    """Case patterns ``command:option`` grouped by how the option's value completes.

    An option that completes alike wherever it exists is one ``*:option``
    pattern (the device selection options are in every command); in a scope
    without it, the word is an error anyway and no candidate is the answer.
    """
    completions: dict[str, dict[str, str]] = {}  # option -> scope -> completion
    for scope in scopes:
        for option, completion in scope.values.items():
            completions.setdefault(option, {})[scope.name] = completion
    grouped: dict[str, list[str]] = {}
    for option, by_scope in completions.items():
        if len(set(by_scope.values())) == 1:
            grouped.setdefault(next(iter(by_scope.values())), []).append(f"*:{option}")
            continue
        for scope_name, completion in by_scope.items():
            grouped.setdefault(completion, []).append(f"{shlex.quote(scope_name)}:{option}")
    return {"|".join(patterns): completion + "; return 0"
            for completion, patterns in grouped.items()}


def _find_command_loop(top: Scope, commands: dict[str, argparse.ArgumentParser]) -> list[str]:
    """Bash finding the command name, skipping the values of options before it."""
    skip = {"|".join(top.values): "((i++))"} if top.values else {}
    found = {"|".join(commands): "command=${COMP_WORDS[i]}; break"}
    return (["    for ((i = 1; i < COMP_CWORD; i++)); do"]
            + _case("${COMP_WORDS[i]}", {**skip, **found}, " " * 8)
            + ["    done"])


def bash_completion() -> str:
    """The completion script of ``berofos``."""
    from .cli import build_parser

    parser = build_parser()
    commands = _commands(parser)
    top = Scope(_GLOBAL, parser)
    scopes = [top] + [Scope(name, sub) for name, sub in commands.items()]
    options = {shlex.quote(s.name): f"options={shlex.quote(' '.join(s.options))}"
               for s in scopes}
    positionals = {shlex.quote(s.name): s.positional for s in scopes if s.positional != _NOTHING}
    positionals["*"] = _NOTHING
    lines = [
        f"# bash completion for berofos(1), berofos-ocf {__version__}.",
        "# Generated from the command line parser by \"python3 -m berofos_ocf.completion\":",
        "# do not edit.",
        "",
        f"{FUNCTION}()",
        "{",
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}",
        "    local command='' options='' i",
        "    # bash splits --config=FILE into three words: --config, =, FILE",
        "    if [[ $cur == = ]]; then",
        "        cur=''",
        "    elif [[ $prev == = ]]; then",
        "        prev=${COMP_WORDS[COMP_CWORD-2]}",
        "    fi",
    ]
    lines += _find_command_loop(top, commands)
    lines += _case("$command:$prev", _value_branches(scopes), "    ")
    lines += ["    if [[ $cur == -* ]]; then"]
    lines += _case("$command", options, " " * 8)
    lines += ['        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")',
              "        return 0", "    fi"]
    lines += _case("$command", positionals, "    ")
    lines += ["}", "", f"complete -F {FUNCTION} berofos"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python3 -m berofos_ocf.completion",
                            description="Print the bash completion script of berofos.",
                            ).parse_args(argv)
    sys.stdout.write(bash_completion())
    return 0


if __name__ == "__main__":
    sys.exit(main())
