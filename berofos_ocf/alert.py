"""The Pacemaker alert agent ``berofos-alert``: tells people when the lines move or a device ails.

Pacemaker runs an alert agent for every node, fencing and resource event (and,
when selected, node attribute changes), once per configured recipient, as the
``hacluster`` user, with the event in ``CRM_alert_*`` variables and the
alert's options (its instance attributes) as variables of their own; it kills
the agent after the alert's ``timeout`` (30 s by default).  Two events of a
berofos instance interest this agent, both resource events, which Pacemaker
reports on the node that ran the operation:

* **A promote that succeeded**: the relays now connect this node.  Where they
  were before is in the instance's state file (:mod:`berofos_ocf.runstate`):
  its ``attributes`` hold the ``INSTANCE-lines`` value the last start or
  monitor published, which promote leaves alone.  The monitor that follows
  promote rewrites the file, so a file modified after the event's timestamp
  no longer says where the lines were.  Why they moved: what
  ``crm_mon --output-as=xml`` says of the node that held them (gone from the
  cluster, shutting down, in standby, or still there).  A promote where the
  lines already were here (a cluster start) says nothing.
* **A monitor whose result changed**: the executor reports a recurring
  monitor only when its result changes (and its first result after start,
  promote or demote); the state file then holds the ``INSTANCE-health`` value
  that very monitor published.  What each recipient was last told about a
  node is kept in pacemaker-attrd as a private node attribute (never written
  to the CIB, gone when the node leaves): an alert agent has no directory of
  its own to keep it in.  So a problem is told once per node that sees it,
  and ``ok`` after a problem is told once.

Node attribute alerts are not used: pcs cannot select them, and
pacemaker-attrd sends them from one node for every node's value whenever one
of them changes, so they repeat.  Every other event is ignored silently.

Each line goes to syslog (ident ``berofos-alert``, facility daemon; option
``syslog=no`` turns it off) and to the recipient: a mail address gets one mail
through ``sendmail -t``, an absolute path gets the line appended.  The agent
exits 0 whatever happens (Pacemaker would only log a failure) and stays within
:data:`BUDGET` seconds.

Options (``pcs alert create ... options NAME=VALUE``): ``resource`` (the
berofos resource ids, comma or space separated; default: every resource
whose berofos state file or role marker is on the node), ``syslog``
(``yes``), ``sendmail`` (the program; default ``/usr/sbin/sendmail`` if
present), ``sender`` (the mail's From), ``mail_timeout`` (seconds, 10).
"""

from __future__ import annotations

__all__ = ["BUDGET", "OK", "Message", "AlertEvent", "ClusterTools", "Delivery", "handle",
           "lines_moved", "health_change", "main"]

import os
import sys

# Pacemaker kills the agent after the alert's timeout, 30 s by default: stop
# asking anything well before.
BUDGET = 20.0
OK = "ok"  # the agent's INSTANCE-health value when nothing is wrong
HERE = "here"  # the agent's INSTANCE-lines value when the relays connect this node
# Monitor results after which the agent has published its view: running,
# promoted, relays moved behind its back (9), degraded (190, 191).
HEALTH_RESULTS = frozenset({0, 8, 9, 190, 191})
EXEC_DONE = 0  # CRM_alert_status: the operation ran to its end (not cancelled, timed out...)
DEFAULT_SENDMAILS = ("/usr/sbin/sendmail", "/usr/lib/sendmail")
DEFAULT_MAIL_TIMEOUT = 10.0
_MAIL_ADDRESS_FORBIDDEN = set(" \t<>,;:\"'()[]\\")


class Message:
    """One line for people; ``urgent`` ones go to syslog as warnings."""

    __slots__ = ("text", "urgent")

    def __init__(self, text: str, *, urgent: bool = False) -> None:
        self.text = text
        self.urgent = urgent

    def __repr__(self) -> str:
        return f"Message({self.text!r}, urgent={self.urgent})"


