"""How a shard process starts: ``python -m kasmm.fleet.child PARENT_PID kasmm-arguments...``.

Before it runs ``kasmm`` (:func:`kasmm.cli.main`) with the arguments, it ties its life to the
parent's: no orphaned shard may keep trading after the parent is gone, ``kill -9`` included.

* Linux: ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, so the kernel sends SIGTERM the moment the
  parent dies, and the shard stops as on any SIGTERM: every profile cancels its orders (a second
  SIGTERM, from an operator or systemd, forces the exit). The parent spawns from its main
  thread, which lives as long as the process (the signal follows the thread that forked).
* Elsewhere: a daemon thread that checks every :data:`POLL_S` whether the parent is still the
  parent, and sends the process SIGTERM if not.

Either way, a parent that died before the tie was made is caught by comparing ``getppid()``
with ``PARENT_PID`` after it: the child then exits at once, before it has loaded any profile.

This is a separate entry point rather than a ``preexec_fn``: that runs between ``fork`` and
``exec`` in a copy of a multi-threaded process, which Python documents as unsafe.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["EXIT_ORPHANED", "POLL_S", "main", "tie_to_parent"]

#: Exit status when the parent was already gone (nobody reads it: the orphan's reaper).
EXIT_ORPHANED = 70
#: How often the portable fallback checks the parent.
POLL_S = 0.5
_PR_SET_PDEATHSIG = 1


def tie_to_parent(parent_pid: int) -> bool:
    """Arrange for SIGTERM when ``parent_pid`` (this process's parent) dies.

    :return: False if the parent is already gone (the caller must exit).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    return os.getppid() == parent_pid


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    """``PARENT_PID ARGS...``: tie to the parent, then run ``kasmm ARGS...``."""
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m kasmm.fleet.child PARENT_PID ARGS...", file=sys.stderr)
        return 2
    if not tie_to_parent(int(argv[0])):
        return EXIT_ORPHANED
    from kasmm.cli import main as kasmm_main

    return kasmm_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
