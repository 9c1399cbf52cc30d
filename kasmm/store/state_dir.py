"""The state directory: where it is, what lives in it, and who may use it.

Layout::

    state/                      0700 (created so; an existing directory keeps its mode)
        kasmm.sqlite            the ledger every profile records to
        locks/                  0700
          supervise-D.lock      held by `kasmm supervise DIR` (D: a hash of DIR's path)
          supervise-D-I-N.lock  held by `kasmm supervise DIR --shard I/N`
                                (supervise-D.lock by `kasmm supervise DIR --processes N`)
          profile-NAME.lock     held while profile NAME's bot runs (supervise or `kasmm run`)

Every lock is an exclusive ``flock`` on its file, which then holds the holder's PID and role
(``1234 kasmm supervise /etc/kasmm/profiles --shard 0/2``), written after locking. The kernel
drops a lock when its holder exits for any reason, ``kill -9`` included, so a crash never blocks
a restart and there is nothing stale to clean up (the files stay; only the lock matters). Lock
files are 0600. ``flock`` needs a local file system: on NFS, keep the state directory local.

Two guarantees, from two kinds of lock:

* **One supervisor per shard of a profile directory, no overlapping shards.** A supervisor
  locks its own file, then refuses to start if an *overlapping* supervisor of the same
  directory holds its file: shards ``I/N`` and ``J/M`` can run a common profile exactly when
  ``I = J (mod gcd(N, M))`` (profile names hash to ``h mod N``), so ``0/2`` overlaps ``0/4`` and
  ``2/4`` but not ``1/4``; the unsharded supervisor (``0/1``) overlaps every shard. Supervisors
  of *different* directories may share a state directory (one ledger, one supervisor per
  directory): the profile locks keep a name found in both from running twice.
  ``kasmm supervise DIR --processes N`` (a parent running shards ``0/N`` .. ``N-1/N`` as its
  child processes) holds the unsharded lock, so it overlaps every other supervisor of DIR; its
  own children, and only they, pass over it (the holder is their parent process, and its
  role names the same N), then take their shard locks as usual.
* **No profile runs twice.** Whatever runs a profile's bot (a supervisor of any shard, or
  ``kasmm run``) holds the profile's lock for as long as the bot runs, shutdown included.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from kasmm.errors import KasmmError

__all__ = [
    "EXIT_IN_USE",
    "Holder",
    "LockBusy",
    "LockFile",
    "ProfileLocks",
    "fleet_role",
    "hold_profile",
    "ledger_path",
    "lock_supervisor",
    "locks_dir",
    "prepare_state_dir",
    "resolve_state_dir",
    "shards_overlap",
    "supervisor_role",
]

#: Exit status of `kasmm supervise` / `kasmm run` refused because another process holds the
#: state directory (or the profile). EX_TEMPFAIL of sysexits.h: it may work once that one ends.
EXIT_IN_USE = 75

_SUPERVISE_LOCK_RE = re.compile(r"supervise-([0-9a-f]{12})(?:-([0-9]+)-([0-9]+))?\.lock")


# --- paths --------------------------------------------------------------------------------


def resolve_state_dir(state_dir: Path | None) -> Path:
    """``--state-dir``, else ``$STATE_DIRECTORY`` (systemd), else ``./state``."""
    if state_dir is not None:
        return state_dir
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    return Path("state")


def ledger_path(state_dir: Path) -> Path:
    """Where the ledger lives inside a state directory."""
    return state_dir / "kasmm.sqlite"


def locks_dir(state_dir: Path) -> Path:
    """Where the lock files live inside a state directory."""
    return state_dir / "locks"


def prepare_state_dir(state_dir: Path) -> Path:
    """Create the state directory and its ``locks/`` (0700) if missing; return ``state_dir``."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    locks_dir(state_dir).mkdir(exist_ok=True, mode=0o700)
    return state_dir


# --- one lock file ------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says (``pid`` is ``None`` while the holder is writing)."""

    pid: int | None
    role: str

    def __str__(self) -> str:
        who = f"PID {self.pid}" if self.pid is not None else "another process (PID unknown)"
        return f"{who} ({self.role})" if self.role else who


class LockBusy(KasmmError):
    """Another process holds the lock: ``holder`` says who, ``path`` which file."""

    def __init__(self, message: str, *, path: Path, holder: Holder) -> None:
        super().__init__(message)
        self.path = path
        self.holder = holder


def read_holder(path: Path) -> Holder:
    """The holder a lock file names (best effort: the file may be empty or half written)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    first, _, rest = text.strip().partition(" ")
    pid = int(first) if first.isascii() and first.isdigit() else None
    return Holder(pid, rest.strip() if pid is not None else "")


class LockFile:
    """An exclusive ``flock`` on ``path`` holding ``"<pid> <role>"``; a context manager.

    :meth:`acquire` never waits: it raises :class:`LockBusy` naming the holder instead.
    """

    def __init__(self, path: Path, role: str) -> None:
        self.path = path
        self.role = role
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> LockFile:
        """Take the lock and write this process's PID and role into the file.

        :raises LockBusy: another open file (another process, or another :class:`LockFile` on
            the same path) holds it.
        :raises OSError: the file cannot be opened (permissions, a symlink planted there).
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held")
        # O_NOFOLLOW: a symlink planted in the locks directory must not redirect the write.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            if not _try_flock(fd, fcntl.LOCK_EX):
                holder = read_holder(self.path)
                raise LockBusy(f"{self.path} is held by {holder}", path=self.path, holder=holder)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self.role}\n".encode(), 0)
        except BaseException:
            os.close(fd)  # also drops the lock if it was taken
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the file (no stale PID to mislead a reader) and drop the lock; idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)

    def __enter__(self) -> LockFile:
        return self if self.held else self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _try_flock(fd: int, kind: int) -> bool:
    """``flock(fd, kind | LOCK_NB)``: True when taken, False when another holds it."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def _is_held(path: Path) -> bool:
    """Whether some process holds ``path``'s lock now (probed with a shared lock, let go)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False  # vanished or unreadable: nobody we can see holds it
    try:
        return not _try_flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)  # drops the probe's shared lock


