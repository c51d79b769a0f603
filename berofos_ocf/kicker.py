"""The kicker: kicks the hardware watchdog of berofos devices over GBL4 until it is stopped.

The ``berofos-bypass`` agent's start runs it as a daemon of its own session::

    python3 -m berofos_ocf.kicker --instance NAME --interval S --reply-timeout S \\
        --port 50123 fos1,00:19:32:00:12:1D,10.34.1.50 ...

and its stop ends it with SIGTERM (SIGKILL if it lingers).  It needs nothing
from Pacemaker: in maintenance mode, with a monitor late or not scheduled at
all, the kicks go on; when the node dies or hangs they stop, and each berofos
hands the lines to the PBX by itself (its watchdog interval later).

Each device has a thread of its own on its own schedule, so a device that does
not answer never delays another's kicks, nor its own next one (a kick waits
for its reply at most ``--reply-timeout``).  Kicks are unicast to each device's
host, carrying its MAC: the device acts only on its own.  A failed kick never
ends the kicker; it is logged through :class:`KickLog` (the first at once,
then one summary a minute while they keep failing, then the recovery), through
resource-agents' ``ocf.py`` like the agent (``HA_LOGFILE``, ``HA_LOGFACILITY``).

Once every thread runs it writes :data:`READY` and a newline on its standard
output, which the agent waits for, then points standard output at
``/dev/null``: it holds no descriptor of the agent's (Pacemaker reads an
agent's output until every holder has closed it).
"""

from __future__ import annotations

__all__ = ["READY", "LOG_EVERY", "KickTarget", "KickLog", "Kicker", "main"]

import argparse
import os
import signal
import sys
import threading
import time

from .errors import BerofosError, InvalidValue
from .gbl4 import format_mac, parse_mac

READY = "ready"
LOG_EVERY = 60.0  # while kicks keep failing, one summary line a minute per device
# A kick this much later than its turn means the whole node stalled (frozen,
# paused, starved): worth a line, since the watchdog counted the silence.
_LATE_FACTOR = 2.0


class KickTarget:
    """One device as the kicker reaches it: its name, MAC and host."""

    __slots__ = ("name", "mac", "host")

    def __init__(self, name: str, mac: bytes, host: str) -> None:
        self.name = name
        self.mac = mac
        self.host = host

    @property
    def label(self) -> str:
        return f"{self.name} ({self.host})"

    def argument(self) -> str:
        """``NAME,MAC,HOST``: how the agent names it on the kicker's command line."""
        return f"{self.name},{format_mac(self.mac)},{self.host}"

    @classmethod
    def parse(cls, text: str) -> KickTarget:
        name, mac, host = (text.split(",") + ["", ""])[:3]
        if not name or not host:
            raise InvalidValue(f"{text!r} is not NAME,MAC,HOST")
        return cls(name, parse_mac(mac), host)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KickTarget) and self.argument() == other.argument()


class _Streak:
    """Failed kicks of one device in a row."""

    __slots__ = ("count", "since", "logged_at", "last_error")

    def __init__(self) -> None:
        self.count = 0
        self.since = 0.0
        self.logged_at = 0.0
        self.last_error = ""


class KickLog:
    """What people read about kicks: failures at most once a minute a device, and recoveries.

    ``log`` has ``info`` and ``warning``; ``clock`` is monotonic.  Each device
    is logged from its own thread only, so streaks need no lock.
    """

    def __init__(self, log, *, watchdog_timeout: float, clock=time.monotonic,
                 every: float = LOG_EVERY) -> None:
        self._log = log
        self._timeout = watchdog_timeout
        self._clock = clock
        self._every = every
        self._streaks: dict[str, _Streak] = {}

    def _streak(self, target: KickTarget) -> _Streak:
        return self._streaks.setdefault(target.name, _Streak())

    def failed(self, target: KickTarget, error: str) -> None:
        streak, now = self._streak(target), self._clock()
        streak.count += 1
        streak.last_error = error
        if streak.count == 1:
            streak.since = streak.logged_at = now
            self._log.warning(f"{target.label}: watchdog kick failed: {error} (it fires "
                              f"{self._timeout:g} s after the last kick that arrived)")
        elif now - streak.logged_at >= self._every:
            streak.logged_at = now
            self._log.warning(f"{target.label}: {streak.count} watchdog kicks failed in a row "
                              f"for {now - streak.since:.0f} s; last: {error}")

    def succeeded(self, target: KickTarget) -> None:
        streak = self._streak(target)
        if streak.count:
            self._log.info(f"{target.label}: watchdog kicks answered again after "
                           f"{streak.count} failed ({self._clock() - streak.since:.0f} s)")
            self._streaks[target.name] = _Streak()

    def late(self, target: KickTarget, seconds: float) -> None:
        self._log.warning(f"{target.label}: watchdog kick {seconds:.1f} s late (the node "
                          "stalled?)")


