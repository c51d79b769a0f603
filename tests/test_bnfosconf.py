"""``bnfos.conf``: what ``bnfos -f`` reads, errors with file and line, the writer."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berofos_ocf.bnfosconf import (
    MAX_FILE_SIZE,
    DeviceEntry,
    load_bnfos_conf,
    merge_devices,
    parse_bnfos_conf,
    render_bnfos_conf,
    set_login,
    update_logins,
    write_bnfos_conf,
)
from berofos_ocf.errors import ConfigFileError

from .conftest import PYTHON, ROOT

WAZO_EXAMPLE = """\
[fos1]
mac = 00:19:32:00:12:1D
host = 10.100.0.201
login = admin:foobar

[fos2]
mac = 00:11:22:33:44:55
host = 10.100.0.202
login = admin:barfoo
"""


def test_wazo_example():
    conf = parse_bnfos_conf(WAZO_EXAMPLE, "/etc/bnfos.conf")
    assert [d.name for d in conf.devices] == ["fos1", "fos2"]
    fos1 = conf.devices[0]
    assert (fos1.mac, fos1.host, fos1.port, fos1.user, fos1.password) == (
        "00:19:32:00:12:1D", "10.100.0.201", 80, "admin", "foobar")
    assert fos1.label == "fos1 (10.100.0.201)"
    assert conf.holds_password


def test_what_bnfos_scan_writes_is_read_back():
    text = "\n[fos1]\nmac = 00:19:32:00:12:1D\nhost = 10.34.1.50\n#login = <user>:<password>\n"
    (device,) = parse_bnfos_conf(text).devices
    assert device.host == "10.34.1.50" and not device.has_login


def test_comments_tabs_and_bnfos_separators():
    text = ("# a comment\n; another\n\tindented lines are skipped by bnfos\n[FOS1]\n"
            "mac=00-19-32-00-12-1d\nhost\t= 10.0.0.5\nlogin == admin:a:b:c\n")
    (device,) = parse_bnfos_conf(text).devices
    assert device.mac == "00:19:32:00:12:1D" and device.host == "10.0.0.5"
    assert device.password == "a:b:c"


def test_section_names_are_case_insensitive():
    conf = parse_bnfos_conf(WAZO_EXAMPLE)
    assert conf.select(["FOS2"])[0].name == "fos2"


def test_host_with_port_extension():
    (device,) = parse_bnfos_conf("[fos1]\nmac = 00:19:32:00:12:1D\nhost = 127.0.0.1:8081\n").devices
    assert (device.host, device.port, device.address) == ("127.0.0.1", 8081, "127.0.0.1:8081")


def test_crlf_file_is_read():
    assert parse_bnfos_conf(WAZO_EXAMPLE.replace("\n", "\r\n")).devices[1].password == "barfoo"


@pytest.mark.parametrize("text, line, message", [
    ("[fos1]\nport = 80\n", 2, "expected \\[name\\], mac, host or login"),
    ("[fos1]\n host = 10.0.0.1\n", 2, "starts with a blank"),
    ("[fos1]\n\x0blogin=admin:pw\n", 2, "starts with a blank"),
    ("[fos1]\nmacaddr = 00:19:32:00:12:1D\n", 2, "expected \\[name\\], mac, host or login$"),
    ("[fos1]\nlogin = admin:pw\u20ac\n", 2, "printable ASCII"),
    ("[fos1\n", 1, "bad section header"),
    ("[]\n", 1, "bad section header"),
    ("host = 10.0.0.1\n", 1, "outside a \\[device\\] section"),
    ("[fos1]\nmac = 00:19:32\n", 2, "17 characters"),
    ("[fos1]\nmac = 00:19:32:00:12:XY\n", 2, "six pairs of hex digits"),
    ("[fos1]\nhost = berofos.example.org\n", 2, "dotted-quad"),
    ("[fos1]\nhost = 10.0.0.1:0\n", 2, "with :PORT \\(1 to 65535\\)"),
    ("[fos1]\nlogin = :secret\n", 2, "USER:PASSWORD"),
    ("[fos1]\n[FOS1]\n", 2, "defined twice"),
])
def test_errors_name_file_and_line(text, line, message):
    with pytest.raises(ConfigFileError, match=message) as caught:
        parse_bnfos_conf(text, "/etc/bnfos.conf")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"/etc/bnfos.conf:{line}: ")


def test_select_unknown_device():
    with pytest.raises(ConfigFileError, match="no device \\[fos3\\]") as caught:
        parse_bnfos_conf(WAZO_EXAMPLE).select(["fos3"])
    assert caught.value.kind == "unknown-device"


def test_select_device_without_host_names_its_section_line():
    conf = parse_bnfos_conf("[fos1]\nmac = 00:19:32:00:12:1D\n;host = 0.0.0.0\n", "f.conf")
    with pytest.raises(ConfigFileError, match="f.conf:1: device \\[fos1\\] has no host"):
        conf.select()


def test_empty_file_has_no_device():
    with pytest.raises(ConfigFileError, match="no device section"):
        parse_bnfos_conf("# nothing\n").select()


def test_load_missing_and_unreadable(tmp_path):
    with pytest.raises(ConfigFileError) as caught:
        load_bnfos_conf(str(tmp_path / "absent.conf"))
    assert caught.value.kind == "missing"
    with pytest.raises(ConfigFileError) as caught:
        load_bnfos_conf(str(tmp_path))
    assert caught.value.kind == "missing"


def test_load_unreadable(tmp_path):
    path = tmp_path / "b.conf"
    path.write_text(WAZO_EXAMPLE)
    path.chmod(0)
    tmp_path.chmod(0o755)
    if os.geteuid() != 0:
        with pytest.raises(ConfigFileError) as caught:
            load_bnfos_conf(str(path))
        assert caught.value.kind == "permission"
        return
    # root reads every file: ask as nobody, as a mis-installed agent would
    script = ("import sys; sys.path.insert(0, sys.argv[2]); "
              "from berofos_ocf.bnfosconf import load_bnfos_conf; "
              "from berofos_ocf.errors import ConfigFileError\n"
              "try: load_bnfos_conf(sys.argv[1])\n"
              "except ConfigFileError as err: print(err.kind, err)")
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             PYTHON, "-c", script, str(path), str(ROOT)],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith(f"permission {path}: permission denied")


def test_world_readable_file_is_noticed(tmp_path):
    path = tmp_path / "b.conf"
    path.write_text(WAZO_EXAMPLE)
    path.chmod(0o644)
    assert load_bnfos_conf(str(path)).world_readable
    path.chmod(0o600)
    assert not load_bnfos_conf(str(path)).world_readable


def test_password_is_not_in_repr():
    device = parse_bnfos_conf(WAZO_EXAMPLE).devices[0]
    assert "foobar" not in repr(device) and "foobar" not in device.label


def test_writer_format_matches_bnfos_scan():
    devices = [DeviceEntry("fos1", mac="00:19:32:00:12:1D", host="10.34.1.50"),
               DeviceEntry("fos2", mac="00:19:32:00:12:1E", host="0.0.0.0"),
               DeviceEntry("fos3", mac="00:19:32:00:12:1F", host="127.0.0.1", port=8081,
                           user="admin", password="pw")]
    assert render_bnfos_conf(devices) == (
        "\n[fos1]\nmac = 00:19:32:00:12:1D\nhost = 10.34.1.50\n#login = <user>:<password>\n"
        "\n[fos2]\nmac = 00:19:32:00:12:1E\n;host = 0.0.0.0\n#login = <user>:<password>\n"
        "\n[fos3]\nmac = 00:19:32:00:12:1F\nhost = 127.0.0.1:8081\nlogin = admin:pw\n")


def test_set_login_replaces_the_reminder_and_keeps_the_rest():
    text = "# berofos devices\n\n[fos1]\nmac = 00:19:32:00:12:1D\nhost = 10.0.0.5\n" \
           "#login = <user>:<password>\n\n[fos2]\nhost = 10.0.0.6\n"
    result = set_login(text, "fos2", "admin", "new")
    assert result.startswith("# berofos devices\n")
    conf = parse_bnfos_conf(result)
    assert [(d.user, d.password) for d in conf.devices] == [(None, None), ("admin", "new")]
    result = set_login(result, "FOS1", "admin", "x")
    assert "#login" not in result and parse_bnfos_conf(result).devices[0].password == "x"


def test_merge_keeps_names_and_logins_of_known_macs():
    existing = parse_bnfos_conf(WAZO_EXAMPLE).devices
    found = [DeviceEntry("", mac="00:11:22:33:44:55", host="10.100.0.99"),
             DeviceEntry("", mac="00:19:32:00:00:09", host="10.100.0.50")]
    merged = merge_devices(existing, found)
    assert [(d.name, d.host, d.password) for d in merged] == [
        ("fos1", "10.100.0.201", "foobar"), ("fos2", "10.100.0.99", "barfoo"),
        ("fos3", "10.100.0.50", None)]


names = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)
macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02X}" for x in b))
quads = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
logins = st.one_of(st.none(), st.tuples(names, st.text(
    st.characters(min_codepoint=33, max_codepoint=126), max_size=15)))


@given(st.lists(st.tuples(names, macs, quads, st.integers(1, 65535), logins), max_size=5,
                unique_by=lambda t: t[0].lower()))
def test_render_then_parse_round_trip(rows):
    devices = [DeviceEntry(name, mac=mac, host=host, port=port,
                           user=login[0] if login else None,
                           password=login[1] if login else None)
               for name, mac, host, port, login in rows if host != "0.0.0.0"]
    assert parse_bnfos_conf(render_bnfos_conf(devices)).devices == devices


@given(st.text(max_size=300))
def test_arbitrary_text_gives_devices_or_our_error(text):
    try:
        conf = parse_bnfos_conf(text, "x.conf")
    except ConfigFileError as err:
        assert str(err).startswith("x.conf:")
        return
    assert all(isinstance(d, DeviceEntry) for d in conf.devices)


@given(st.lists(st.sampled_from(["[fos1]", "[fos2]", "mac = 00:19:32:00:12:1D", "host = 1.2.3.4",
                                 "host = 1.2.3.4:80", "login = a:b", "#x", ";y", "\tz", "",
                                 "mac=", "host", "[", "m", "loginx = 1"]), max_size=10))
def test_near_miss_files_give_devices_or_our_error(lines):
    try:
        parse_bnfos_conf("\n".join(lines))
    except ConfigFileError as err:
        assert err.line is not None


@given(st.integers(4301, 4400))
def test_huge_port_is_our_error(length):
    with pytest.raises(ConfigFileError) as caught:
        parse_bnfos_conf(f"[fos1]\nhost = 10.0.0.1:{'9' * length}\n", "x.conf")
    assert caught.value.line == 2


# -- a mistyped line is never quoted (it may be a password) --------------------------------


@pytest.mark.parametrize("line", ["Wr0ngPassw0rd", "wrongpassword", "[Wr0ngPassw0rd",
                                  "mac = Wr0ngPassw0rd1234", "mac = Wr0ngPassw0rd",
                                  "host = Wr0ngPassw0rd", "host = 10.0.0.1:Wr0ngPassw0rd"])
def test_an_unparsable_line_is_not_quoted(line):
    text = f"# devices\n\n[fos1]\nhost = 10.0.0.1\n{line}\n"
    with pytest.raises(ConfigFileError) as caught:
        parse_bnfos_conf(text, "/etc/bnfos.conf")
    message = str(caught.value)
    assert message.startswith("/etc/bnfos.conf:5: ")
    secret = "wrongpassword" if "wrongpassword" in line else "wr0ngpassw0rd"
    assert not any(secret[i:i + 3] in message.lower() for i in range(len(secret) - 2)), message


def test_an_unparsable_line_says_what_was_expected():
    with pytest.raises(ConfigFileError) as caught:
        parse_bnfos_conf("# devices\n\n[fos1]\nhost = 10.0.0.1\nWr0ngPassw0rd\n",
                         "bnfos.conf")
    assert str(caught.value) == "bnfos.conf:5: syntax error: expected [name], mac, host or login"


# -- reading is bounded: regular files of at most 1 MiB, never blocking --------------------

LOAD_IN_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))
sys.path.insert(0, sys.argv[2])
from berofos_ocf.bnfosconf import load_bnfos_conf
from berofos_ocf.errors import ConfigFileError
try:
    load_bnfos_conf(sys.argv[1])
except ConfigFileError as err:
    print(err.kind, err)
"""


