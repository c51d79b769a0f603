"""The alert agent ``alerts/berofos-alert``: what a Pacemaker event makes it tell, and where.

Most tests run the agent as Pacemaker does, a process with ``CRM_alert_*``
variables, with fake ``crm_mon`` (its XML from a file), ``attrd_updater``
(private attributes kept in a directory) and ``sendmail`` (the mail kept in a
directory, or hanging) first on PATH, the agent's state file written with
:mod:`berofos_ocf.runstate` as the resource agent writes it, and a file
recipient.  ``syslog=no`` keeps these runs out of the machine's log; syslog
itself is checked in-process with an injected logger.
"""

from __future__ import annotations

import os
import subprocess
import time
import xml.sax.saxutils
from pathlib import Path

import pytest

from berofos_ocf import alert
from berofos_ocf.alert import AlertEvent, ClusterTools, Delivery, Message, handle
from berofos_ocf.deadline import Deadline
from berofos_ocf.runstate import InstanceState, RoleMarker, StateFile

from .conftest import PYTHON, ROOT

SOURCE = ROOT / "alerts" / "berofos-alert"
UNREACHABLE = "fos1 (10.0.0.5): connection refused"
WATCHDOG = "fos1 (10.0.0.5): hardware watchdog fired (relays dropped to A--D)"

CRM_MON_FAKE = """#!/bin/sh
# crm_mon --output-as=xml of a cluster whose nodes are in $FAKE_CRM_MON; none: no cluster
if [ -z "$FAKE_CRM_MON" ]; then
    echo '<pacemaker-result><status code="102" message="Not connected"/></pacemaker-result>'
    exit 102
fi
cat "$FAKE_CRM_MON"
"""
ATTRD_FAKE = f"""#!{PYTHON}
# attrd_updater --query/--update of private attributes kept as files in $FAKE_ATTRD
# (one per node and name); every call is recorded in $FAKE_ATTRD/calls.
import os, sys
from xml.sax.saxutils import quoteattr
store = os.environ.get("FAKE_ATTRD")
if not store:
    print('<pacemaker-result><status code="102" message="Not connected"><errors>'
          '<error>Could not connect to attrd</error></errors></status></pacemaker-result>')
    sys.exit(102)
args = sys.argv[1:]
with open(os.path.join(store, "calls"), "a") as calls:
    calls.write(" ".join(args) + "\\n")
node, name = args[args.index("--node") + 1], args[args.index("--name") + 1]
path = os.path.join(store, node + "." + name)
update = [arg for arg in args if arg.startswith("--update=")]
if update:
    with open(path, "w") as handle:
        handle.write(update[0].split("=", 1)[1])
elif os.path.exists(path):
    value = open(path).read()
    print(f'<pacemaker-result><attribute name={{quoteattr(name)}} value={{quoteattr(value)}} '
          f'host={{quoteattr(node)}}/><status code="0" message="OK"/></pacemaker-result>')
else:
    print('<pacemaker-result><status code="78" message="Invalid configuration"><errors>'
          f'<error>Could not query value of {{name}}: attribute does not exist</error>'
          '</errors></status></pacemaker-result>')
    sys.exit(78)
"""
SENDMAIL_FAKE = """#!/bin/sh
# keeps its arguments and the mail in $FAKE_MAIL_DIR; with $FAKE_SENDMAIL_HANG, hangs
# (in a child, as an MTA would, so that only killing the group ends it)
if [ -n "$FAKE_SENDMAIL_HANG" ]; then
    sleep 60
    exit 0
fi
printf '%s\\n' "$*" > "$FAKE_MAIL_DIR/argv.$$"
cat > "$FAKE_MAIL_DIR/mail.$$"
"""


def nodes_xml(**nodes: dict[str, str]) -> str:
    """crm_mon's XML for nodes given as name=dict(online=..., standby=..., ...)."""
    elements = []
    for name, values in nodes.items():
        attributes = {"name": name, "online": "true", "standby": "false", "shutdown": "false",
                      "expected_up": "true", "unclean": "false", **values}
        elements.append("<node " + " ".join(f"{key}={xml.sax.saxutils.quoteattr(value)}"
                                            for key, value in attributes.items()) + "/>")
    return ("<pacemaker-result><summary/><nodes>" + "".join(elements)
            + '</nodes><status code="0" message="OK"/></pacemaker-result>')