# --- supervisors --------------------------------------------------------------------------


def shards_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether shards ``a = (I, N)`` and ``b = (J, M)`` can hold a common profile.

    A profile is in shard ``h mod N`` for its name's hash ``h``; ``h = I (mod N)`` and
    ``h = J (mod M)`` have a solution exactly when ``I = J (mod gcd(N, M))`` (Chinese remainder
    theorem). The unsharded supervisor is ``(0, 1)`` and overlaps everything.
    """
    return (a[0] - b[0]) % math.gcd(a[1], b[1]) == 0


def supervisor_role(profiles: Path, shard: tuple[int, int] | None) -> str:
    """How the supervisor of ``profiles`` (a directory) names itself in the locks it holds."""
    role = f"kasmm supervise {os.path.abspath(profiles)}"
    return role if shard is None else f"{role} --shard {shard[0]}/{shard[1]}"


def fleet_role(profiles: Path, processes: int) -> str:
    """How ``kasmm supervise PROFILES --processes N`` names itself in its lock."""
    return f"{supervisor_role(profiles, None)} --processes {processes}"


def lock_supervisor(
    state_dir: Path,
    profiles: Path,
    shard: tuple[int, int] | None,
    *,
    processes: int | None = None,
) -> LockFile:
    """Take the lock of supervising ``shard`` (``None``: all) of the directory ``profiles``.

    :param state_dir: a prepared state directory (:func:`prepare_state_dir`).
    :param processes: (with ``shard=None``) the lock is taken for a parent that runs this many
        shard processes: the same file as the unsharded supervisor's, with :func:`fleet_role`.
    :return: the held lock; keep it (and the process) alive while supervising.
    :raises LockBusy: the same shard, or one that overlaps it, of the same directory is
        supervised by another process: ``state dir D/ is in use by PID P (kasmm supervise ...)``.
    """
    directory = locks_dir(state_dir)
    # The directory as the command line names it (made absolute): a stable key. Resolving
    # symlinks would give a release-per-directory deploy a new key on every release.
    key = hashlib.sha256(os.path.abspath(profiles).encode()).hexdigest()[:12]
    mine = (0, 1) if shard is None else shard
    name = f"supervise-{key}.lock" if shard is None else f"supervise-{key}-{mine[0]}-{mine[1]}.lock"
    role = supervisor_role(profiles, shard)
    if processes is not None:
        if shard is not None:
            raise ValueError("a parent of shard processes supervises every shard")
        role = fleet_role(profiles, processes)
    lock = LockFile(directory / name, role)
    try:
        lock.acquire()
    except LockBusy as exc:
        raise _state_dir_busy(state_dir, exc.path, exc.holder) from None
    # Ours is held before we look at the others, and every supervisor does the same: of two
    # overlapping supervisors starting at once, at least the later one to look sees the other.
    try:
        for path in sorted(directory.iterdir()):
            match = _SUPERVISE_LOCK_RE.fullmatch(path.name)
            if match is None or match[1] != key or path.name == name:
                continue
            other = (0, 1) if match[2] is None else (int(match[2]), int(match[3]))
            if other[1] == 0 or not shards_overlap(mine, other) or not _is_held(path):
                continue
            holder = read_holder(path)
            if shard is not None and _is_our_parent(holder, profiles, shard[1]):
                continue
            raise _state_dir_busy(state_dir, path, holder)
    except BaseException:
        lock.release()
        raise
    return lock


def _is_our_parent(holder: Holder, profiles: Path, count: int) -> bool:
    """Whether ``holder`` is the ``--processes`` parent that started this shard process.

    A held lock's PID is a live process, and a live process's PID is unique, so a holder
    whose PID is our parent's is our parent.
    """
    return holder.pid == os.getppid() and holder.role == fleet_role(profiles, count)


def _state_dir_busy(state_dir: Path, path: Path, holder: Holder) -> LockBusy:
    return LockBusy(f"state dir {state_dir}/ is in use by {holder}", path=path, holder=holder)


# --- profiles -----------------------------------------------------------------------------


class ProfileLocks:
    """The per-profile locks of one state directory, taken as ``role`` (who runs the bots).

    Profile names are ``[A-Za-z0-9][A-Za-z0-9_.-]*`` (the schema), safe as file names.
    """

    def __init__(self, state_dir: Path, role: str) -> None:
        self.state_dir = state_dir
        self.role = role

    def path(self, name: str) -> Path:
        """The lock file of profile ``name``."""
        return locks_dir(self.state_dir) / f"profile-{name}.lock"

    def hold(self, name: str) -> LockFile:
        """Take profile ``name``'s lock now; release it (``with``) once its bot has stopped.

        :raises LockBusy: another process runs the profile: ``profile NAME is already running
            in PID P (ROLE)``.
        """
        lock = LockFile(self.path(name), self.role)
        try:
            return lock.acquire()
        except LockBusy as exc:
            raise LockBusy(
                f"profile {name} is already running in {exc.holder}",
                path=exc.path,
                holder=exc.holder,
            ) from None


def hold_profile(
    locks: ProfileLocks | None, name: str
) -> contextlib.AbstractContextManager[object]:
    """``locks.hold(name)``, or nothing to hold without a state directory (tests, backtests)."""
    return contextlib.nullcontext() if locks is None else locks.hold(name)
