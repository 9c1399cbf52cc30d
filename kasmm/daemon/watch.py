"""Following the profile directory: edits, and the directory itself vanishing or being swapped.

watchfiles (inotify) watches an inode, not a path. Delete the directory and the watch dies
silently, so a recreated directory was never seen again; point a symlink elsewhere
(``ln -sfn release2 current``, an atomic deploy) and it keeps watching the old release. So
:func:`watch_directory` also polls the directory's identity (its resolved path, device and
inode) every ``poll_s``: when that changes, or the directory disappears or comes back, it asks
for a reload and watches whatever the path names now. The same poll compares the directory's
mtime with its value when the last reload began, a backstop for entries added while a new watch
was being set up (or events inotify dropped). The reload itself decides what a missing
directory means (the supervisor keeps its profiles running and says so loudly).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import anyio
import structlog

log = structlog.get_logger("kasmm.supervisor")

__all__ = ["DirIdentity", "dir_identity", "watch_directory"]


class DirIdentity(NamedTuple):
    """What a directory path names right now."""

    real_path: str
    device: int
    inode: int


def dir_identity(directory: os.PathLike[str] | str) -> DirIdentity | None:
    """The identity of the directory ``directory`` resolves to, or None if there is none."""
    try:
        real = os.path.realpath(directory)
        st = os.stat(real)
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return DirIdentity(real, st.st_dev, st.st_ino)


def _yaml_only(_change: Any, path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


async def watch_directory(
    directory: os.PathLike[str] | str,
    on_change: Callable[[], Awaitable[Any]],
    *,
    stop: anyio.Event,
    debounce_ms: int = 100,
    poll_s: float = 1.0,
) -> None:
    """Await ``on_change`` after each debounced batch of YAML changes in ``directory``, and
    whenever the directory disappears, reappears or starts naming another directory.

    Watches the directory, not single files, because editors save by writing a temporary file
    and renaming it over the original. Returns once ``stop`` is set (watchfiles would otherwise
    block for its Rust timeout on shutdown).
    """
    await _Follower(directory, on_change, stop, debounce_ms, poll_s).run()


class _Follower:
    """One :func:`watch_directory` call's state."""

    def __init__(
        self,
        directory: os.PathLike[str] | str,
        on_change: Callable[[], Awaitable[Any]],
        stop: anyio.Event,
        debounce_ms: int,
        poll_s: float,
    ) -> None:
        self.directory = directory
        self.on_change = on_change
        self.stop = stop
        self.debounce_ms = debounce_ms
        self.poll_s = poll_s
        #: The directory's mtime when the latest reload began: entries added, removed or renamed
        #: since then (e.g. while a new watch was being set up) show as a different mtime.
        self.reloaded_mtime = _mtime_ns(directory)

    async def reload(self) -> None:
        self.reloaded_mtime = _mtime_ns(self.directory)
        try:
            await self.on_change()
        except Exception as exc:  # a failed reload must not end the watch, or the process
            log.error("reload_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)

    async def run(self) -> None:
        watched = dir_identity(self.directory)
        while not self.stop.is_set():
            if watched is not None:
                await self._watch_until_replaced(watched)
            else:
                with anyio.move_on_after(self.poll_s):
                    await self.stop.wait()
            if self.stop.is_set():
                return
            now = dir_identity(self.directory)
            if now != watched:
                log.info(
                    "profile_dir_changed",
                    directory=os.fspath(self.directory),
                    was=None if watched is None else watched.real_path,
                    now=None if now is None else now.real_path,
                )
                watched = now
                await self.reload()

    async def _watch_until_replaced(self, watched: DirIdentity) -> None:
        """Reload on each change inside ``watched`` until ``stop``, or until the path names
        something else (or nothing)."""
        from watchfiles import awatch

        done = anyio.Event()

        async def poll() -> None:
            try:
                while not done.is_set():
                    with anyio.move_on_after(self.poll_s):
                        await self.stop.wait()
                    if self.stop.is_set() or dir_identity(self.directory) != watched:
                        done.set()
                    elif _mtime_ns(self.directory) != self.reloaded_mtime:
                        # A change inotify did not report (within a whole poll interval).
                        await self.reload()
            finally:
                # Also when cancelled: the watch's thread cannot be, and only stops when this
                # is set (else it runs on for watchfiles' 5 s timeout, holding up the cancel).
                done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(poll)
            try:
                # The resolved path: a symlink swap is then a change of identity (see poll).
                async for _changes in awatch(
                    watched.real_path,
                    watch_filter=_yaml_only,
                    debounce=self.debounce_ms,
                    step=20,
                    stop_event=done,
                    recursive=False,
                    force_polling=None,
                ):
                    await self.reload()
            except Exception as exc:  # e.g. the directory vanished before the watch began
                log.warning("profile_dir_watch_failed", error=f"{type(exc).__name__}: {exc}")
                await done.wait()
            done.set()


def _mtime_ns(directory: os.PathLike[str] | str) -> int | None:
    try:
        return os.stat(directory).st_mtime_ns
    except (OSError, ValueError):
        return None