class AlertLab:
    """One node as the alert agent sees it: run directory, fake tools, recipients."""

    def __init__(self, tmp_path: Path, program: Path = SOURCE) -> None:
        self.program = program
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir()
        self.bin = tmp_path / "fakebin"
        self.bin.mkdir()
        for name, text in (("crm_mon", CRM_MON_FAKE), ("attrd_updater", ATTRD_FAKE),
                           ("sendmail", SENDMAIL_FAKE)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        self.attrd = tmp_path / "attrd"
        self.attrd.mkdir()
        self.mail_dir = tmp_path / "mail"
        self.mail_dir.mkdir()
        self.crm_mon = tmp_path / "crm_mon.xml"
        self.recipient = tmp_path / "alerts.log"
        self.env = {"PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HA_RSCTMP": str(self.run_dir), "FAKE_ATTRD": str(self.attrd),
                    "FAKE_CRM_MON": str(self.crm_mon), "FAKE_MAIL_DIR": str(self.mail_dir),
                    "syslog": "no"}

    def cluster(self, **nodes: dict[str, str]) -> None:
        self.crm_mon.write_text(nodes_xml(**nodes))

    def state(self, lines: str | None = "node1", health: str | None = "ok", *,
              instance: str = "isdn", problem: str = "") -> None:
        """The state file as the resource agent leaves it (attributes it last published)."""
        attributes = {f"{instance}-{key}": value for key, value in
                      (("lines", lines), ("health", health)) if value is not None}
        StateFile(str(self.run_dir), instance).write(InstanceState(
            node="node2", attributes=attributes, problem=problem))

    def run(self, *, kind: str = "resource", task: str = "promote", rc: int = 0,
            node: str = "node2", rsc: str = "isdn", recipient: str | None = None,
            event_time: float | None = None, **extra: str | None) -> subprocess.CompletedProcess:
        """One alert as Pacemaker runs it; None in ``extra`` removes a variable."""
        event_time = time.time() if event_time is None else event_time
        env = dict(self.env, CRM_alert_version="2.1.5", CRM_alert_kind=kind,
                   CRM_alert_node=node, CRM_alert_rsc=rsc, CRM_alert_task=task,
                   CRM_alert_rc=str(rc), CRM_alert_status="0", CRM_alert_target_rc="0",
                   CRM_alert_interval="0" if task != "monitor" else "10000",
                   CRM_alert_desc="ok", CRM_alert_node_sequence="7",
                   CRM_alert_recipient=str(self.recipient) if recipient is None else recipient,
                   CRM_alert_timestamp="12:34:56.789012",
                   CRM_alert_timestamp_epoch=str(int(event_time)),
                   CRM_alert_timestamp_usec=f"{int(event_time % 1 * 1e6):06d}")
        for name, value in extra.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        result = subprocess.run([str(self.program)], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        return result

    def monitor(self, health: str, rc: int, *, problem: str = "", node: str = "node1",
                **extra) -> list[str]:
        """The resource agent's monitor publishes ``health``; the alert for its result."""
        self.state(lines="here", health=health, problem=problem)
        self.run(task="monitor", rc=rc, node=node, **extra)
        return self.told()

    def told(self, recipient: Path | None = None) -> list[str]:
        """The lines the file recipient holds, without their timestamps."""
        path = recipient or self.recipient
        if not path.exists():
            return []
        return [line.split(" ", 1)[1] for line in path.read_text().splitlines()]

    def mails(self) -> list[str]:
        return [path.read_text() for path in sorted(self.mail_dir.glob("mail.*"))]


@pytest.fixture
def lab(tmp_path) -> AlertLab:
    return AlertLab(tmp_path)


# -- the lines moved -----------------------------------------------------------------------

def test_a_promote_after_a_node_loss_tells_one_line_with_both_nodes_and_why(lab):
    lab.state(lines="node1")
    lab.cluster(node1={"online": "false"}, node2={})
    lab.run()
    assert lab.told() == ["berofos: ISDN lines moved from node1 to node2 "
                          "(promote of isdn after the loss of node1)"]
    assert lab.recipient.read_text().startswith("12:34:56.789012 berofos: ")


@pytest.mark.parametrize("node1, why", [
    ({}, "; node1 is still in the cluster: a manual move, a location preference or a recovery"),
    ({"standby": "true"}, " while node1 is in standby"),
    ({"shutdown": "true"}, " while node1 is shutting down"),
])
def test_a_planned_move_says_the_holder_is_still_there(lab, node1, why):
    lab.state(lines="node1")
    lab.cluster(node1=node1, node2={})
    lab.run()
    assert lab.told() == [f"berofos: ISDN lines moved from node1 to node2 (promote of isdn{why})"]


def test_without_crm_mon_the_line_still_names_both_nodes(lab):
    lab.state(lines="node1")
    lab.run(FAKE_CRM_MON=None)
    assert lab.told() == ["berofos: ISDN lines moved from node1 to node2 (promote of isdn)"]


@pytest.mark.parametrize("lines", ["here", "node2", "NODE2"])
def test_a_promote_where_the_lines_already_were_says_nothing(lab, lines):
    lab.state(lines=lines)
    lab.cluster(node1={}, node2={})
    lab.run()
    assert not lab.recipient.exists()


def test_a_missing_state_file_still_says_where_the_lines_are(lab):
    RoleMarker(str(lab.run_dir), "isdn").write("promoted")
    lab.run()
    assert lab.told() == ["berofos: ISDN lines moved to node2 (promote of isdn; where they were "
                          "before is not known: no state file)"]


def test_the_resource_option_names_an_instance_without_files_here(lab):
    lab.run(resource="voip, isdn")
    assert lab.told() == ["berofos: ISDN lines moved to node2 (promote of isdn; where they were "
                          "before is not known: no state file)"]


def test_a_state_file_rewritten_after_the_promote_no_longer_says_where_they_were(lab):
    lab.state(lines="here")  # what the monitor after promote writes
    lab.run(event_time=time.time() - 5)
    assert lab.told() == ["berofos: ISDN lines moved to node2 (promote of isdn; where they were "
                          "before is not known: the state file was rewritten since)"]


def test_lines_that_were_split_unknown_or_never_published(lab):
    for lines in ("split", "unknown", None):
        lab.state(lines=lines)
        lab.run()
    assert lab.told() == [
        "berofos: ISDN lines moved to node2, from relays split between the nodes "
        "(promote of isdn)",
        "berofos: ISDN lines moved to node2 (promote of isdn; where they were before is not "
        "known: the devices were not readable from here)",
        "berofos: ISDN lines moved to node2 (promote of isdn; where they were before is not "
        "known: the state file does not say)"]


def test_a_clone_instance_number_is_the_same_instance(lab):
    lab.state(lines="node1")
    lab.run(rsc="isdn:1", FAKE_CRM_MON=None)
    assert lab.told() == ["berofos: ISDN lines moved from node1 to node2 (promote of isdn)"]


def test_the_lines_attribute_changing_is_not_a_second_move(lab):
    lab.state(lines="node1")
    lab.run(FAKE_CRM_MON=None)
    for node, value in (("node2", "here"), ("node1", "node2")):
        lab.run(kind="attribute", node=node, rsc="", task="", CRM_alert_attribute_name="isdn-lines",
                CRM_alert_attribute_value=value)
    assert len(lab.told()) == 1


# -- what a node sees of the devices -----------------------------------------------------------

def test_health_ok_problem_ok_tells_each_change_once(lab):
    assert lab.monitor("ok", 0) == []  # the first result after start: nothing to tell
    lab.monitor(UNREACHABLE, 190, problem=UNREACHABLE)
    lab.monitor(UNREACHABLE, 191, problem=UNREACHABLE)  # same problem after a promote
    lab.monitor(WATCHDOG, 9)
    lab.monitor("ok", 8)
    lab.monitor("ok", 0)
    assert lab.told() == [
        f"berofos: node1 cannot use {UNREACHABLE}",
        f"berofos: {WATCHDOG} (seen from node1)",
        f"berofos: every berofos usable again from node1 (was: {WATCHDOG})"]
    calls = (lab.attrd / "calls").read_text().splitlines()
    assert all("--private" in call for call in calls if "--update=" in call)


def test_each_node_that_sees_a_problem_tells_it(lab):
    lab.monitor(UNREACHABLE, 190, problem=UNREACHABLE, node="node1")
    lab.monitor(UNREACHABLE, 191, problem=UNREACHABLE, node="node2")
    assert lab.told() == [f"berofos: node1 cannot use {UNREACHABLE}",
                          f"berofos: node2 cannot use {UNREACHABLE}"]


def test_each_recipient_is_told_once(lab, tmp_path):
    other = tmp_path / "other.log"
    for recipient in (lab.recipient, other):
        lab.monitor(WATCHDOG, 190, recipient=str(recipient))
        lab.monitor(WATCHDOG, 191, recipient=str(recipient))
    assert lab.told() == lab.told(other) == [f"berofos: {WATCHDOG} (seen from node1)"]


def test_without_attrd_a_problem_is_still_told_but_never_an_all_clear(lab):
    lab.monitor(WATCHDOG, 190, FAKE_ATTRD=None)
    lab.monitor("ok", 0, FAKE_ATTRD=None)
    assert lab.told() == [f"berofos: {WATCHDOG} (seen from node1)"]


def test_health_text_is_shown_escaped(lab):
    lab.monitor("fos1 (10.0.0.5): \x1b[31mred\r\nforged", 190)
    assert lab.told() == ["berofos: fos1 (10.0.0.5): \\x1b[31mred\\r\\nforged (seen from node1)"]


# -- what is ignored -------------------------------------------------------------------------

@pytest.mark.parametrize("event", [
    {"kind": "node", "rsc": "", "task": "", "CRM_alert_desc": "lost", "node": "node1"},
    {"kind": "fencing", "rsc": "", "task": "reboot", "CRM_alert_desc": "reboot of node1"},
    {"kind": "attribute", "rsc": "", "task": "", "CRM_alert_attribute_name": "isdn-health",
     "CRM_alert_attribute_value": UNREACHABLE},
    {"rsc": "asterisk"},                           # not a berofos resource
    {"rc": 1},                                     # a promote that failed moved nothing
    {"CRM_alert_status": "2"},                     # timed out
    {"task": "demote"}, {"task": "stop"}, {"task": "start"},
    {"task": "monitor", "rc": 7},                  # not running: nothing published
    {"resource": "voip"},                          # the option names other resources
    {"rsc": "../isdn"},
])
def test_other_events_are_ignored_silently(lab, event):
    lab.state(lines="node1", health=UNREACHABLE, problem=UNREACHABLE)
    lab.cluster(node1={"online": "false"}, node2={})
    result = lab.run(**event)
    assert not lab.recipient.exists() and result.stderr == "" and result.stdout == ""


def test_never_a_traceback_always_exit_0(lab, tmp_path):
    lab.state()
    (lab.run_dir / "berofos-broken.state").mkdir()
    RoleMarker(str(lab.run_dir), "broken").write("promoted")
    lab.run(rsc="broken")                                  # a state "file" that is a directory
    lab.run(rc="x", CRM_alert_timestamp_epoch="soon")      # numbers that are not
    lab.run(HA_RSCTMP=str(tmp_path / "missing"))
    lab.run(recipient=str(tmp_path))                       # a directory as the recipient
    lab.run(recipient="not a recipient")
    lab.run(CRM_alert_node="node\n2", CRM_alert_timestamp="\x1b]0;x\x07")
    lab.run(mail_timeout="soon", recipient="root@localhost",
            sendmail=str(tmp_path / "no-sendmail"))
    lab.crm_mon.write_text("<not xml")
    lab.run()
    result = subprocess.run([str(SOURCE)], env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                            text=True)
    assert result.returncode == 0 and "Pacemaker alert agent" in result.stderr


def test_problems_with_the_recipient_are_said_on_stderr(lab, tmp_path):
    lab.state(lines="node1")
    assert "cannot append to" in lab.run(recipient=str(tmp_path)).stderr
    assert "neither a mail address" in lab.run(recipient="not a recipient").stderr
    missing = lab.run(recipient="root@localhost", sendmail=str(tmp_path / "no-sendmail"))
    assert "mail to root@localhost not sent" in missing.stderr


# -- mail ------------------------------------------------------------------------------------

def test_a_mail_recipient_gets_one_mail_through_sendmail(lab):
    lab.state(lines="node1")
    lab.cluster(node1={"online": "false"}, node2={})
    lab.run(recipient="ops@example.com", sendmail=str(lab.bin / "sendmail"),
            sender="pbx@example.com")
    (mail,) = lab.mails()
    (argv,) = [path.read_text() for path in lab.mail_dir.glob("argv.*")]
    assert argv.split() == ["-t", "-oi", "-f", "pbx@example.com"]
    line = ("berofos: ISDN lines moved from node1 to node2 (promote of isdn after the loss of "
            "node1)")
    assert "To: ops@example.com\n" in mail and "From: pbx@example.com\n" in mail
    assert "Subject: berofos: ISDN lines moved from node1 to node2" in mail
    assert f"\n\n{line}\n" in mail and "node: node2\n" in mail


def test_a_hanging_sendmail_is_stopped_within_its_timeout(lab):
    lab.state(lines="node1")
    started = time.monotonic()
    result = lab.run(recipient="ops@example.com", sendmail=str(lab.bin / "sendmail"),
                     mail_timeout="1", FAKE_SENDMAIL_HANG="1", FAKE_CRM_MON=None)
    assert time.monotonic() - started < 10
    assert "no end within 1 s" in result.stderr


# -- in-process: syslog, bounds, delivery --------------------------------------------------------

def event_of(**values: str) -> AlertEvent:
    environ = {"CRM_alert_kind": "resource", "CRM_alert_node": "node2", "CRM_alert_rsc": "isdn",
               "CRM_alert_task": "promote", "CRM_alert_rc": "0", "CRM_alert_status": "0"}
    environ.update(values)
    return AlertEvent(environ)


def test_syslog_gets_the_line_as_a_notice_and_problems_as_warnings(tmp_path):
    logged: list[Message] = []
    tell = Delivery(event_of(CRM_alert_recipient=""), system_log=logged.append)
    tell(Message("berofos: moved"))
    tell(Message("berofos: broken", urgent=True))
    assert [(m.text, m.urgent) for m in logged] == [("berofos: moved", False),
                                                     ("berofos: broken", True)]
    quiet: list[Message] = []
    Delivery(event_of(syslog="no"), system_log=quiet.append)(Message("x"))
    assert quiet == []


def test_no_sendmail_anywhere_is_said(monkeypatch):
    monkeypatch.setattr(alert, "DEFAULT_SENDMAILS", ("/nonexistent/sendmail",))
    complaints: list[str] = []
    tell = Delivery(event_of(CRM_alert_recipient="ops@example.com", syslog="no"),
                    complain=complaints.append, mailer=lambda *a: pytest.fail("mailed"))
    tell(Message("berofos: moved"))
    assert complaints == ["no sendmail (/nonexistent/sendmail): mail to ops@example.com not sent"]


@pytest.mark.parametrize("text, seconds", [
    ("1", 1.0), ("2.5", 2.5), ("1000", alert.BUDGET), ("nan", 10.0), ("-1", 10.0),
    ("0", 10.0), ("soon", 10.0), ("", 10.0), ("inf", 10.0),
])
def test_mail_timeout_is_a_positive_number_within_the_budget(text, seconds):
    assert event_of(mail_timeout=text).mail_timeout == seconds


def test_the_mail_gets_at_most_what_is_left_of_the_budget():
    timeouts: list[float] = []
    event = event_of(CRM_alert_recipient="ops@example.com", syslog="no", sendmail="/bin/true")
    Delivery(event, deadline=Deadline(3.0),
             mailer=lambda argv, data, timeout: timeouts.append(timeout))(Message("x"))
    assert len(timeouts) == 1 and 0 < timeouts[0] <= 3.0
    complaints: list[str] = []
    Delivery(event, deadline=Deadline(0), complain=complaints.append,
             mailer=lambda *a: pytest.fail("mailed"))(Message("x"))
    assert complaints == ["no time left to mail ops@example.com"]


@pytest.mark.parametrize("address, valid", [
    ("ops@example.com", True), ("a.b+c@mail.example.org", True), ("ops", False),
    ("@example.com", False), ("ops@", False), ("a@b@c", False), ("ops@example.com\nBcc: x", False),
    ("ops@example.com, other@example.com", False), ("-oQ/tmp@x", False),
])
def test_what_counts_as_a_mail_address(address, valid):
    assert alert._mail_address(address) is valid


def test_every_tool_call_is_bounded_by_the_budget(tmp_path):
    calls: list[tuple[list[str], float]] = []

    def runner(argv, timeout):
        calls.append((argv, timeout))
        return 0, nodes_xml(node1={"online": "false"}), ""

    StateFile(str(tmp_path), "isdn").write(InstanceState(attributes={"isdn-lines": "node1"}))
    told: list[Message] = []
    handle(event_of(), run_dir=str(tmp_path), tools=ClusterTools(runner, Deadline(2.0)),
           tell=told.append)
    assert [m.text for m in told] == ["berofos: ISDN lines moved from node1 to node2 "
                                      "(promote of isdn after the loss of node1)"]
    assert calls and all(0 < timeout <= 2.0 for _, timeout in calls)
    calls.clear()
    handle(event_of(), run_dir=str(tmp_path), tools=ClusterTools(runner, Deadline(0)),
           tell=told.append)
    assert calls == [] and told[-1].text.endswith("(promote of isdn)")


def test_main_in_process_never_raises(tmp_path):
    def broken(argv, timeout):
        raise RuntimeError("boom")

    StateFile(str(tmp_path), "isdn").write(InstanceState(attributes={"isdn-lines": "node1"}))
    environ = {"CRM_alert_kind": "resource", "CRM_alert_node": "node2", "CRM_alert_rsc": "isdn",
               "CRM_alert_task": "promote", "CRM_alert_rc": "0", "CRM_alert_status": "0",
               "HA_RSCTMP": str(tmp_path)}
    logged: list[Message] = []
    assert alert.main([], environ, runner=broken, system_log=logged.append) == 0
    assert logged == []  # the error came before anything was told


# -- installed -------------------------------------------------------------------------------

def test_make_install_puts_it_beside_bindir_pointing_at_the_package(tmp_path):
    stage = tmp_path / "stage"
    variables = [f"DESTDIR={stage}", "PREFIX=/opt/bf", f"PYTHON={PYTHON}", "BYTECOMPILE=no"]
    subprocess.run(["make", "-s", "install", *variables], cwd=ROOT, check=True,
                   capture_output=True)
    installed = stage / "opt/bf/libexec/berofos-ocf/berofos-alert"
    assert installed.stat().st_mode & 0o777 == 0o755
    assert 'PACKAGE_DIR = "/opt/bf/lib/python3/dist-packages"' in installed.read_text()
    result = subprocess.run([str(installed)], capture_output=True, text=True, env={
        "PATH": "/usr/bin:/bin", "PYTHONPATH": f"{stage}/opt/bf/lib/python3/dist-packages"})
    assert result.returncode == 0 and "Pacemaker alert agent" in result.stderr
    subprocess.run(["make", "-s", "uninstall", *variables], cwd=ROOT, check=True,
                   capture_output=True)
    assert not (stage / "opt/bf/libexec/berofos-ocf").exists()


def test_installed_agent_tells_a_move(tmp_path):
    stage = tmp_path / "stage"
    subprocess.run(["make", "-s", "install", f"DESTDIR={stage}", f"PYTHON={PYTHON}",
                    "BYTECOMPILE=no"], cwd=ROOT, check=True, capture_output=True)
    lab = AlertLab(tmp_path, stage / "usr/libexec/berofos-ocf/berofos-alert")
    lab.env["PYTHONPATH"] = f"{stage}/usr/lib/python3/dist-packages"
    lab.state(lines="node1")
    lab.cluster(node1={"online": "false"}, node2={})
    lab.run()
    assert lab.told() == ["berofos: ISDN lines moved from node1 to node2 "
                          "(promote of isdn after the loss of node1)"]
    assert os.access(lab.program, os.X_OK)
