"""How a shard process starts: ``python -m kasmm.fleet.child PARENT_PID kasmm-arguments...``.

Before it runs ``kasmm`` (:func:`kasmm.cli.main`) with the arguments, it ties its life to the
parent's: no orphaned shard may keep trading after the parent is gone, ``kill -9`` included.

* Linux: ``prctl(PR_SET_PDEATHSIG, SIGUSR1)``, so the kernel signals the moment the parent
  dies, and the shard stops as on a SIGTERM: every profile cancels its orders. Not SIGTERM
  itself: the kernel sends the parent-death signal again each time the child is handed to
  another thread of the dying parent on its way to a new reaper (a multi-threaded parent
  sends two or three), and a second SIGTERM is a forced exit that leaves the orders open. So
  SIGUSR1 is caught here and turned into exactly one SIGTERM.
* Elsewhere: a daemon thread that checks every :data:`POLL_S` whether the parent is still the
  parent, and sends the process that one SIGTERM if not.

Either way, a parent that died before the tie was made is caught by comparing ``getppid()``
with ``PARENT_PID`` after it: the child then exits at once, before it has loaded any profile.

This is a separate entry point rather than a ``preexec_fn``: that runs between ``fork`` and
``exec`` in a copy of a multi-threaded process, which Python documents as unsafe.

It also makes the log streams write each line with one ``write()`` (:func:`whole_lines`):
every shard shares the parent's stdout and stderr (the journal, a terminal, a file), and
``print`` writes a line's text and its newline separately when the stream writes through
(``PYTHONUNBUFFERED=1``, as the systemd units set), so two processes' lines could mix.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any, TextIO

__all__ = ["EXIT_ORPHANED", "PARENT_DEATH_SIGNAL", "POLL_S", "main", "tie_to_parent", "whole_lines"]

#: Exit status when the parent was already gone (nobody reads it: the orphan's reaper).
EXIT_ORPHANED = 70
#: How often the portable fallback checks the parent.
POLL_S = 0.5
_PR_SET_PDEATHSIG = 1
#: What the kernel sends when the parent dies (turned into one SIGTERM).
PARENT_DEATH_SIGNAL = signal.SIGUSR1


#: The parent-death signal has been turned into the one SIGTERM.
_parent_death_seen = False


def _on_parent_death(_signum: int, _frame: Any) -> None:
    # Once: later deliveries (one per thread of the dying parent) must not become a second
    # SIGTERM, which would force the exit before the orders are cancelled. Ignoring the signal
    # is not enough: a delivery that lands while this handler runs, before the ignore is in
    # place, runs the handler again *nested* (CPython runs pending handlers at its next check,
    # the one inside signal.signal() included), and that nested call would send the second
    # SIGTERM. The flag is tested and set with no such check between, so every later call
    # returns here.
    global _parent_death_seen
    if _parent_death_seen:
        return
    _parent_death_seen = True
    signal.signal(PARENT_DEATH_SIGNAL, signal.SIG_IGN)
    os.kill(os.getpid(), signal.SIGTERM)


def tie_to_parent(parent_pid: int) -> bool:
    """Arrange for SIGTERM when ``parent_pid`` (this process's parent) dies.

    :return: False if the parent is already gone (the caller must exit).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        signal.signal(PARENT_DEATH_SIGNAL, _on_parent_death)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    return os.getppid() == parent_pid


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def whole_lines(*streams: TextIO) -> None:
    """Make each stream write a line (text and newline) in one ``write()``: buffered, and
    flushed at each newline."""
    for stream in streams:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True, write_through=False)


def main(argv: list[str]) -> int:
    """``PARENT_PID ARGS...``: tie to the parent, then run ``kasmm ARGS...``."""
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m kasmm.fleet.child PARENT_PID ARGS...", file=sys.stderr)
        return 2
    if not tie_to_parent(int(argv[0])):
        return EXIT_ORPHANED
    whole_lines(sys.stdout, sys.stderr)
    from kasmm.cli import main as kasmm_main

    return kasmm_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
