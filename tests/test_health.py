"""berofos_ocf.health: one judgement of a device, for the agent and the command line."""

from __future__ import annotations

import pytest

from berofos_ocf.bnfosconf import DeviceEntry
from berofos_ocf.client import BerofosClient, DeviceStatus
from berofos_ocf.configtxt import Settings, parse_config_txt
from berofos_ocf.deadline import Deadline
from berofos_ocf.emulator import Emulator
from berofos_ocf.errors import CredentialsRejected, DeviceError, DeviceUnreachable, ProtocolError
from berofos_ocf.health import (
    DeviceHealth,
    FixCommands,
    Problem,
    ProblemKind,
    WatchdogRisk,
    assess,
    read_health,
    relay_owner,
    relay_position,
)
from berofos_ocf.keys import RELAY_A_B, RELAY_A_D

from .conftest import FIXTURES, entries_for

FOS1 = DeviceEntry("fos1", mac="00:19:32:00:12:1D", host="10.34.1.50")
FOS2 = DeviceEntry("fos2", mac="00:19:32:00:12:1E", host="10.34.1.51", port=8080)
GOOD = {"scenario": 0, "mode": RELAY_A_B, "modedef": RELAY_A_B, "wdog": False, "wdogdef": False,
        "wdogstate": 0, "wdogitime": 60, "wdogrtime": 0}


def read(device: DeviceEntry = FOS1, **values) -> DeviceStatus:
    """A complete answer of ``device`` (every line), with ``values`` changed."""
    settings = parse_config_txt((FIXTURES / "config-1.53.txt").read_bytes())
    changed = Settings.from_values({**GOOD, **values})
    settings.raw.update(changed.raw)
    return DeviceStatus(device, settings)


def test_a_device_as_the_cluster_wants_it_has_no_problem():
    health = DeviceHealth.of(read())
    assert (health.relay_mode, health.power_on_mode, health.scenario) == (RELAY_A_B,) * 2 + (0,)
    assert health.watchdog is WatchdogRisk.NONE and health.problems == []
    assert health.usable and health.unusable_reason is None and not health.problems


@pytest.mark.parametrize("values, risk, kind, fix", [
    ({"wdogstate": 2, "mode": RELAY_A_D}, WatchdogRisk.FIRED, ProblemKind.WATCHDOG_FIRED,
     "berofos -f fos1 set wdog=0 wdogdef=0"),
    ({"wdog": True, "wdogstate": 1, "wdogrtime": 42}, WatchdogRisk.ENABLED,
     ProblemKind.WATCHDOG_ENABLED, "berofos -f fos1 set wdog=0 wdogdef=0"),
    ({"wdogdef": True}, WatchdogRisk.NONE, ProblemKind.WATCHDOG_AT_POWER_ON,
     "berofos -f fos1 set wdogdef=0"),
    ({"scenario": 1}, WatchdogRisk.NONE, ProblemKind.BYPASS_SCENARIO,
     "berofos -f fos1 set scenario=0"),
])
def test_settings_against_the_cluster_are_problems_with_their_fix(values, risk, kind, fix):
    health = DeviceHealth.of(read(**values))
    assert health.watchdog is risk
    assert [(p.kind, p.fix) for p in health.problems] == [(kind, fix)]
    assert health.usable  # readable and switchable all the same


def test_the_watchdog_risk_words_are_the_agents():
    assert WatchdogRisk.FIRED.words == "hardware watchdog fired (relays dropped to A--D)"
    assert WatchdogRisk.ENABLED.words == "hardware watchdog enabled, relays will fall to A--D"
    assert WatchdogRisk.NONE.words is None


def test_a_fired_watchdog_as_the_firmware_prints_it():
    status = read()
    status.settings.raw.update({"6_wen": "2", "6_wstate": "2", "4_mode": "0"})
    health = DeviceHealth.of(status)
    assert health.watchdog is WatchdogRisk.FIRED and health.relay_mode == RELAY_A_D
    assert health.kinds() == [ProblemKind.WATCHDOG_FIRED]  # 6_wen=2 is understood


@pytest.mark.parametrize("error, kind, usable_words", [
    (DeviceUnreachable("fos1 (10.34.1.50)", "connection refused"), ProblemKind.UNREACHABLE,
     "unreachable: connection refused"),
    (CredentialsRejected("fos1 (10.34.1.50)"), ProblemKind.LOGIN_REJECTED,
     "login rejected: credentials rejected"),
    (ProtocolError("fos1 (10.34.1.50)", "answered something that is not HTTP"),
     ProblemKind.BAD_ANSWER, "answer not usable: answered something that is not HTTP"),
    (DeviceError("fos1 (10.34.1.50)", "HTTP 503", transient=True), ProblemKind.BAD_ANSWER,
     "answer not usable: HTTP 503"),
])
def test_a_failed_read_is_one_problem_that_blocks_control(error, kind, usable_words):
    health = DeviceHealth.of(DeviceStatus(FOS1, error=error))
    assert health.kinds() == [kind] and kind.blocks_control
    assert health.problems[0].words.startswith(usable_words)
    assert not health.usable and health.unusable_reason == str(error)
    assert health.relay_mode is None and health.watchdog is WatchdogRisk.UNKNOWN


