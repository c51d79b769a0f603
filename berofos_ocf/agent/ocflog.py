"""Logging and exit reasons through resource-agents' ``ocf.py``.

``ocf.py`` is found in ``OCF_FUNCTIONS_DIR`` (default ``$OCF_ROOT/lib/heartbeat``).
It sends log lines where Pacemaker wants them (``HA_LOGFACILITY``, ``HA_LOGFILE``,
``HA_DEBUGLOG``) but gets the level wrong: it compares ``HA_debug`` with the
integer 0, so under Pacemaker (which always sets the string ``"0"`` or ``"1"``)
it logs debug lines unconditionally, and without ``HA_debug`` it drops INFO.
:func:`open_log` sets the level from ``HA_debug`` itself: DEBUG when it is on,
INFO otherwise.

When ``ocf.py`` is missing, a stand-in writes to stderr (which Pacemaker logs)
so that stop still works; start and validate-all then fail with
OCF_ERR_INSTALLED.
"""

from __future__ import annotations

__all__ = ["AgentLog", "open_log"]

import logging
import os
import sys

_FORMAT = "[%(process)s]:\t%(asctime)s%(levelname)s: %(message)s"


class AgentLog:
    """Log lines and exit reasons, whatever the backend.

    ``exit_reason`` is for failures (also logged as an error, as ``ocf.py``
    does); ``degraded`` gives the same ``ocf-exit-reason:`` line for a
    degraded monitor but logs it as a warning, since it repeats every interval.
    """

    def __init__(self, logger, exit_reason, *, prefix: str = "ocf-exit-reason:",
                 missing: str | None = None) -> None:
        self._logger = logger
        self._exit_reason = exit_reason
        self._prefix = prefix
        self.missing = missing  # why ocf.py could not be loaded, if it could not

    def debug(self, message: str) -> None:
        self._logger.debug(message)

    def info(self, message: str) -> None:
        self._logger.info(message)

    def warning(self, message: str) -> None:
        self._logger.warning(message)

    def error(self, message: str) -> None:
        self._logger.error(message)

    def exit_reason(self, message: str) -> None:
        """The ``ocf-exit-reason:`` line that crm_mon shows (also logged as an error)."""
        self._exit_reason(message)

    def degraded(self, message: str) -> None:
        sys.stderr.write(f"{self._prefix}{message}\n")
        sys.stderr.flush()
        self._logger.warning(message)


def _functions_dir(environ) -> str:
    root = environ.get("OCF_ROOT") or "/usr/lib/ocf"
    return environ.get("OCF_FUNCTIONS_DIR") or os.path.join(root, "lib", "heartbeat")


def _load_ocf(path: str):
    # Loaded from its file, not by name from sys.path: another module called
    # "ocf" must not stand in for it.
    import importlib.util

    spec = importlib.util.spec_from_file_location("ocf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def open_log(environ, debug: bool, name: str = "berofos") -> AgentLog:
    """Load ``ocf.py`` and return a log at the level ``HA_debug`` asks for.

    Run by hand (no ``HA_LOGFILE``, a terminal on stderr), the log also goes to
    stderr; an exit reason is printed there once, as its ``ocf-exit-reason:``
    line, never a second time as a log line.
    """
    prefix = environ.get("OCF_EXIT_REASON_PREFIX", "ocf-exit-reason:")
    path = os.path.join(_functions_dir(environ), "ocf.py")
    if not os.path.exists(path):
        return _stderr_log(prefix, f"resource-agents' ocf.py not found: {path}")
    try:
        ocf = _load_ocf(path)
    except Exception as err:  # e.g. HA_LOGFILE in a missing directory: stop must still work
        return _stderr_log(prefix, f"{path} failed to load: {type(err).__name__}: {err}")
    level = logging.DEBUG if debug else logging.INFO
    syslog = ocf.SyslogLibHandler
    if (not environ.get("HA_LOGFILE") and sys.stderr.isatty()
            and not _has_stderr(ocf.log, syslog)):
        ocf.log.addHandler(logging.StreamHandler(sys.stderr))
    # ocf.py's format names the Python file that logged (ocflog.py) and prints
    # "(None)" without OCF_RESOURCE_INSTANCE: the line should name the agent.
    instance = environ.get("OCF_RESOURCE_INSTANCE")
    label = f"{name}({instance})" if instance else name
    formatter = logging.Formatter(label.replace("%", "%%") + _FORMAT, datefmt=ocf.HA_DATEFMT)
    for handler in ocf.log.handlers:
        handler.setLevel(level)
        if not isinstance(handler, syslog):
            handler.setFormatter(formatter)
        if _writes_to_stderr(handler, syslog):
            handler.addFilter(_not_an_exit_reason)

    def exit_reason(message: str) -> None:
        sys.stderr.write(f"{prefix}{message}\n")
        sys.stderr.flush()
        ocf.log.error(message, extra={"exit_reason": True})

    return AgentLog(ocf.log, exit_reason, prefix=prefix)


def _writes_to_stderr(handler: logging.Handler, syslog: type) -> bool:
    # ocf.py's syslog handler is a StreamHandler on stderr that writes to syslog
    return (isinstance(handler, logging.StreamHandler) and not isinstance(handler, syslog)
            and getattr(handler, "stream", None) is sys.stderr)


def _has_stderr(logger: logging.Logger, syslog: type) -> bool:
    return any(_writes_to_stderr(handler, syslog) for handler in logger.handlers)


def _not_an_exit_reason(record: logging.LogRecord) -> bool:
    # its ocf-exit-reason: line is already on stderr
    return not getattr(record, "exit_reason", False)


def _stderr_log(prefix: str, missing: str) -> AgentLog:
    logger = logging.getLogger("berofos")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("berofos: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.warning(missing)

    def exit_reason(message: str) -> None:
        sys.stderr.write(f"{prefix}{message}\n")
        sys.stderr.flush()

    return AgentLog(logger, exit_reason, prefix=prefix, missing=missing)
