"""What a shard process's exit means, the parent's exit status, and the restart backoff.

Pure code: return codes and monotonic seconds in, decisions out (the tests drive it directly).

A child's exit is read in one of two situations:

* **While the fleet runs** (nobody asked it to stop): 75 (its shard lock is busy), 2 (usage
  error or a damaged ledger) and 4 (the ledger was lost: every shard shares it) end the whole
  fleet with that status, because a restart cannot help. Anything else (a crash, a ``kill -9``,
  a forced exit, even 0) is restarted with backoff: a shard is meant to run until the fleet stops.
* **After the parent asked it to stop**: its status is its outcome. A child killed by a signal
  it did not handle may have left orders (``kill -9``), so it counts as
  :data:`~kasmm.daemon.exit_codes.ORDERS_LEFT`, except the stop signal the parent sent itself
  before the child had installed its handlers (the first thing it does, before anything that
  could trade). A forced exit (130/143: someone signalled the child twice) also may have left
  orders. A shard that was down after a crash when the stop came counts as ORDERS_LEFT too:
  the restart that would have cancelled its orders never happened.

The parent exits with the most urgent outcome (:data:`SEVERITY`): 4 > 1 > 3 > 75 > 2 > 0. A lost
ledger comes first (systemd must not restart: README "Exit status"); then orders left (a restart
cancels them, so it must win over 2, which prevents restarts); then failed profiles; then a busy
lock and a usage error, which are only ever the cause of the stop.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from kasmm.daemon import exit_codes

__all__ = [
    "FATAL",
    "SEVERITY",
    "Backoff",
    "fleet_exit_code",
    "stopped_outcome",
]

#: Exit statuses of a running child that stop the whole fleet with that status.
FATAL = frozenset({exit_codes.LEDGER_LOST, exit_codes.USAGE, 75})

#: Outcomes from most to least urgent; the parent exits with the first one any shard had.
SEVERITY = (
    exit_codes.LEDGER_LOST,
    exit_codes.ORDERS_LEFT,
    exit_codes.PROFILES_FAILED,
    75,
    exit_codes.USAGE,
    exit_codes.OK,
)

_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def stopped_outcome(returncode: int | None, sent: signal.Signals | None = None) -> int:
    """The outcome of a child that exited with ``returncode`` after the parent asked it to stop.

    :param returncode: ``Popen.returncode`` (negative: killed by that signal); ``None`` for a
        shard that was not running (down after a crash) when the stop came.
    :param sent: the stop signal the parent sent it, if any.
    """
    if returncode is None:
        return exit_codes.ORDERS_LEFT
    if returncode < 0:
        killed_by = -returncode
        if sent is not None and killed_by == sent and sent in _STOP_SIGNALS:
            # The default action: it had not installed its handlers, so it had not traded.
            return exit_codes.OK
        return exit_codes.ORDERS_LEFT
    if returncode in SEVERITY:
        return returncode
    return exit_codes.ORDERS_LEFT  # 130/143 (forced) or anything unexpected


def fleet_exit_code(outcomes: list[int]) -> int:
    """The parent's exit status: the most urgent of the shards' outcomes (:data:`SEVERITY`)."""
    for code in SEVERITY:
        if code in outcomes:
            return code
    return exit_codes.ORDERS_LEFT if outcomes else exit_codes.OK


@dataclass
class Backoff:
    """Delays between restarts of one shard: ``base * 2**k`` capped at ``cap`` seconds.

    ``k`` counts the consecutive crashes; it starts over once the shard had run for
    ``stable_s`` before crashing, so a shard that crashes once a day restarts after ``base``
    every time while one that crashes at once settles at ``cap``. Times are monotonic seconds.
    """

    base: float = 1.0
    cap: float = 60.0
    stable_s: float = 60.0
    consecutive: int = 0

    def after_crash(self, started_at: float, crashed_at: float) -> float:
        """The delay before the next start of a shard started at ``started_at`` that crashed
        at ``crashed_at``."""
        if crashed_at - started_at >= self.stable_s:
            self.consecutive = 0
        delay = min(self.cap, self.base * 2.0 ** min(self.consecutive, 30))
        self.consecutive += 1
        return delay