class Kicker:
    """Kicks every target every ``interval`` seconds, each in a thread, until :meth:`stop`.

    ``kick(target)`` sends one kick and returns once the device answered; it
    raises :class:`~berofos_ocf.errors.BerofosError` when it did not.
    """

    def __init__(self, targets: list[KickTarget], *, kick, interval: float, log: KickLog,
                 clock=time.monotonic) -> None:
        self.targets = targets
        self.interval = interval
        self._kick = kick
        self._log = log
        self._clock = clock
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._kick_forever, args=(target,),
                                          name=f"kick-{target.name}", daemon=True)
                         for target in targets]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, poll: float = 1.0) -> None:
        """Until :meth:`stop`; wakes every ``poll`` seconds so that signals are handled."""
        while not self._stopping.wait(poll):
            pass

    def join(self, timeout: float = 3.0) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def kick_once(self, target: KickTarget) -> None:
        """One kick, logged; nothing it raises ends the kicker."""
        try:
            self._kick(target)
        except BerofosError as err:
            self._log.failed(target, str(err))
        except Exception as err:  # a bug in one kick must not stop the next ones
            self._log.failed(target, f"{type(err).__name__}: {err}")
        else:
            self._log.succeeded(target)

    def _kick_forever(self, target: KickTarget) -> None:
        due = self._clock()
        while not self._stopping.is_set():
            lateness = self._clock() - due
            if lateness > _LATE_FACTOR * self.interval:
                self._log.late(target, lateness)
            self.kick_once(target)
            due += self.interval
            now = self._clock()
            if due < now:  # after a stall: kick again at once, then keep the cadence
                due = now
            self._stopping.wait(due - now)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m berofos_ocf.kicker",
                                     description="Kick berofos watchdogs until SIGTERM.")
    parser.add_argument("--instance", required=True, help="the resource, for the log")
    parser.add_argument("--interval", type=float, required=True, help="seconds between kicks")
    parser.add_argument("--reply-timeout", type=float, default=2.0,
                        help="seconds a kick waits for its reply")
    parser.add_argument("--watchdog-timeout", type=float, required=True,
                        help="the devices' wdogitime, for the log")
    parser.add_argument("--port", type=int, required=True, help="the devices' GBL4 port")
    parser.add_argument("targets", nargs="+", metavar="NAME,MAC,HOST")
    return parser


def _announce_ready() -> None:
    """Tell the agent the threads run, then let go of its pipe."""
    sys.stdout.write(READY + "\n")
    sys.stdout.flush()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)


def main(argv: list[str] | None = None) -> int:
    """Kick until SIGTERM or SIGINT; 0 then, 2 for bad arguments."""
    from .agent.ocflog import open_log
    from .udp import Gbl4Client

    args = _parser().parse_args(argv)
    try:
        targets = [KickTarget.parse(text) for text in args.targets]
    except InvalidValue as err:
        sys.stderr.write(f"berofos-bypass-kicker: {err}\n")
        return 2
    debug = os.environ.get("HA_debug", "0").strip() not in ("", "0", "false", "no")
    log = open_log(os.environ, debug, name="berofos-bypass-kicker")
    udp = Gbl4Client(port=args.port, timeout=args.reply_timeout)
    kicker = Kicker(targets, kick=lambda target: udp.kick(target.mac, target.host),
                    interval=args.interval,
                    log=KickLog(log, watchdog_timeout=args.watchdog_timeout))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: kicker.stop())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # no terminal to lose, but say so
    kicker.start()
    log.info(f"kicking the watchdog of {', '.join(t.label for t in targets)} every "
             f"{args.interval:g} s (pid {os.getpid()})")
    _announce_ready()
    kicker.wait()
    kicker.join()
    log.info("stopped: no more watchdog kicks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
