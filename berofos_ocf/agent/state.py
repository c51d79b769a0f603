"""What the agent keeps on the node: the role marker and the promotion score.

The device has no notion of "started on node X" and its relays stay where they
are after a demote, so the role of an instance lives in a local file under
``/run/resource-agents`` (tmpfs: gone after a reboot, as a started instance
should be).  The promotion score is a transient node attribute set with
``crm_attribute --promotion``; outside a promotable clone (ocf-tester,
``crm_resource --force-*``) there is no attribute to set, and a failure of
``crm_attribute`` never fails an action.
"""

from __future__ import annotations

__all__ = ["UNPROMOTED", "PROMOTED", "RoleMarker", "PromotionScore", "run_command"]

import os

UNPROMOTED = "unpromoted"
PROMOTED = "promoted"
_ROLES = (UNPROMOTED, PROMOTED)


class RoleMarker:
    """``<dir>/berofos-<instance>.role`` holding ``unpromoted`` or ``promoted``."""

    def __init__(self, directory: str, instance: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, f"berofos-{instance}.role")

    def read(self) -> str | None:
        """The role, or None when the instance is not started here."""
        try:
            with open(self.path, encoding="ascii") as handle:
                role = handle.read().strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError):
            return UNPROMOTED  # unreadable marker: started, role unknown → the safe one
        return role if role in _ROLES else UNPROMOTED

    def write(self, role: str) -> None:
        """Replace the marker atomically (a half-written role must not exist)."""
        os.makedirs(self.directory, mode=0o755, exist_ok=True)
        temporary = f"{self.path}.{os.getpid()}"
        try:
            with open(temporary, "w", encoding="ascii") as handle:
                handle.write(role + "\n")
            os.replace(temporary, self.path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def remove(self) -> None:
        """Remove the marker, and any temporary left by an action killed mid-write."""
        prefix = os.path.basename(self.path) + "."
        try:
            leftovers = [name for name in os.listdir(self.directory) if name.startswith(prefix)]
        except FileNotFoundError:
            leftovers = []
        for name in [os.path.basename(self.path)] + leftovers:
            try:
                os.unlink(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass


def run_command(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run a command without a shell; return (exit status, stdout, stderr). Never raises."""
    import subprocess

    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=max(timeout, 0.1), text=True)
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]}: no answer within {timeout:.1f} s"
    except OSError as err:
        return 126, "", f"{argv[0]}: {err.strerror}"
    return result.returncode, result.stdout, result.stderr.strip()


class PromotionScore:
    """This node's promotion score for the clone, through ``crm_attribute``.

    ``enabled`` is False outside a promotable clone: then nothing is run.
    ``runner(argv, timeout)`` returns (status, stdout, stderr), see :func:`run_command`;
    ``timeout()`` gives the seconds each call may take.

    Withholding sets ``-INFINITY`` rather than deleting: a node without a score
    still gets role=Promoted location scores added to a base of -1, so a
    preferred node that cannot reach the devices would be promoted anyway.
    Only stop deletes the score.
    """

    def __init__(self, instance: str, node: str, *, enabled: bool, log, runner=run_command,
                 timeout=lambda: 5.0) -> None:
        self.instance = instance
        self.node = node
        self.enabled = enabled
        self._log = log
        self._runner = runner
        self._timeout = timeout

    def _run(self, what: str, *arguments: str) -> None:
        if not self.enabled:
            return
        argv = ["crm_attribute", f"--promotion={self.instance}", "--node", self.node,
                "--lifetime", "reboot", *arguments]
        status, _, error = self._runner(argv, self._timeout())
        if status != 0:
            self._log.warning(f"could not {what} the promotion score of {self.node} "
                              f"(crm_attribute {' '.join(arguments)}): "
                              f"{error or f'exit status {status}'}")

    def set(self, score: int) -> None:
        self._log.debug(f"promotion score of {self.node}: {score}")
        self._run("set", f"--update={score}")

    def withhold(self) -> None:
        """This node must not be promoted, whatever location rules prefer it."""
        self._log.debug(f"promotion score of {self.node}: -INFINITY (withheld)")
        # one argument: a separate "-INFINITY" is parsed as options -I -N FINITY
        self._run("withhold", "--update=-INFINITY")

    def delete(self) -> None:
        """No score at all: the instance is stopped."""
        self._log.debug(f"promotion score of {self.node}: deleted")
        self._run("delete", "--delete")
