"""The parent's ``/status``: one document with every shard's profiles, shards that are down too.

The document has the shape of a single supervisor's (``supervisor`` and ``profiles``), so
``kasmm status`` and anything else that reads ``/status`` work unchanged; each profile row gains
its ``shard`` (``I/N``), and a ``shards`` list says how every shard process is doing. Each shard
has its own market data (its own hub): ``markets`` lists every shard's, a market read in several
shards once, with its freshest book and the readers and failures of all (``shards``: how many
feed it; each opens its own feed).

A shard is never silently missing. The parent keeps each shard's last answer: while a shard is
down, restarting or not answering, its profiles are still listed, with the state its process
is in (``restarting``, ``starting``) or their last state marked ``stale``; the supervisor
section is unhealthy and its ``health`` names the shard. A shard that never answered has no
profiles to list, but is in ``shards`` and in ``health``.

Pure code: :func:`merge_status` takes :class:`ShardView` values, returns plain JSON values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["ShardState", "ShardView", "merge_status"]


class ShardState(StrEnum):
    """What a shard process is doing, as the parent sees it."""

    #: Spawned; its endpoint has not answered yet (its profiles are starting).
    STARTING = "starting"
    #: Running, and its endpoint answers.
    UP = "up"
    #: Running, but its endpoint stopped answering.
    UNRESPONSIVE = "unresponsive"
    #: Exited unexpectedly; waiting out the backoff before the next start.
    RESTARTING = "restarting"
    #: Asked to stop; cancelling its orders.
    STOPPING = "stopping"
    #: Exited after the parent asked it to stop, or exited for good (lock busy, ledger lost).
    STOPPED = "stopped"


#: The profile state shown for the last known profiles of a shard that is not up.
_ROW_STATE = {
    ShardState.STARTING: "starting",
    ShardState.RESTARTING: "restarting",
    ShardState.STOPPING: "stopping",
    ShardState.STOPPED: "stopped",
}


@dataclass(frozen=True, slots=True)
class ShardView:
    """One shard as the parent knows it at one moment."""

    index: int
    count: int
    state: ShardState
    pid: int | None = None
    control: str | None = None
    restarts: int = 0
    last_exit: int | None = None
    #: The shard's last ``/status`` document, however old (``None`` if it never answered).
    status: Mapping[str, Any] | None = None
    #: Seconds since that document was fetched.
    status_age_s: float | None = None

    @property
    def name(self) -> str:
        """``I/N``."""
        return f"{self.index}/{self.count}"


def _supervisor_of(view: ShardView) -> Mapping[str, Any]:
    sup = view.status.get("supervisor") if view.status is not None else None
    return sup if isinstance(sup, Mapping) else {}


def _rows(view: ShardView) -> list[dict[str, Any]]:
    profiles = view.status.get("profiles") if view.status is not None else None
    rows = []
    for row in profiles if isinstance(profiles, list) else []:
        if not isinstance(row, Mapping):
            continue
        out = {**row, "shard": view.name}
        if view.state is not ShardState.UP:
            out["stale"] = True
            if view.state in _ROW_STATE:
                out["state"] = _ROW_STATE[view.state]
        rows.append(out)
    return rows


def _groups(view: ShardView) -> list[dict[str, Any]]:
    """The shard's portfolio rows, each with its shard (a group split over shards is a row of
    each; one wholly in a shard, a row of that shard only)."""
    groups = view.status.get("portfolios") if view.status is not None else None
    out = []
    for row in groups if isinstance(groups, list) else []:
        if isinstance(row, Mapping):
            out.append(
                {
                    **row,
                    "shard": view.name,
                    **({} if view.state is ShardState.UP else {"stale": True}),
                }
            )
    return out


def _shard_problem(view: ShardView) -> str | None:
    """Why this shard makes the whole unhealthy, or None."""
    if view.state is not ShardState.UP:
        text = f"shard {view.name} {view.state}"
        if view.last_exit is not None and view.state is ShardState.RESTARTING:
            text += f" (exit {view.last_exit})"
        return text
    sup = _supervisor_of(view)
    if sup.get("healthy") is False:
        return f"shard {view.name}: {sup.get('health') or 'unhealthy'}"
    return None


def _shard_entry(view: ShardView) -> dict[str, Any]:
    sup = _supervisor_of(view)
    return {
        "shard": view.name,
        "state": str(view.state),
        "pid": view.pid,
        "control": view.control,
        "restarts": view.restarts,
        "last_exit": view.last_exit,
        "profiles_total": sup.get("profiles_total"),
        "healthy": sup.get("healthy") if view.state is ShardState.UP else False,
        "health": sup.get("health"),
        "status_age_s": None if view.status_age_s is None else round(view.status_age_s, 1),
    }


def _markets(views: Sequence[ShardView]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for v in views:
        markets = v.status.get("markets") if v.status is not None else None
        for key, row in (markets if isinstance(markets, Mapping) else {}).items():
            if not isinstance(row, Mapping):
                continue
            known = merged.get(key)
            if known is None:
                merged[key] = {**row, "shards": 1}
                continue
            age, known_age = row.get("age_s"), known.get("age_s")
            fresher = isinstance(age, int | float) and (
                not isinstance(known_age, int | float) or age < known_age
            )
            if fresher:
                known.update(source=row.get("source"), age_s=age)
            for count in ("subscribers", "failures", "books"):
                mine, theirs = known.get(count), row.get(count)
                if isinstance(mine, int) and isinstance(theirs, int):
                    known[count] = mine + theirs
            known["shards"] += 1
    return dict(sorted(merged.items()))


def _settlements(views: Sequence[ShardView]) -> dict[str, Any]:
    """Every shard reads the one ledger: an account's sweeps are the same in each, so each
    account is taken from the first shard that reports it (a scheduled one preferred, for its
    next run)."""
    merged: dict[str, Any] = {}
    for v in views:
        accounts = v.status.get("settlements") if v.status is not None else None
        for name, acct in (accounts if isinstance(accounts, Mapping) else {}).items():
            if not isinstance(acct, Mapping):
                continue
            known = merged.get(name)
            if known is None or (known.get("schedule") is None and acct.get("schedule")):
                merged[name] = dict(acct)
    return dict(sorted(merged.items()))


def merge_status(
    views: Sequence[ShardView], *, pid: int, directory: str, uptime_s: float
) -> dict[str, Any]:
    """The parent's ``/status`` document from its shards (see the module docstring)."""
    sups = [_supervisor_of(v) for v in views]
    rows = [row for v in views for row in _rows(v)]
    rows.sort(key=lambda r: str(r.get("name")))
    problems = [p for p in map(_shard_problem, views) if p is not None]
    config_errors = sorted({str(e) for s in sups for e in s.get("config_errors") or ()})
    ledger_lost = next((s["ledger_lost"] for s in sups if s.get("ledger_lost")), None)
    missing = any(bool(s.get("directory_missing")) for s in sups)
    if problems:
        health = "; ".join(problems)
    elif missing:
        health = f"ok; warning: profile directory {directory} is missing"
    else:
        health = "ok"
    return {
        "supervisor": {
            "pid": pid,
            "directory": directory,
            "shard": None,
            "processes": len(views),
            "uptime_s": round(uptime_s, 1),
            "profiles_total": len(rows),
            "reloads": min((int(s.get("reloads") or 0) for s in sups), default=0),
            "config_errors": config_errors,
            "directory_missing": missing,
            "ledger_lost": ledger_lost,
            "healthy": not problems,
            "health": health,
        },
        "shards": [_shard_entry(v) for v in views],
        "markets": _markets(views),
        "profiles": rows,
        "portfolios": sorted(
            (g for v in views for g in _groups(v)), key=lambda g: (str(g.get("name")), g["shard"])
        ),
        "settlements": _settlements(views),
    }
