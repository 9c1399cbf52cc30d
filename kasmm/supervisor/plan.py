"""What a reload changes: a pure diff of the running profiles against the directory's.

The rules, by profile name and config hash:

* added (enabled, not running) -> start;
* removed, or now ``enabled: false`` -> stop;
* changed config -> restart (stop, then start the new version);
* a running profile whose task has ended (a crash its restart loop could not contain) ->
  restart;
* same config -> unchanged (the running bot is not touched);
* a running profile whose file no longer validates is kept on its last good version (it is
  classified as above with its running config, so it stays unchanged).

No I/O here: the caller loads the directory, hashes the configs and resolves the file paths it
compares (symlinks included), then applies the plan.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = ["DesiredProfile", "ReloadPlan", "RunningProfile", "plan_reload"]


class RunningProfile(NamedTuple):
    """A profile the supervisor runs now."""

    config_hash: str
    #: The file it came from, in the form the caller compares with ``invalid_files``.
    path: Path
    #: Its task has ended (nothing runs it any more, although it is still listed).
    ended: bool = False


class DesiredProfile(NamedTuple):
    """A profile the directory declares now."""

    config_hash: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """Names to start, stop, restart and leave alone, each in a stable order."""

    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    #: Running profiles whose file no longer validates: they keep running (also listed in
    #: ``unchanged``, or in ``restart`` when their task had ended).
    kept_last_good: tuple[str, ...] = ()


def plan_reload(
    running: Mapping[str, RunningProfile],
    desired: Mapping[str, DesiredProfile],
    invalid_files: Collection[Path] = (),
) -> ReloadPlan:
    """Diff ``running`` against ``desired``.

    :param running: the running profiles by name.
    :param desired: every profile the directory's valid files declare, enabled or not.
    :param invalid_files: files that failed to validate (compared with ``RunningProfile.path``).
    :return: ``stop`` in the order of ``running``; ``start``, ``restart`` and ``unchanged`` in
        the order of ``desired``, then the kept ones in the order of ``running``.
    """
    wanted = {name: d.config_hash for name, d in desired.items() if d.enabled}
    kept = tuple(
        name for name, r in running.items() if name not in wanted and r.path in invalid_files
    )
    for name in kept:
        wanted[name] = running[name].config_hash
    start: list[str] = []
    restart: list[str] = []
    unchanged: list[str] = []
    for name, config_hash in wanted.items():
        current = running.get(name)
        if current is None:
            start.append(name)
        elif current.config_hash != config_hash or current.ended:
            restart.append(name)
        else:
            unchanged.append(name)
    return ReloadPlan(
        start=tuple(start),
        stop=tuple(name for name in running if name not in wanted),
        restart=tuple(restart),
        unchanged=tuple(unchanged),
        kept_last_good=kept,
    )
