"""Shared helpers of the bench scripts (not a benchmark itself).

Only the public kasmm API is used; nothing here is imported from ``tests/``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.obs.logs import configure_logging
from kasmm.venues.base import Venue
from kasmm.venues.factory import build_venue
from kasmm.venues.sim import SimVenue

_DEVNULL: Any = None


def quiet_logging(level: str = "info") -> None:
    """Render logs as JSON (the production format off a terminal) into /dev/null.

    The rendering cost of the events a run emits (fills at ``info``) stays in the measurement,
    while the bench output remains readable.
    """
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    configure_logging(fmt="json", level=level, stream=_DEVNULL)


def sim_profile_yaml(
    name: str,
    *,
    seed: int,
    market: str,
    spread_bps: float = 14.0,
    levels: int = 3,
    size: int = 1500,
    refresh: str = "{}",
    rate_limit: str = "{capacity: 1000, refill_per_s: 1000}",
    strategy: str = "{type: fixed_spread}",
) -> str:
    """A sim profile (same shape as the demo profile ``profiles/kas-usdt-sim.yaml``)."""
    tight = min(spread_bps, 8.0)
    aggressive = f"{{spread_bps: {tight}, size: {size}, levels: 2, level_step_bps: 4}}"
    return textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: sim
          market: {market}
          seed: {seed}
        symbol: KAS/USDT
        modes:
          aggressive: {aggressive}
          passive: {{spread_bps: {spread_bps}, size: {size}, levels: {levels}, level_step_bps: 6}}
        mode: passive
        strategy: {strategy}
        refresh: {refresh}
        rate_limit: {rate_limit}
        """
    )


def write_atomic(directory: Path, name: str, text: str) -> Path:
    """Write ``name.yaml`` the way editors save: a temporary file renamed over the original."""
    path = directory / f"{name}.yaml"
    tmp = directory / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(path)
    return path


def innermost_sim(venue: Any) -> SimVenue:
    """The ``SimVenue`` at the bottom of a chain of wrappers (each holding ``.inner``)."""
    seen = venue
    while not isinstance(seen, SimVenue):
        seen = seen.inner
    return seen


@dataclass
class VenueRecorder:
    """A venue factory that builds exactly what ``build_venue`` builds (the sim venue with the
    production wrappers: rate limiter, request deadline) and remembers each ``SimVenue``."""

    venues: dict[str, list[SimVenue]] = field(default_factory=lambda: defaultdict(list))

    def factory(self, profile: Profile, *args: Any) -> Venue:
        assert isinstance(profile.venue, SimVenueConfig)
        venue = build_venue(profile, *args)  # (profile, clock[, limiter]) as the supervisor calls
        self.venues[profile.name].append(innermost_sim(venue))
        return venue

    def last(self, name: str) -> SimVenue:
        return self.venues[name][-1]

    def all(self) -> list[SimVenue]:
        return [v for vs in self.venues.values() for v in vs]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (``q`` in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def current_rss_bytes() -> int:
    """Resident set size right now (``/proc/self/statm``), not the peak."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


class OtherLoad:
    """CPU the rest of the machine used while this process measured (``/proc/stat`` busy time
    minus this process's own CPU time), in cores. Non-zero means other work shared the CPUs and
    the figures of that run are disturbed."""

    def __init__(self) -> None:
        self._busy0 = self._busy_s()
        self._own0 = time.process_time()
        self._wall0 = time.perf_counter()

    @staticmethod
    def _busy_s() -> float:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
        idle = fields[3] + fields[4]  # idle + iowait
        return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")

    def cores(self) -> float:
        wall = time.perf_counter() - self._wall0
        other = (self._busy_s() - self._busy0) - (time.process_time() - self._own0)
        return max(0.0, other / wall) if wall > 0 else 0.0


def wait_for_idle(max_wait_s: float, threshold_cores: float = 0.15) -> float:
    """Wait (at most ``max_wait_s``) for a second in which other processes use less than
    ``threshold_cores`` of CPU; return the other load of the last second measured."""
    deadline = time.monotonic() + max_wait_s
    while True:
        probe = OtherLoad()
        time.sleep(1.0)
        load = probe.cores()
        if load < threshold_cores or time.monotonic() >= deadline:
            return load


def machine_facts() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_1m_at_start": os.getloadavg()[0],
    }


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain fixed-width table on stdout."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def print_json_line(payload: dict[str, Any]) -> None:
    """The machine-readable result: one JSON object on the last line of stdout."""
    print(json.dumps(payload, sort_keys=True, default=str))
    sys.stdout.flush()