def load_in_child(path) -> str:
    """``kind message`` of loading ``path`` in a child bounded in time and memory."""
    result = subprocess.run([PYTHON, "-c", LOAD_IN_CHILD, str(path), str(ROOT)],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    assert load_in_child(fifo) == f"not-a-file {fifo}: not a regular file (a device, FIFO or " \
                                  "socket)"


def test_a_device_file_is_refused_without_reading_it():
    assert load_in_child("/dev/zero").startswith("not-a-file /dev/zero: not a regular file")


def test_a_file_over_one_mebibyte_is_refused(tmp_path):
    big = tmp_path / "big.conf"
    with open(big, "wb") as handle:
        handle.truncate(MAX_FILE_SIZE + 1)  # sparse: costs no disk
    assert load_in_child(big) == f"too-large {big}: larger than 1024 KiB"
    fits = tmp_path / "fits.conf"
    fits.write_text(WAZO_EXAMPLE + "#" * (MAX_FILE_SIZE - len(WAZO_EXAMPLE) - 1) + "\n")
    assert len(load_bnfos_conf(str(fits)).devices) == 2


def test_latin1_bytes_and_a_byte_order_mark_are_read():
    with tempfile.NamedTemporaryFile("wb", suffix=".conf") as handle:
        handle.write(b"\xef\xbb\xbf# caf\xe9 du r\xe9seau\n" + WAZO_EXAMPLE.encode())
        handle.flush()
        assert [d.name for d in load_bnfos_conf(handle.name).devices] == ["fos1", "fos2"]


# -- editing logins keeps every other byte -------------------------------------------------


def test_update_logins_keeps_the_bom_and_latin1_bytes():
    data = b"\xef\xbb\xbf# caf\xe9\n[fos1]\nhost = 10.0.0.1\n\n[fos2]\nhost = 10.0.0.2\n"
    edited = update_logins(data, ["fos2"], "admin", "n3w", "x.conf")
    assert edited == (b"\xef\xbb\xbf# caf\xe9\n[fos1]\nhost = 10.0.0.1\n\n[fos2]\n"
                      b"host = 10.0.0.2\nlogin = admin:n3w\n")


def test_update_logins_refuses_an_unknown_section():
    with pytest.raises(ConfigFileError, match="no device \\[fos9\\]"):
        update_logins(WAZO_EXAMPLE.encode(), ["fos9"], "admin", "pw", "x.conf")


# -- writing: through links, owner, group and mode kept, synced ----------------------------


def test_write_goes_through_a_link_and_keeps_owner_group_and_mode(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("giving a file to another owner and group needs root")
    real_dir, link_dir = tmp_path / "real", tmp_path / "links"
    real_dir.mkdir()
    link_dir.mkdir()
    target = real_dir / "bnfos.conf"
    target.write_text(WAZO_EXAMPLE)
    os.chown(target, 0, 1)  # root:daemon, as an installer would leave it for the cluster
    target.chmod(0o640)
    link = link_dir / "bnfos.conf"
    link.symlink_to(target)
    write_bnfos_conf(str(link), WAZO_EXAMPLE.replace("barfoo", "n3w").encode())
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert "n3w" in target.read_text()
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 1, 0o640)
    assert sorted(os.listdir(real_dir)) == ["bnfos.conf"]  # no temporary left
    assert sorted(os.listdir(link_dir)) == ["bnfos.conf"]


@pytest.mark.parametrize("before, text, after", [
    (0o644, WAZO_EXAMPLE, 0o640),                  # a password: never readable by others
    (0o600, WAZO_EXAMPLE, 0o600),                  # never more open than before
    (0o604, "[fos1]\nhost = 10.0.0.1\n", 0o604),    # no password: the mode as it was
    (None, "[fos1]\nhost = 10.0.0.1\n", 0o600),     # a new file
])
def test_write_mode(tmp_path, before, text, after):
    path = tmp_path / "bnfos.conf"
    if before is not None:
        path.write_text("")
        path.chmod(before)
    write_bnfos_conf(str(path), text.encode())
    assert stat.S_IMODE(path.stat().st_mode) == after
    assert path.read_text() == text


def test_write_syncs_file_and_directory_around_the_rename(tmp_path, monkeypatch):
    path = tmp_path / "bnfos.conf"
    path.write_text(WAZO_EXAMPLE)
    events = []
    real_fsync, real_replace, real_mkstemp = os.fsync, os.replace, tempfile.mkstemp

    def fsync(descriptor):
        is_dir = stat.S_ISDIR(os.fstat(descriptor).st_mode)
        events.append("fsync directory" if is_dir else "fsync file")
        real_fsync(descriptor)

    def replace(source, destination):
        events.append("rename")
        real_replace(source, destination)

    def mkstemp(*args, **kwargs):
        events.append(f"mkstemp in {kwargs.get('dir')}")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    write_bnfos_conf(str(path), WAZO_EXAMPLE.encode())
    assert events == [f"mkstemp in {tmp_path}", "fsync file", "fsync directory", "rename",
                      "fsync directory"]


def test_write_refuses_text_that_does_not_parse(tmp_path):
    path = tmp_path / "bnfos.conf"
    path.write_text(WAZO_EXAMPLE)
    with pytest.raises(ConfigFileError):
        write_bnfos_conf(str(path), b"[fos1]\nnonsense\n")
    assert path.read_text() == WAZO_EXAMPLE and os.listdir(tmp_path) == ["bnfos.conf"]


# -- merging a scan into a hand-written file -----------------------------------------------


def test_merge_matches_a_section_without_mac_by_its_host():
    existing = parse_bnfos_conf("[pbxfos]\nhost = 10.0.0.5\nlogin = admin:pw\n").devices
    found = [DeviceEntry("", mac="00:19:32:00:12:1D", host="10.0.0.5")]
    merged = merge_devices(existing, found)
    assert [(d.name, d.mac, d.host, d.user, d.password) for d in merged] == [
        ("pbxfos", "00:19:32:00:12:1D", "10.0.0.5", "admin", "pw")]


def test_merge_keeps_section_order_and_never_duplicates():
    existing = parse_bnfos_conf(
        "[b]\nmac = 00:19:32:00:00:0B\nhost = 10.0.0.2\n"
        "[nomac]\nhost = 10.0.0.9:8080\n"
        "[a]\nmac = 00:19:32:00:00:0A\nhost = 10.0.0.1\nlogin = admin:x\n").devices
    found = [DeviceEntry("", mac="00:19:32:00:00:0C", host="10.0.0.3"),
             DeviceEntry("", mac="00:19:32:00:00:0A", host="10.0.0.1"),
             DeviceEntry("", mac="00:19:32:00:00:0D", host="10.0.0.9"),  # port 80: another
             DeviceEntry("", mac="00:19:32:00:00:0A", host="10.0.0.1")]
    merged = merge_devices(existing, found)
    assert [(d.name, d.address) for d in merged] == [
        ("b", "10.0.0.2"), ("nomac", "10.0.0.9:8080"), ("a", "10.0.0.1"),
        ("fos1", "10.0.0.3"), ("fos2", "10.0.0.9")]
    assert merged[2].password == "x"


def test_merge_asks_before_moving_a_known_device():
    existing = parse_bnfos_conf(WAZO_EXAMPLE).devices
    found = [DeviceEntry("", mac="00:19:32:00:12:1D", host="10.6.6.6"),
             DeviceEntry("", mac="00:11:22:33:44:55", host="10.100.0.202")]
    asked = []
    merged = merge_devices(existing, found,
                           accept_move=lambda known, seen: asked.append(
                               (known.name, seen.address)) or False)
    assert asked == [("fos1", "10.6.6.6")]  # the device that did not move is not asked about
    assert [d.address for d in merged] == ["10.100.0.201", "10.100.0.202"]
    assert existing[0].host == "10.100.0.201"  # the caller's list is not changed


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a link owned by nobody")
def test_a_link_planted_by_another_user_in_a_shared_directory_is_not_written_through(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    precious = tmp_path / "shadow"
    precious.write_text("root:secret\n")
    planted = shared / "bnfos.conf"
    planted.symlink_to(precious)
    os.lchown(planted, 65534, 65534)
    with pytest.raises(ConfigFileError, match="another user") as caught:
        write_bnfos_conf(str(planted), b"[fos1]\nhost = 10.0.0.5\n")
    assert caught.value.kind == "permission"
    assert precious.read_text() == "root:secret\n"
    own = shared / "mine.conf"
    own.symlink_to(precious)  # root's own link there is followed, as before
    write_bnfos_conf(str(own), b"[fos1]\nhost = 10.0.0.5\n")
    assert "host = 10.0.0.5" in precious.read_text()
