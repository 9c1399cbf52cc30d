"""Exit statuses of ``kasmm supervise`` (README "Exit codes"; the systemd units rely on them).

Stdlib only, like :mod:`kasmm.daemon.signals`, which imports it before anything else loads.
"""

from __future__ import annotations

import signal

#: Every profile stopped and confirmed that its orders were cancelled.
OK = 0
#: Some profile could not confirm that its orders were cancelled. A restart cancels what is left
#: (each bot cancels its own prefix's orders when it starts), so systemd restarts on it.
ORDERS_LEFT = 1
#: A usage error (no profile directory, a ledger that cannot be opened): restarting cannot help.
USAGE = 2
#: Stopped while an enabled profile was ``failed`` (gave up after its restarts, or refused
#: credentials); every order was confirmed cancelled. systemd restarts on it.
PROFILES_FAILED = 3
#: The ledger was deleted, replaced or damaged while running: every profile was stopped. Not
#: restarted by systemd: a restart would start a fresh ledger, forgetting kill-switch halts, PnL
#: and the daily-loss baseline, so an operator must look first.
LEDGER_LOST = 4

# ``kasmm settle`` (README "Settlement to a Kaspa wallet"); 0 and USAGE as above, and
# ``EXIT_IN_USE`` (75, :mod:`kasmm.store.state_dir`) when another process settles the account.
#: A sweep was refused by the exchange, or an open one was found failed.
SETTLE_FAILED = 1
#: An exchange could not be read: nothing was decided for that account (retry later).
SETTLE_UNAVAILABLE = 3
#: ``--wait`` ran out with sweeps still on their way (they are followed by the next run).
SETTLE_PENDING = 4


def forced_exit_code(sig: signal.Signals) -> int:
    """The status of an exit forced by a second SIGTERM/SIGINT: 128 + signal (143, 130).

    The shell's convention for "killed by this signal", and non-zero, so systemd's
    ``Restart=on-failure`` restarts a process an operator killed hard (the new run cancels the
    orders the forced exit left).
    """
    return 128 + int(sig)


def stop_status(*, ledger_lost: bool, orders_left: int, failed: int) -> int:
    """The exit status after a normal stop; the most urgent condition wins."""
    if ledger_lost:
        return LEDGER_LOST
    if orders_left:
        return ORDERS_LEFT
    if failed:
        return PROFILES_FAILED
    return OK
