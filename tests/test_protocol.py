"""The pure protocol layer: key table, config.txt, query building.

Examples for every rule, and hypothesis properties: rendering then parsing
gives the values back, and arbitrary input gives a value or our own error.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from berofos_ocf.configtxt import (
    Settings,
    build_write_queries,
    parse_config_txt,
    parse_query,
    render_config_txt,
)
from berofos_ocf.bnfosconf import parse_device_names
from berofos_ocf.errors import BerofosError, FormatError, InvalidValue
from berofos_ocf.gbl4 import check_firmware_image
from berofos_ocf.keys import (
    KEYS,
    KEYS_BY_NAME,
    RELAY_A_B,
    RELAY_A_D,
    Kind,
    lookup,
    parse_ipv4,
    parse_relay_mode,
)

from .conftest import FIXTURES


# -- key table -------------------------------------------------------------------------------

def test_table_matches_protocol_reference():
    expected = {  # name: (cmd, config.txt key, query parameter)
        "scenario": (1, "1_sz", "sz"), "mode": (4, "4_mode", "mode"),
        "modedef": (1, "1_rm", "rm"), "power1": (5, "5_p0", "s"),
        "power2": (5, "5_p1", "s"), "power1def": (1, "1_p0", "p0"),
        "power2def": (1, "1_p1", "p1"), "hostname": (3, "3_dn", "dn"),
        "address": (3, "3_ip", "ip"), "netmask": (3, "3_nm", "nm"),
        "gateway": (3, "3_gw", "gw"), "dns": (3, "3_dns", "dns"),
        "dhcp": (3, "3_dhcp", "dhcp"), "port": (3, "3_port", "port"),
        "pwd": (3, "3_pwd", "pwd"), "apwd": (3, None, "apwd"),
        "smtpserv": (2, "2_mhost", "mhost"), "smtpfrom": (2, "2_mfrom", "mfrom"),
        "smtpto": (2, "2_mto", "mto"), "syslog": (3, "3_log", "syslog"),
        "slgip": (3, "3_loghost", "slgip"), "slgpt": (3, "3_logport", "slgpt"),
        "wdog": (6, "6_wen", "wen"), "wdogdef": (2, "2_wen", "wen"),
        "wdogstate": (6, "6_wstate", None), "wdogitime": (2, "2_wintv", "wintv"),
        "wdogaudio": (2, "2_as", "as"), "wdogmail": (2, "2_men", "men"),
        "wdogrtime": (0, "0_wretv", None),
    }
    assert {k.name: (k.cmd, k.wire, k.param) for k in KEYS} == expected


def test_table_order_is_the_firmware_order():
    wires = [k.wire for k in KEYS if k.wire]
    assert wires == ["1_sz", "4_mode", "1_rm", "5_p0", "1_p0", "5_p1", "1_p1", "3_dn", "3_ip",
                     "3_nm", "3_gw", "3_dns", "3_dhcp", "3_port", "3_pwd", "2_mhost", "2_mfrom",
                     "2_mto", "3_log", "3_loghost", "3_logport", "6_wen", "2_wen", "6_wstate",
                     "2_wintv", "2_as", "2_men", "0_wretv"]


@pytest.mark.parametrize("text, value", [("1", True), ("yes", True), ("Y", True),
                                         ("true", True), ("on", True), ("0", False),
                                         ("no", False), ("FALSE", False), ("off", False)])
def test_boolean_words_like_bnfos(text, value):
    assert lookup("wdog").parse_user(text) is value


@pytest.mark.parametrize("text, mode", [("1", 1), ("0", 0), ("A--B", 1), ("a--d", 0),
                                        ("yes", 1)])
def test_switch_values_accept_numbers_and_names(text, mode):
    assert lookup("mode").parse_user(text) == mode


@pytest.mark.parametrize("name, text, message", [
    ("wdog", "maybe", "is not yes/no"),
    ("wdogitime", "0", "outside 1-65535"),
    ("wdogitime", "65536", "outside 1-65535"),
    ("port", "eighty", "not a number"),
    ("address", "10.1", "not a dotted-quad"),
    ("address", "010.1.1.1", "not a dotted-quad"),
    ("apwd", "x" * 16, "limited to 15"),
    ("hostname", "", "must not be empty"),
    ("hostname", "a\nb", "control characters"),
    ("wdogstate", "1", "read-only"),
    ("wdogrtime", "1", "read-only"),
])
def test_invalid_user_values_are_refused(name, text, message):
    with pytest.raises(InvalidValue, match=message):
        lookup(name).parse_user(text)


def test_unknown_key_names_the_known_ones():
    with pytest.raises(InvalidValue, match="unknown key 'wdogtime'.*wdogitime"):
        lookup("wdogtime")


def test_lookup_is_case_insensitive_like_bnfos():
    assert lookup(" WDogITime ") is KEYS_BY_NAME["wdogitime"]


@pytest.mark.parametrize("text, mode", [("master", RELAY_A_B), ("slave", RELAY_A_D),
                                        ("b", RELAY_A_B), ("D", RELAY_A_D),
                                        ("A--B", RELAY_A_B), ("a--d", RELAY_A_D)])
def test_relay_positions(text, mode):
    assert parse_relay_mode(text) == mode


def test_relay_position_garbage():
    with pytest.raises(InvalidValue):
        parse_relay_mode("c")


def test_password_is_never_formatted_for_people():
    assert lookup("apwd").format_user("hunter2") == "********"


# -- config.txt ------------------------------------------------------------------------------

def test_parse_firmware_153_answer():
    settings = parse_config_txt((FIXTURES / "config-1.53.txt").read_bytes())
    values = settings.values()
    assert settings.magic == "0.1"
    assert settings.relay_mode == RELAY_A_B
    assert values["modedef"] == RELAY_A_B
    assert values["pwd"] is True and values["wdog"] is False
    assert values["address"] == "10.34.1.50" and values["port"] == 80
    assert values["wdogitime"] == 60
    assert len(values) == len([k for k in KEYS if k.readable])
    assert settings.unknown == {} and settings.invalid() == {}


def test_parse_crlf_checked_and_unknown_lines():
    settings = parse_config_txt((FIXTURES / "config-1.5.7-crlf-checked.txt").read_bytes())
    values = settings.values()
    assert settings.relay_mode == RELAY_A_D
    assert values["modedef"] == RELAY_A_B  # "checked"
    assert values["pwd"] is True and values["dhcp"] is False  # empty is false
    assert values["wdog"] is True and values["wdogstate"] == 1 and values["wdogrtime"] == 42
    assert values["smtpto"] == "pbx-admin@example.org"
    assert set(settings.unknown) == {"1_szd00", "1_szd01", "2_mail"}


def test_missing_magic_is_an_error():
    with pytest.raises(FormatError, match="magic"):
        parse_config_txt(b"1_sz=0\n4_mode=1\n")


def test_lines_before_the_magic_are_ignored():
    settings = parse_config_txt("4_mode=0\njunk\nbnfos_confmap_magic=0.1\n4_mode=1\n")
    assert settings.relay_mode == RELAY_A_B


def test_other_magic_version_is_kept_for_a_warning():
    assert parse_config_txt("bnfos_confmap_magic=0.2\n4_mode=1\n").magic == "0.2"


def test_truncated_last_line_is_ignored_not_read_as_zero():
    settings = parse_config_txt("bnfos_confmap_magic=0.1\n1_sz=0\n4_mode=")
    assert "mode" not in settings
    with pytest.raises(FormatError, match="no 4_mode line"):
        settings.relay_mode


def test_garbled_value_fails_only_when_asked_for():
    settings = parse_config_txt("bnfos_confmap_magic=0.1\n4_mode=1\n3_gw=not-an-ip\n")
    assert settings.relay_mode == RELAY_A_B
    assert settings.invalid() == {"gateway": "not-an-ip"}
    with pytest.raises(FormatError, match="3_gw"):
        settings["gateway"]


def test_garbled_relay_mode_is_an_error_not_a_guess():
    settings = parse_config_txt("bnfos_confmap_magic=0.1\n4_mode=2\n")
    with pytest.raises(FormatError, match="4_mode"):
        settings.relay_mode


def test_render_puts_magic_first_and_terminates_every_line():
    text = render_config_txt(Settings.from_values({"mode": 1, "wdog": False}))
    assert text == "bnfos_confmap_magic=0.1\n4_mode=1\n6_wen=0\n"


def test_render_checked_style():
    text = render_config_txt(Settings.from_values({"pwd": True, "dhcp": False},
                                                  checked_style=True))
    assert "3_pwd=checked\n" in text and "3_dhcp=\n" in text


def _value_strategy(key):
    if key.kind == Kind.BOOL:
        return st.booleans()
    if key.kind == Kind.SWITCH:
        return st.sampled_from([0, 1])
    if key.kind == Kind.STATE:
        return st.sampled_from([0, 1, 2])
    if key.kind == Kind.INT:
        return st.integers(0, 65535)
    if key.kind == Kind.IPV4:
        return st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
    return st.text(st.characters(min_codepoint=32, max_codepoint=0x2fff,
                                 blacklist_characters="\x7f"), max_size=30).map(str.strip)


_readable = [k for k in KEYS if k.readable]
settings_values = st.fixed_dictionaries(
    {}, optional={k.name: _value_strategy(k) for k in _readable})


@given(settings_values, st.booleans(), st.sampled_from(["\n", "\r\n"]))
def test_render_then_parse_gives_the_values_back(values, checked_style, line_end):
    text = render_config_txt(Settings.from_values(values, checked_style=checked_style),
                             line_end=line_end)
    assert parse_config_txt(text.encode()).values() == values


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_arbitrary_bytes_give_settings_or_our_error(data):
    try:
        settings = parse_config_txt(data)
    except FormatError:
        return
    settings.values()
    settings.invalid()
    try:
        settings.relay_mode
    except FormatError:
        pass


@given(st.lists(st.sampled_from(["bnfos_confmap_magic=0.1", "4_mode=1", "4_mode=", "1_rm=x",
                                 "3_ip=1.2.3", "=", "", "junk", "2_wintv=12a", "0_wretv=-1",
                                 "\r", "6_wstate=checked"]), max_size=12))
def test_near_miss_lines_give_settings_or_our_error(lines):
    try:
        settings = parse_config_txt("\n".join(lines) + "\n")
    except FormatError:
        return
    assert isinstance(settings.values(), dict)


# -- query builder ---------------------------------------------------------------------------

def test_single_key_write_carries_the_whole_group():
    current = parse_config_txt((FIXTURES / "config-1.53.txt").read_bytes())
    assert build_write_queries({"modedef": 0}, current) == ["/?cmd=1&sz=0&rm=0&p0=0&p1=0"]


def test_write_without_current_sends_only_the_change():
    assert build_write_queries({"mode": 1}) == ["/?cmd=4&mode=1"]


def test_power_ports_get_a_request_each():
    assert build_write_queries({"power1": True, "power2": False}) == [
        "/?cmd=5&p=0&s=1", "/?cmd=5&p=1&s=0"]


def test_groups_and_percent_encoding():
    paths = build_write_queries({"hostname": "fos 1/ä", "wdogitime": 30})
    assert paths == ["/?cmd=3&dn=fos%201%2F%C3%A4", "/?cmd=2&wintv=30"]


def test_password_is_percent_encoded():
    assert build_write_queries({"apwd": "a&b=c"}) == ["/?cmd=3&apwd=a%26b%3Dc"]


def test_read_only_keys_cannot_be_written():
    with pytest.raises(FormatError, match="read-only"):
        build_write_queries({"wdogstate": 1})


def test_watchdog_and_its_default_are_different_groups():
    assert build_write_queries({"wdog": False, "wdogdef": False}) == [
        "/?cmd=6&wen=0", "/?cmd=2&wen=0"]


def test_garbled_current_value_is_not_echoed_back():
    current = parse_config_txt("bnfos_confmap_magic=0.1\n1_sz=0\n1_rm=what\n1_p0=0\n1_p1=0\n")
    assert build_write_queries({"scenario": 1}, current) == ["/?cmd=1&sz=1&p0=0&p1=0"]


def _writable_value(key):
    if key.kind == Kind.INT:
        return st.integers(key.minimum, key.maximum)
    if key.kind in (Kind.TEXT, Kind.SECRET):
        return st.text(st.characters(min_codepoint=32, max_codepoint=0x2fff,
                                     blacklist_characters="\x7f"), min_size=1, max_size=15)
    return _value_strategy(key)


writable_values = st.fixed_dictionaries(
    {}, optional={k.name: _writable_value(k) for k in KEYS if k.writable})


@given(writable_values)
def test_query_round_trip(values):
    """What the builder encodes, the device's decoder reads back, key by key."""
    seen = {}
    for path in build_write_queries(values):
        cmd, params = parse_query(path.split("?", 1)[1])
        if cmd == 5:  # p=PORT&s=STATE
            seen["power1" if params[0][1] == "0" else "power2"] = params[1][1]
            continue
        for param, text in params:
            (key,) = [k for k in KEYS if k.cmd == cmd and k.param == param and k.groupable]
            seen[key.name] = text
    assert seen == {name: KEYS_BY_NAME[name].format_query(value)
                    for name, value in values.items()}


