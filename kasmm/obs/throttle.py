"""Warnings that outside parties can trigger, logged at a bounded rate.

Anything a client can cause at will (a connection that times out, a malformed request, a flood
of idle sockets) must not turn into one log line per event: any local user could then fill the
disk or bury the lines that matter. :class:`ThrottledWarnings` logs the first event of each
reason in full (so the operator sees a concrete example, with its fields), counts the rest, and
every ``interval_s`` writes one summary line with the counts by reason. The reasons are a small
fixed set chosen by the caller, so the bookkeeping is bounded too.

It reads no clock: the window is closed by :meth:`flush`, which :meth:`run` calls every
``interval_s`` from the owner's task group (tests call it directly).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
from anyio.abc import TaskStatus

__all__ = ["ThrottledWarnings"]


class ThrottledWarnings:
    """At most one full warning per reason per window, plus one summary line per window.

    :param logger: a structlog logger (anything with ``warning(event, **fields)``).
    :param event: the event name of the full lines; the summary is ``<event>_suppressed``.
    :param interval_s: length of a window, in seconds.
    """

    def __init__(self, logger: Any, event: str, *, interval_s: float = 60.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.logger = logger
        self.event = event
        self.interval_s = interval_s
        self._logged: set[str] = set()
        self.suppressed: Counter[str] = Counter()

    def warn(self, reason: str, **fields: Any) -> None:
        """Log ``event`` with ``reason`` and ``fields``, unless the window already has one."""
        if reason in self._logged:
            self.suppressed[reason] += 1
            return
        self._logged.add(reason)
        self.logger.warning(self.event, reason=reason, **fields)

    def flush(self) -> None:
        """Close the window: summarise what was suppressed in it (if anything), start afresh."""
        if self.suppressed:
            self.logger.warning(
                f"{self.event}_suppressed",
                count=sum(self.suppressed.values()),
                by_reason=dict(sorted(self.suppressed.items())),
                interval_s=self.interval_s,
            )
        self.suppressed.clear()
        self._logged.clear()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Flush every ``interval_s`` until cancelled, and once more then."""
        task_status.started()
        try:
            while True:
                await anyio.sleep(self.interval_s)
                self.flush()
        finally:
            self.flush()  # on shutdown too: the last window's counts are not lost
