"""The bash completion script, generated from the command line parser.

The script is run the way bash runs it at a Tab: sourced, COMP_WORDS and
COMP_CWORD set, the function called, COMPREPLY read back.
"""

from __future__ import annotations

import argparse
import subprocess

import pytest

from berofos_ocf.cli import build_parser
from berofos_ocf.completion import FUNCTION, bash_completion

from .conftest import PYTHON, ROOT


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("completion") / "berofos"
    path.write_text(bash_completion())
    return path


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions
                if isinstance(a, argparse._SubParsersAction)).choices


def complete(script, *words: str) -> list[str]:
    """What a Tab after ``words`` (the last one being typed) proposes."""
    program = (f'source {script}; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); {FUNCTION}; '
               'printf "%s\\n" "${COMPREPLY[@]}"')
    result = subprocess.run(["bash", "--norc", "-c", program, "bash", *words],
                            capture_output=True, text=True, check=True, cwd=ROOT)
    return [line for line in result.stdout.splitlines() if line]


def test_script_proposes_every_subcommand_and_its_options(script):
    text = script.read_text()
    commands = subcommands()
    assert all(name in text for name in commands)
    assert complete(script, "berofos", "") == list(commands)
    for name, sub in commands.items():
        options = [option for action in sub._actions if action.help != argparse.SUPPRESS
                   for option in action.option_strings]
        assert complete(script, "berofos", name, "-") == options, name


def test_bash_accepts_the_script(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_completes_a_command_name(script):
    assert complete(script, "berofos", "sta") == ["status"]


def test_skips_the_values_of_options_before_the_command(script):
    assert complete(script, "berofos", "-c", "status", "sw") == ["switch"]


def test_completes_the_options_of_the_command(script):
    assert complete(script, "berofos", "netconf", "--dh") == ["--dhcp"]
    assert complete(script, "berofos", "status", "--j") == ["--json"]


def test_completes_values_from_the_parser(script):
    assert complete(script, "berofos", "netconf", "-d", "") == ["yes", "no"]
    assert complete(script, "berofos", "netconf", "--phy", "1") == ["10", "100"]
    assert complete(script, "berofos", "switch", "m") == ["master"]
    assert "wdogdef" in complete(script, "berofos", "get", "wdog")
    assert complete(script, "berofos", "--timeout", "") == []


def test_completes_files_where_a_file_is_expected(script):
    assert complete(script, "berofos", "-c", "Makef") == ["Makefile"]
    assert complete(script, "berofos", "--config", "=", "Makef") == ["Makefile"]
    assert complete(script, "berofos", "flash", "COPY") == ["COPYING"]


def test_make_install_puts_it_beside_the_man_pages(tmp_path):
    # Default: $(PREFIX)/share/bash-completion/completions; a MANDIR moved out of
    # the system (as the test suite's private installations do) takes it along.
    for mandir, expected in ((None, "usr/share/bash-completion/completions/berofos"),
                             ("/opt/b/man", "opt/b/bash-completion/completions/berofos")):
        root = tmp_path / (mandir or "default").strip("/").replace("/", "-")
        make = ["make", "-s", f"DESTDIR={root}", f"PYTHON={PYTHON}"]
        make += [f"MANDIR={mandir}"] if mandir else []
        subprocess.run(make + ["install"], cwd=ROOT, check=True, capture_output=True)
        assert (root / expected).read_text() == bash_completion()
        subprocess.run(make + ["uninstall"], cwd=ROOT, check=True, capture_output=True)
        assert not (root / expected).exists()


def test_emulator_completes_ctl_and_its_own_options(script):
    assert complete(script, "berofos", "emulator", "c") == ["ctl"]
    assert "--relay-delay" in complete(script, "berofos", "emulator", "--re")
    assert "--json" in complete(script, "berofos", "status", "--j")