@given(st.text(max_size=60))
def test_arbitrary_query_gives_a_request_or_our_error(text):
    try:
        cmd, params = parse_query(text)
    except FormatError:
        return
    assert isinstance(cmd, int) and all(isinstance(p, tuple) for p in params)


def test_query_parser_finds_cmd_anywhere():
    assert parse_query("mode=1&cmd=4") == (4, [("mode", "1")])


@pytest.mark.parametrize("query", ["mode=1", "cmd=x&mode=1", "cmd=1&cmd=2"])
def test_query_without_exactly_one_numeric_cmd(query):
    with pytest.raises(FormatError):
        parse_query(query)


# -- IPv4 ------------------------------------------------------------------------------------

@given(st.text(max_size=20))
def test_ipv4_parser_gives_quad_or_our_error(text):
    try:
        result = parse_ipv4(text)
    except BerofosError:
        return
    assert len(result.split(".")) == 4 and all(0 <= int(p) <= 255 for p in result.split("."))


long_digits = st.integers(4301, 4400).map(lambda n: "9" * n)


@given(long_digits, st.sampled_from(["2_wintv", "0_wretv", "6_wstate", "3_port"]))
def test_huge_numbers_on_the_wire_are_our_error(digits, wire):
    settings = parse_config_txt(f"bnfos_confmap_magic=0.1\n{wire}={digits}\n")
    assert settings.invalid()
    with pytest.raises(FormatError):
        settings[[k.name for k in KEYS if k.wire == wire][0]]