def _number(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and text.isascii() and len(text) < 20 else None


def _names(text: str) -> list[str]:
    return [name for name in text.replace(",", " ").split() if name]


def _seconds(text: str | None, default: float) -> float:
    """A positive number of seconds within :data:`BUDGET`, else ``default``."""
    try:
        seconds = float(text or "")
    except ValueError:
        return default
    return min(seconds, BUDGET) if 0 < seconds < float("inf") else default


class AlertEvent:
    """One event as Pacemaker describes it, and the alert's options."""

    def __init__(self, environ) -> None:
        def get(name: str) -> str:
            return environ.get(f"CRM_alert_{name}") or ""

        self.from_pacemaker = bool(get("kind"))
        self.kind = get("kind")
        self.node = get("node")
        self.resource = get("rsc")
        # an anonymous clone's instances share the primitive's id (and its state file)
        self.instance = self.resource.split(":", 1)[0]
        self.task = get("task")
        self.rc = _number(get("rc"))
        self.status = _number(get("status"))
        self.recipient = get("recipient").strip()
        self.timestamp = get("timestamp")
        epoch, usec = _number(get("timestamp_epoch")), _number(get("timestamp_usec"))
        self.time_ns = None if epoch is None else epoch * 10**9 + (usec or 0) * 1000
        self.resources = _names(environ.get("resource") or "")
        self.syslog = (environ.get("syslog") or "yes").strip().lower() not in ("no", "0", "false",
                                                                                 "off")
        self.sendmail = (environ.get("sendmail") or "").strip()
        self.sender = (environ.get("sender") or "").strip()
        self.mail_timeout = _seconds(environ.get("mail_timeout"), DEFAULT_MAIL_TIMEOUT)

    def ran(self, task: str) -> bool:
        """A resource operation ``task`` that ran to its end (whatever its result)."""
        return self.kind == "resource" and self.task == task and self.status == EXEC_DONE


class ClusterTools:
    """Pacemaker's command line tools as the agent uses them, each call bounded.

    ``runner(argv, timeout)`` returns (status, stdout, stderr) and never raises
    (:func:`berofos_ocf.agent.state.run_command`); ``deadline`` bounds every call.
    """

    def __init__(self, runner, deadline) -> None:
        self._runner = runner
        self._deadline = deadline

    def _run(self, argv: list[str], seconds: float) -> tuple[int, str]:
        if self._deadline.expired:
            return 124, ""
        status, out, _ = self._runner(argv, self._deadline.bound(seconds))
        return status, out

    def nodes(self) -> dict[str, dict[str, str]] | None:
        """Every node's state in ``crm_mon --output-as=xml`` (online, standby ...), by lower-case
        name; None when crm_mon cannot tell."""
        import xml.etree.ElementTree as ET

        status, out = self._run(["crm_mon", "--output-as=xml", "--exclude=all",
                                 "--include=nodes"], 5.0)
        if status != 0:
            return None
        try:
            root = ET.fromstring(out)
        except ET.ParseError:
            return None
        return {node.get("name", "").lower(): dict(node.attrib)
                for node in root.iter("node") if node.get("name")}

    def told(self, node: str, name: str) -> str | None:
        """What the private attribute ``name`` of ``node`` holds ("" when unset); None: unknown."""
        import xml.etree.ElementTree as ET

        _, out = self._run(["attrd_updater", "--query", "--node", node, "--name", name,
                            "--output-as=xml"], 3.0)
        try:
            root = ET.fromstring(out)
        except ET.ParseError:
            return None
        values = [item.get("value", "") for item in root.iter("attribute")]
        if values:
            return values[0]
        # attrd answered that it has no such attribute: nothing was told yet
        errors = " ".join(error.text or "" for error in root.iter("error"))
        return "" if "does not exist" in errors else None

    def remember(self, node: str, name: str, value: str) -> None:
        # --private: kept by pacemaker-attrd on every node, never written to the CIB
        # (so no CIB churn and no attribute alerts); one argument, as a value may start with -
        self._run(["attrd_updater", "--private", "--node", node, "--name", name,
                   f"--update={value}"], 3.0)


# -- what the lines did --------------------------------------------------------------------

class _StateView:
    """The instance's state file on this node, and whether it still is as before the event."""

    def __init__(self, run_dir: str, instance: str, event_ns: int | None) -> None:
        from .runstate import StateFile

        state_file = StateFile(run_dir, instance)
        self.state = state_file.read()
        try:
            # after the read: a file replaced meanwhile shows its newer time
            modified = os.stat(state_file.path, follow_symlinks=False).st_mtime_ns
        except OSError:
            modified = None
        self.found = modified is not None
        self.before_event = self.found and (event_ns is None or modified <= event_ns)

    def attribute(self, name: str) -> str:
        value = self.state.attributes.get(name) if isinstance(self.state.attributes, dict) else None
        return value if isinstance(value, str) else ""


def _why(previous: str, nodes: dict[str, dict[str, str]] | None) -> str:
    """Why the lines left ``previous``, from Pacemaker's view of that node ("" unknown)."""
    node = (nodes or {}).get(previous.lower())
    if node is None:
        return ""
    if node.get("online") != "true":
        return f" after the loss of {previous}"
    if node.get("shutdown") == "true":
        return f" while {previous} is shutting down"
    if node.get("standby") == "true":
        return f" while {previous} is in standby"
    return (f"; {previous} is still in the cluster: a manual move, a location preference or "
            "a recovery")


def _unknown_because(view: _StateView, before: str) -> str:
    if not view.found:
        return "no state file"
    if not view.before_event:
        return "the state file was rewritten since"
    if before == "unknown":
        return "the devices were not readable from here"
    return "the state file does not say"


def lines_moved(event: AlertEvent, view: _StateView, tools: ClusterTools) -> Message | None:
    """The line for a promote of ``event.instance`` on ``event.node`` that succeeded, or None
    when the lines were already there."""
    from .text import shown

    here, instance = shown(event.node, 64), shown(event.instance, 64)
    before = view.attribute(f"{event.instance}-lines") if view.before_event else ""
    if before == HERE or (before and before.lower() == event.node.lower()):
        return None  # already here: a cluster start, or the holder promoted again
    if before in ("", "unknown"):
        return Message(f"berofos: ISDN lines moved to {here} (promote of {instance}; where they "
                       f"were before is not known: {_unknown_because(view, before)})")
    if before == "split":
        return Message(f"berofos: ISDN lines moved to {here}, from relays split between the "
                       f"nodes (promote of {instance})")
    previous = shown(before, 64)
    return Message(f"berofos: ISDN lines moved from {previous} to {here} (promote of {instance}"
                   f"{_why(before, tools.nodes())})")


# -- what a node sees of the devices --------------------------------------------------------

def _memory_name(instance: str, recipient: str) -> str:
    """The private attribute holding what this recipient was last told of ``instance``."""
    import hashlib

    # one memory per recipient: Pacemaker runs the agent once per recipient, in parallel
    digest = hashlib.sha256(recipient.encode("utf-8", "replace")).hexdigest()[:10]
    return f"berofos-alert-{instance}-{digest}"


def health_change(event: AlertEvent, view: _StateView, told: str | None) -> Message | None:
    """The line for a monitor whose result changed, given what was last told (None: not
    known), or None when there is nothing new."""
    from .text import shown

    value = view.attribute(f"{event.instance}-health")
    node = shown(event.node, 64)
    if not value or value == told:
        return None
    if value == OK:
        if not told or told == OK:
            return None  # nothing was told, or what was is forgotten: no "again"
        return Message(f"berofos: every berofos usable again from {node} (was: {shown(told)})")
    problem = view.state.problem if isinstance(view.state.problem, str) else ""
    if problem:
        return Message(f"berofos: {node} cannot use {shown(problem)}", urgent=True)
    return Message(f"berofos: {shown(value)} (seen from {node})", urgent=True)


def _tell_health(event: AlertEvent, view: _StateView, tools: ClusterTools, tell) -> None:
    memory = _memory_name(event.instance, event.recipient)
    message = health_change(event, view, tools.told(event.node, memory))
    if message is not None:
        tell(message)
        tools.remember(event.node, memory, view.attribute(f"{event.instance}-health"))


# -- which events --------------------------------------------------------------------------

def _is_berofos(event: AlertEvent, run_dir: str) -> bool:
    """Is the event's resource a berofos instance this agent speaks for?"""
    from .runstate import RoleMarker, StateFile

    instance = event.instance
    if not instance or "/" in instance or instance.startswith("."):
        return False
    if event.resources:
        return instance in event.resources
    # without the option: the agent's own files for that instance on this node
    return any(os.path.lexists(path) for path in (StateFile(run_dir, instance).path,
                                                  RoleMarker(run_dir, instance).path))


def handle(event: AlertEvent, *, run_dir: str, tools: ClusterTools, tell) -> None:
    """Call ``tell(message)`` for what ``event`` means to people, if anything."""
    if event.kind != "resource" or not _is_berofos(event, run_dir):
        return
    if event.ran("promote") and event.rc == 0:
        message = lines_moved(event, _StateView(run_dir, event.instance, event.time_ns), tools)
        if message is not None:
            tell(message)
    elif event.ran("monitor") and event.rc in HEALTH_RESULTS:
        # the monitor has just written the file: no timestamp check
        _tell_health(event, _StateView(run_dir, event.instance, None), tools, tell)


# -- where the lines go --------------------------------------------------------------------

def _system_log(message: Message) -> None:
    import syslog

    # without /dev/log (a container, a test namespace) libc drops the line: no error
    syslog.openlog("berofos-alert", syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_WARNING if message.urgent else syslog.LOG_NOTICE, message.text)


def send_mail(argv: list[str], data: bytes, timeout: float) -> str | None:
    """Run ``argv`` (a sendmail) with ``data`` on its input; None, or what went wrong.

    Its own process group, killed whole at the timeout: a sendmail that hangs
    (an MTA queue lock, DNS) must not hold the alert past Pacemaker's timeout.
    """
    import signal
    import subprocess

    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as err:
        return f"{argv[0]}: {err.strerror}"
    try:
        process.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return f"{argv[0]}: no end within {timeout:g} s, stopped"
    except OSError as err:  # it exited without reading its input
        process.wait()
        return f"{argv[0]}: {err.strerror}"
    return None if process.returncode == 0 else f"{argv[0]}: exit status {process.returncode}"


def _mail_address(text: str) -> bool:
    """Plausibly one address, and nothing a header or sendmail's options could misread."""
    local, at, domain = text.rpartition("@")
    return (bool(at and local and domain) and text.isprintable() and len(text) <= 254
            and not _MAIL_ADDRESS_FORBIDDEN.intersection(text) and "@" not in local
            and not text.startswith("-"))


class Delivery:
    """Tells a message: syslog, then the recipient (mail address or absolute file path).

    ``system_log(message)``, ``mailer(argv, data, timeout)`` (see :func:`send_mail`)
    and ``complain(text)`` (stderr, which Pacemaker logs) are injectable; the
    mail is bounded by ``deadline`` (a :class:`berofos_ocf.deadline.Deadline`) too.
    """

    def __init__(self, event: AlertEvent, *, deadline=None, system_log=_system_log,
                 mailer=send_mail, complain=None, hostname: str | None = None) -> None:
        from .deadline import Deadline

        self.event = event
        self._deadline = deadline or Deadline(BUDGET)
        self._system_log = system_log
        self._mailer = mailer
        self._complain = complain or (lambda text: sys.stderr.write(f"berofos-alert: {text}\n"))
        self._hostname = hostname or os.uname().nodename

    def __call__(self, message: Message) -> None:
        recipient = self.event.recipient
        if self.event.syslog:
            self._system_log(message)
        if not recipient:
            return
        if recipient.startswith("/"):
            self._append(recipient, message)
        elif _mail_address(recipient):
            self._mail(recipient, message)
        else:
            self._problem(f"recipient {self._shown(recipient)} is neither a mail address nor an "
                          "absolute file path: line not sent there")

    @staticmethod
    def _shown(text: str) -> str:
        from .text import shown

        return shown(text, 100)

    def _problem(self, text: str) -> None:
        self._complain(text)
        if self.event.syslog:
            self._system_log(Message(f"berofos-alert: {text}", urgent=True))

    def _append(self, path: str, message: Message) -> None:
        import stat

        stamp = self._shown(self.event.timestamp)
        line = f"{stamp} {message.text}\n" if stamp else f"{message.text}\n"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOCTTY | os.O_NONBLOCK
        try:
            descriptor = os.open(path, flags | os.O_CLOEXEC, 0o640)
            try:
                if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                    raise OSError(0, "not a regular file")
                os.write(descriptor, line.encode("utf-8", "replace"))  # one write: one line
            finally:
                os.close(descriptor)
        except OSError as err:
            self._problem(f"cannot append to {self._shown(path)}: {err.strerror} (the alert "
                          "runs as hacluster)")

    def _sendmail(self) -> str | None:
        if self.event.sendmail:
            return self.event.sendmail
        return next((path for path in DEFAULT_SENDMAILS if os.access(path, os.X_OK)), None)

    def _mail(self, address: str, message: Message) -> None:
        program = self._sendmail()
        if program is None:
            self._problem(f"no sendmail ({', '.join(DEFAULT_SENDMAILS)}): mail to {address} "
                          "not sent")
            return
        if self._deadline.expired:
            self._problem(f"no time left to mail {address}")
            return
        argv = [program, "-t", "-oi"]
        if _mail_address(self.event.sender):
            argv += ["-f", self.event.sender]
        error = self._mailer(argv, self._mail_data(address, message),
                             self._deadline.bound(self.event.mail_timeout))
        if error:
            self._problem(f"mail to {address} not sent: {self._shown(error)}")

    def _mail_data(self, address: str, message: Message) -> bytes:
        from email.message import EmailMessage
        from email.utils import formatdate

        event = self.event
        mail = EmailMessage()
        mail["To"] = address
        if _mail_address(event.sender):
            mail["From"] = event.sender
        mail["Subject"] = message.text
        seconds = event.time_ns / 1e9 if event.time_ns is not None else None
        mail["Date"] = formatdate(seconds, localtime=True)
        body = (f"{message.text}\n\n"
                f"node: {self._shown(event.node)}\n"
                f"resource: {self._shown(event.resource)}\n"
                f"operation: {self._shown(event.task)} at {self._shown(event.timestamp)}\n"
                f"sent by berofos-alert on {self._shown(self._hostname)}\n")
        # plain ASCII stays readable as it is (no quoted-printable line breaks)
        mail.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
        return mail.as_bytes()


# -- the program ---------------------------------------------------------------------------

def main(argv: list[str] | None = None, environ=None, *, runner=None, system_log=_system_log,
         mailer=send_mail) -> int:
    """Handle the event in ``environ``; always 0 (an alert agent's failure helps nobody)."""
    environ = os.environ if environ is None else environ
    try:
        event = AlertEvent(environ)
        if not event.from_pacemaker:
            sys.stderr.write("berofos-alert is a Pacemaker alert agent: "
                             "pcs alert create path=... (see the README of berofos-ocf)\n")
            return 0
        from .deadline import Deadline
        from .runstate import DEFAULT_RUN_DIR

        if runner is None:
            from .agent.state import run_command as runner
        deadline = Deadline(BUDGET)
        handle(event, run_dir=environ.get("HA_RSCTMP") or DEFAULT_RUN_DIR,
               tools=ClusterTools(runner, deadline),
               tell=Delivery(event, deadline=deadline, system_log=system_log, mailer=mailer))
    except Exception as err:  # never a traceback in Pacemaker's log, never a failed alert
        sys.stderr.write(f"berofos-alert: internal error: {type(err).__name__}: {err}\n")
    return 0
