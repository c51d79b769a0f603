"""What the agent keeps in the cluster: the promotion score; and how it runs commands.

The files it keeps on the node (role marker, instance state) are in
:mod:`berofos_ocf.runstate`.  The promotion score is a transient node attribute set with
``crm_attribute --promotion``; outside a promotable clone (ocf-tester,
``crm_resource --force-*``) there is no attribute to set, and a failure of
``crm_attribute`` never fails an action.
"""

from __future__ import annotations

__all__ = ["PromotionScore", "run_command", "WITHHELD"]

# Pacemaker's -INFINITY: this node must not be promoted, whatever location
# rules prefer it.
WITHHELD = -1_000_000


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
        """Set the score; :data:`WITHHELD` (or lower) is written as ``-INFINITY``."""
        if score <= WITHHELD:
            self.withhold()
            return
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