@given(long_digits)
def test_huge_numbers_typed_by_people_are_our_error(digits):
    with pytest.raises(InvalidValue):
        lookup("wdogitime").parse_user(digits)


@given(long_digits)
def test_huge_cmd_is_our_error(digits):
    with pytest.raises(FormatError):
        parse_query(f"cmd={digits}&mode=1")


# -- issue 9 --------------------------------------------------------------------------------


def test_wdog_reads_2_after_the_watchdog_fired_as_not_running():
    settings = parse_config_txt(b"bnfos_confmap_magic=0.1\n4_mode=0\n6_wen=2\n6_wstate=2\n")
    assert settings["wdog"] is False and settings["wdogstate"] == 2
    assert settings.invalid() == {}


@pytest.mark.parametrize("text, mode", [("master", RELAY_A_B), ("slave", RELAY_A_D),
                                        ("B", RELAY_A_B), ("d", RELAY_A_D)])
def test_mode_and_modedef_take_the_words_of_switch(text, mode):
    assert lookup("mode").parse_user(text) == mode == lookup("modedef").parse_user(text)


def test_mode_names_its_words_when_refusing():
    with pytest.raises(InvalidValue, match="0/1 or A--D/A--B/master/slave"):
        lookup("mode").parse_user("c")


def test_missing_names_the_lines_an_answer_lacks():
    body = (FIXTURES / "config-1.53.txt").read_bytes()
    assert parse_config_txt(body).missing() == []
    cut = parse_config_txt(body[:body.index(b"6_wen=")])
    assert cut.missing() == ["wdog", "wdogdef", "wdogstate", "wdogitime", "wdogaudio",
                             "wdogmail", "wdogrtime"]


@pytest.mark.parametrize("text, names", [("fos1,fos2", ["fos1", "fos2"]),
                                         ("fos1 fos2", ["fos1", "fos2"]),
                                         (" fos1,\tfos2 ,, ", ["fos1", "fos2"]), ("", [])])
def test_one_parser_for_device_lists(text, names):
    assert parse_device_names(text) == names


@pytest.mark.parametrize("image, message", [
    (b"", "0 bytes"), (b"x" * (1024 * 1024 + 1), "1048577 bytes"),
    (b"\x1f\x8b" + bytes(range(256)) * 8, "gzip"), (b"\x7fELF" + bytes(range(256)) * 8, "ELF"),
    (b":100000000C9434000C943E000C943E000C943E00A6\n" * 60, "Intel HEX"),
    ("Firmware für berofos, siehe Anleitung.\n".encode() * 60, "a text file"),
    (b"\xff" * 4096, "blank"),
])
def test_firmware_images_are_checked(image, message):
    with pytest.raises(InvalidValue, match=message):
        check_firmware_image(image)


def test_a_binary_image_passes():
    check_firmware_image(bytes((i * 7 + 3) % 256 for i in range(4096)))
