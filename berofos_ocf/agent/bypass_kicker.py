"""The kicker as the bypass agent handles it: launched, recorded, checked, stopped.

The kicker itself is :mod:`berofos_ocf.kicker`.  Start launches it
(:func:`launch_kicker`) as a process of its own session, with nothing of the
agent's open (Pacemaker reads an agent's output until every holder of it has
closed it), waits until it says it runs, and records it in the run directory
(:class:`KickerFile`, ``berofos-bypass-INSTANCE.kicker``): its PID and the
start time the kernel gives that PID (``/proc/PID/stat``, field 22).  A PID
alone could name another process by the next monitor or stop; the pair names
the kicker only.  Monitor asks :meth:`KickerRecord.alive`; stop signals through
a pidfd opened *before* the start time is compared (:func:`stop_kicker`), so
the signal reaches the process that was checked, never a recycled PID.  A
zombie counts as gone: its kicks have stopped.
"""

from __future__ import annotations

__all__ = ["KickerRecord", "KickerFile", "KickerLaunchError", "process_start_time",
           "launch_kicker", "stop_kicker", "PASSED_VARIABLES"]

import os
import signal
import time

from ..runstate import RunDirectory

# What the kicker keeps of the agent's environment: where ocf.py is and where
# Pacemaker wants log lines; nothing else (the agent's parameters stay here).
PASSED_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ", "OCF_ROOT", "OCF_FUNCTIONS_DIR",
                    "OCF_RESOURCE_INSTANCE", "HA_LOGFACILITY", "HA_LOGFILE", "HA_DEBUGLOG",
                    "HA_debug", "HA_DATEFMT")
_READY_WAIT = 5.0
_STOP_WAIT = 1.0  # after SIGTERM (the kicker ends within a tick), then after SIGKILL
_POLL = 0.02


class KickerLaunchError(Exception):
    """The kicker did not start, or did not say it runs."""


def process_start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot); None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) is in parentheses and may hold any character
    fields = text.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in ("Z", "X", "x"):
        return None
    return int(fields[19])


class KickerRecord:
    """The recorded kicker: who it is and what it kicks."""

    FIELDS = ("pid", "started", "targets", "interval", "port", "watchdog_timeout")
    __slots__ = FIELDS

    def __init__(self, pid: int, started: int | None, targets: list[str], interval: float,
                 port: int, watchdog_timeout: int) -> None:
        self.pid = pid
        self.started = started
        self.targets = targets  # KickTarget.argument() of each device
        self.interval = interval
        self.port = port
        self.watchdog_timeout = watchdog_timeout

    def alive(self) -> bool:
        """The recorded process still runs (not a recycled PID, not a zombie)."""
        return self.started is not None and process_start_time(self.pid) == self.started

    def same_work(self, other: KickerRecord) -> bool:
        """Both kick the same devices at the same pace."""
        return (self.targets, self.interval, self.port) == (other.targets, other.interval,
                                                            other.port)

    def to_json(self) -> str:
        import json

        return json.dumps({name: getattr(self, name) for name in self.FIELDS},
                          sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> KickerRecord:
        import json

        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls(**{name: data[name] for name in cls.FIELDS})


class KickerFile:
    """``berofos-bypass-INSTANCE.kicker`` in the run directory: there means started."""

    def __init__(self, directory: str, instance: str) -> None:
        self.run_dir = RunDirectory(directory)
        self.name = f"berofos-bypass-{instance}.kicker"
        self.path = self.run_dir.file(self.name)

    def read(self) -> KickerRecord | None:
        """The record; None when not started.  A file that cannot be understood reads
        as a kicker that is gone: started, and broken."""
        try:
            text = self.run_dir.read(self.name)
        except (OSError, UnicodeDecodeError):
            text = ""
        if text is None:
            return None
        try:
            return KickerRecord.from_json(text)
        except (ValueError, TypeError, KeyError):
            return KickerRecord(0, None, [], 0.0, 0, 0)

    def write(self, record: KickerRecord) -> None:
        self.run_dir.write(self.name, record.to_json())

    def remove(self) -> None:
        self.run_dir.remove(self.name)


def _package_parent() -> str:
    """The directory holding this package, for the kicker's ``-m berofos_ocf.kicker``."""
    import berofos_ocf

    return os.path.dirname(os.path.dirname(os.path.abspath(berofos_ocf.__file__)))


def _kicker_environment(environ) -> dict[str, str]:
    env = {name: environ[name] for name in PASSED_VARIABLES if environ.get(name)}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["PYTHONPATH"] = _package_parent()
    return env


def _await_ready(process, wait: float) -> None:
    """Read the kicker's one line; :class:`KickerLaunchError` if it is not :data:`READY`."""
    import select

    from ..kicker import READY

    readable, _, _ = select.select([process.stdout], [], [], wait)
    line = process.stdout.readline().decode("utf-8", "replace").strip() if readable else ""
    process.stdout.close()
    if line != READY:
        process.kill()
        status = process.wait()
        raise KickerLaunchError(f"the kicker did not start (exit status {status})"
                                if readable else f"the kicker did not start within {wait:g} s")


def launch_kicker(record: KickerRecord, *, instance: str, reply_timeout: float, environ,
                  python: str | None = None, ready_wait: float = _READY_WAIT) -> KickerRecord:
    """Start a kicker doing ``record``'s work; the record completed with its PID and start."""
    import subprocess
    import sys

    argv = [python or sys.executable, "-m", "berofos_ocf.kicker", "--instance", instance,
            "--interval", f"{record.interval:g}", "--reply-timeout", f"{reply_timeout:g}",
            "--watchdog-timeout", str(record.watchdog_timeout), "--port", str(record.port),
            *record.targets]
    try:
        process = subprocess.Popen(argv, env=_kicker_environment(environ), cwd="/",
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as err:
        raise KickerLaunchError(f"the kicker cannot run: {err.strerror}") from None
    started = process_start_time(process.pid)
    _await_ready(process, ready_wait)
    # the agent exits without waiting for it: it becomes the child of init
    process.returncode = 0  # (and subprocess must not warn that it "still runs")
    return KickerRecord(process.pid, started, record.targets, record.interval, record.port,
                        record.watchdog_timeout)


def _signal(record: KickerRecord, signum: int) -> bool:
    """Send ``signum`` to the recorded kicker if it is still that process; sent or not."""
    try:
        handle = os.pidfd_open(record.pid)
    except (ProcessLookupError, OSError):
        return False
    try:
        # the pidfd holds the process that had this PID when it was opened: if
        # that one is the kicker, the signal cannot reach anyone else
        if not record.alive():
            return False
        signal.pidfd_send_signal(handle, signum)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(handle)


def _gone_within(record: KickerRecord, seconds: float, clock, sleep) -> bool:
    end = clock() + seconds
    while record.alive():
        if clock() >= end:
            return False
        sleep(_POLL)
    return True


def stop_kicker(record: KickerRecord, *, clock=time.monotonic, sleep=time.sleep,
                wait: float = _STOP_WAIT) -> str:
    """End the kicker: SIGTERM, then SIGKILL if it lingers.  What happened, in words."""
    if not _signal(record, signal.SIGTERM):
        return f"kicker (pid {record.pid}) already gone"
    if _gone_within(record, wait, clock, sleep):
        return f"kicker (pid {record.pid}) stopped"
    _signal(record, signal.SIGKILL)
    if _gone_within(record, wait, clock, sleep):
        return f"kicker (pid {record.pid}) killed: it ignored SIGTERM for {wait:g} s"
    return f"kicker (pid {record.pid}) still there {wait:g} s after SIGKILL"
