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


class AgentLog:
    """Log lines and exit reasons, whatever the backend."""

    def __init__(self, logger, exit_reason, *, missing: str | None = None) -> None:
        self._logger = logger
        self._exit_reason = exit_reason
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


def _functions_dir(environ) -> str:
    root = environ.get("OCF_ROOT") or "/usr/lib/ocf"
    return environ.get("OCF_FUNCTIONS_DIR") or os.path.join(root, "lib", "heartbeat")


def open_log(environ, debug: bool) -> AgentLog:
    """Load ``ocf.py`` and return a log at the level ``HA_debug`` asks for."""
    directory = _functions_dir(environ)
    if directory not in sys.path:
        sys.path.append(directory)
    try:
        import ocf
    except ImportError:
        return _stderr_log(environ, f"resource-agents' ocf.py not found in {directory}")
    level = logging.DEBUG if debug else logging.INFO
    for handler in ocf.log.handlers:
        handler.setLevel(level)
        # ocf.py names the Python file that logged (ocflog.py); the log
        # should name the agent, as shell agents' lines do.
        formatter = handler.formatter
        if formatter is not None and "%(filename)s" in (formatter._fmt or ""):
            handler.setFormatter(logging.Formatter(
                formatter._fmt.replace("%(filename)s", "berofos"), formatter.datefmt))
    return AgentLog(ocf.logger, ocf.ocf_exit_reason)


def _stderr_log(environ, missing: str) -> AgentLog:
    logger = logging.getLogger("berofos")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("berofos: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    prefix = environ.get("OCF_EXIT_REASON_PREFIX", "ocf-exit-reason:")

    def exit_reason(message: str) -> None:
        sys.stderr.write(f"{prefix}{message}\n")
        sys.stderr.flush()

    return AgentLog(logger, exit_reason, missing=missing)
