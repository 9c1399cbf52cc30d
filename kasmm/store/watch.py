"""Noticing that the ledger's files were deleted or replaced under the open connection.

An open SQLite connection keeps working on the files it opened: delete ``kasmm.sqlite`` (or
rename another database over it) and every later commit still "succeeds", into an unlinked
inode that is gone when the process ends, so a fill or a halt recorded after that is lost. The
``-wal`` and ``-shm`` files matter as much: commits live in the ``-wal`` until a checkpoint, so
deleting it loses them if the process then dies; deleting the ``-shm`` lets the next process
(another shard, ``kasmm reset``) build a second index of the same log, and the two overwrite
each other's commits.

So the identity (device, inode) of each of the three files is taken at open and compared with
what the path names now, by ``os.stat`` only (microseconds). SQLite holds all three files open
for as long as the connection is open, so their inode numbers cannot be reused meanwhile, and it
never deletes or recreates them while any connection has the database open. Nothing here opens
the database file: closing any descriptor of it would drop SQLite's POSIX locks.

Once lost, always lost: every later :meth:`FileWatch.check` raises again.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from kasmm.errors import LedgerLost

log = structlog.get_logger("kasmm.store")

#: The database file and the two files SQLite keeps next to it in WAL mode.
SUFFIXES = ("", "-wal", "-shm")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class FileWatch:
    """The identities of a ledger's files at open, checked against the paths on demand.

    Create it right after the connection's first read, when SQLite has opened all three files;
    a file absent then (not the case in WAL mode) is not watched.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        files = (f"{path}{suffix}" for suffix in SUFFIXES)  # str: a cheaper stat than Path
        self._files = {f: ident for f in files if (ident := _identity(f)) is not None}
        self._lost: str | None = None

    @property
    def lost(self) -> str | None:
        """Why the ledger is lost (the :class:`LedgerLost` message), or None."""
        return self._lost

    def check(self) -> None:
        """Raise :class:`LedgerLost` unless every watched file is still the one opened.

        :raises LedgerLost: ``"<file>: deleted while in use"`` or ``"<file>: replaced while in
            use"``; and again on every later call.
        """
        if self._lost is None:
            for f, ident in self._files.items():
                now = _identity(f)
                if now != ident:
                    self.lose(f"{f}: {'deleted' if now is None else 'replaced'} while in use")
                    break
        if self._lost is not None:
            raise LedgerLost(self._lost)

    def lose(self, reason: str) -> LedgerLost:
        """Mark the ledger lost for good (the first reason wins); return the error to raise."""
        if self._lost is None:
            self._lost = reason
            log.error("ledger_lost", path=str(self.path), reason=reason)
        return LedgerLost(self._lost)