def test_fixes_name_the_devices_as_they_were_given():
    unreachable = DeviceStatus(FOS2, error=DeviceUnreachable("fos2", "timed out"))
    rejected = DeviceStatus(FOS2, error=CredentialsRejected("fos2"))
    by_file = FixCommands("/etc/other bnfos.conf")
    assert DeviceHealth.of(unreachable, by_file).problems[0].fix == \
        "berofos scan --write '/etc/other bnfos.conf'"
    assert DeviceHealth.of(rejected, by_file).problems[0].fix == \
        "berofos -c '/etc/other bnfos.conf' -f fos2 password --update-config"
    by_address = FixCommands(None)
    assert DeviceHealth.of(rejected, by_address).problems[0].fix == \
        "env BEROFOS_LOGIN=admin:PASSWORD berofos --host 10.34.1.51:8080 status"
    assert DeviceHealth.of(read(FOS2, scenario=1), by_address).problems[0].fix == \
        "berofos --host 10.34.1.51:8080 set scenario=0"


def test_an_answer_without_a_relay_mode_is_not_usable():
    status = read()
    del status.settings.raw["4_mode"]
    del status.settings.raw["1_rm"]
    health = DeviceHealth.of(status)
    assert health.kinds() == [ProblemKind.BAD_ANSWER] and not health.usable
    assert health.unusable_reason == ("fos1 (10.34.1.50): answer not usable: config.txt has no "
                                      "4_mode line (mode); no 1_rm line (cut short?)")


def test_a_line_nothing_relies_on_may_be_missing():
    """What real firmware prints is not fully known: a firmware without, say, 0_wretv
    must not show degraded for ever."""
    status = read()
    del status.settings.raw["0_wretv"]
    del status.settings.raw["2_mhost"]
    assert DeviceHealth.of(status).kinds() == []


def test_an_odd_but_usable_answer_is_a_problem_that_does_not_block():
    status = read()
    status.settings.raw["2_wintv"] = "6\x1b0"
    status.settings.magic = "0.2"
    health = DeviceHealth.of(status)
    assert health.kinds() == [ProblemKind.ODD_ANSWER] and health.usable
    assert health.problems[0].words == ("answer not as expected: wdogitime '6\\x1b0' not "
                                        "understood; format 0.2, expected 0.1")


def test_relays_split_go_where_the_power_on_modes_point():
    fired = read(FOS1, mode=RELAY_A_D, wdogstate=2)
    healths = assess([fired, read(FOS2)], FixCommands(names=["fos1", "fos2"]))
    assert healths[0].kinds() == [ProblemKind.WATCHDOG_FIRED, ProblemKind.RELAYS_SPLIT]
    assert healths[1].kinds() == []
    split = healths[0].problems[1]
    assert split.fix == "berofos -f fos1,fos2 switch master"
    assert split.words == ("relays at A--D, not at A--B like the others: the lines are split "
                           "between the nodes")


def test_relays_split_without_a_power_on_majority_follow_most_relays():
    fos3 = read(DeviceEntry("fos3", host="10.0.0.3"), mode=RELAY_A_D)
    del fos3.settings.raw["1_rm"]  # its power-on mode unknown: one each way
    healths = assess([read(FOS1, mode=RELAY_A_D, modedef=RELAY_A_D), read(FOS2), fos3])
    assert [h.kinds() for h in healths] == [[], [ProblemKind.RELAYS_SPLIT],
                                            [ProblemKind.ODD_ANSWER]]
    assert healths[1].problems[0].fix == "berofos switch slave"


def test_an_unreadable_device_does_not_split_the_group():
    healths = assess([read(FOS1), DeviceStatus(FOS2, error=DeviceUnreachable("fos2", "gone"))])
    assert [h.kinds() for h in healths] == [[], [ProblemKind.UNREACHABLE]]


def test_relay_owner_with_and_without_node_names():
    assert relay_owner(RELAY_A_B, "wazo-1", "wazo-2") == "wazo-1"
    assert relay_owner(RELAY_A_D, "wazo-1", "wazo-2") == "wazo-2"
    assert relay_owner(RELAY_A_B) == "port B"
    assert relay_position(RELAY_A_D, "wazo-1", "wazo-2") == "A--D (wazo-2)"


def test_problems_compare_by_value():
    assert Problem(ProblemKind.BYPASS_SCENARIO, "x", "y") == \
        Problem(ProblemKind.BYPASS_SCENARIO, "x", "y")
    assert all(kind.meaning for kind in ProblemKind)


def test_read_health_reads_every_device_of_an_emulator():
    with Emulator([("127.0.0.1", 0), ("127.0.0.1", 0)], udp_port=None) as emulator:
        emulator.devices[1].expire_watchdog()
        clients = [BerofosClient(entry) for entry in entries_for(emulator)]
        healths = read_health(clients, Deadline(10))
    assert [h.relay_mode for h in healths] == [RELAY_A_B, RELAY_A_D]
    assert [h.watchdog for h in healths] == [WatchdogRisk.NONE, WatchdogRisk.FIRED]
    assert healths[1].kinds() == [ProblemKind.WATCHDOG_FIRED, ProblemKind.RELAYS_SPLIT]
