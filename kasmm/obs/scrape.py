"""``/metrics`` without stalling the bots: the body is built on the event loop, in slices.

Rendering everything in one synchronous call (``generate_latest``) held the loop for 0.3-0.6 s
at 150 profiles and 7.7-9.2 s at 2,000, during which no bot reacted. :class:`MetricsExporter`
builds the same bytes in small steps and, whenever ``slice_s`` (2 ms) of work has been done,
sleeps three times as long as the slice took (``SCRAPE_SHARE``, 25 % of the loop at most). Only
yielding let the scrape take a slice every turn of the loop: at 500 profiles the bots need
~60 % of it, they queued behind the slices, and the probe's lag p99 during a scrape was
~25-35 ms (17 ms over all, 5 ms between scrapes); sleeping gave 8-10 ms over all, for a scrape
of ~1 s instead of ~0.4 s. The steps are:

1. one profile per step, :meth:`SupervisorCollector.fill` reads the live objects and the
   :class:`~kasmm.obs.exposition.TextBackend` writes each sample's line at once (so a profile's
   series are consistent with each other, and no per-sample objects pile up); a series whose
   labels and value are those of the last build reuses its line from the exporter's
   :class:`~kasmm.obs.exposition.SeriesCache`;
2. the pieces (~25 KB each) are grouped into ~1 MB chunks, which the control endpoint sends
   one after the other without ever joining them.

Why not a worker thread? The bots' state is mutated on the loop, so reading it from a thread
races (dicts changing size while iterated); only the rendering could move. But it is pure
Python: under the GIL a thread adds no core, it only lets the interpreter interrupt it every
5 ms (``sys.getswitchinterval()``), and a one-call join and encode of the 38 MB body at 2,000
profiles are C calls of ~30 ms that nothing interrupts. Slicing on the loop bounds every stall
by our own budget, keeps the bots first in line, needs no locks and no copy of the state.

On a loop that is already saturated (a turn taking hundreds of ms), 2 ms per turn would starve
the scrape past Prometheus' timeout, just when the metrics matter most; a slice may then last
``LOOP_SHARE`` (20 %) of the loop's last turn, so the scrape adds a fifth to a lag that is
there anyway instead of never finishing.

Concurrent scrapes share one build (single flight), and a body younger than ``max_age_s`` (1 s)
is served again, so a client scraping in a loop cannot keep the process rendering.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from kasmm.obs.exposition import SeriesCache, TextBackend
from kasmm.obs.families import Families
from kasmm.obs.metrics import LoopLagMonitor, SupervisorCollector

if TYPE_CHECKING:
    from kasmm.supervisor import Supervisor

__all__ = ["CHUNK_BYTES", "LOOP_SHARE", "SCRAPE_SHARE", "SLICE_S", "MetricsExporter"]

#: Work done between two yields to the event loop, in seconds.
SLICE_S = 0.002
#: On a loop slower than that, a slice may last this share of the loop's last turn.
LOOP_SHARE = 0.2
#: Target size of the body's chunks (what the control endpoint writes at a time).
CHUNK_BYTES = 1024 * 1024
#: A body younger than this is served again instead of being rebuilt.
MAX_AGE_S = 1.0
#: The share of the loop's wall time a scrape takes at most: after each slice it sleeps for
#: ``1 / SCRAPE_SHARE - 1`` times the slice (6 ms after 2 ms).
SCRAPE_SHARE = 0.25


def runtime_registry() -> CollectorRegistry:
    """A registry of the standard ``process_*``, ``python_gc_*`` and ``python_info`` series."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class MetricsExporter:
    """Builds the ``/metrics`` body of a supervisor without blocking its event loop.

    Pass :meth:`scrape` as the control endpoint's ``metrics`` callback. The output is what
    ``render(build_registry(supervisor))`` returns for the same state, cut into chunks.

    :param runtime: also export the process, GC and platform series.
    :param slice_s: work between two yields to the loop (``time.perf_counter`` seconds).
    :param chunk_bytes: target size of the body's chunks.
    :param max_age_s: reuse a body whose gathering started less than this long ago.
    :param clock: monotonic seconds for that age.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        loop_lag: LoopLagMonitor | None = None,
        runtime: bool = True,
        slice_s: float = SLICE_S,
        chunk_bytes: int = CHUNK_BYTES,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collector = SupervisorCollector(supervisor, loop_lag=loop_lag)
        self.runtime = runtime_registry() if runtime else None
        self.slice_s = slice_s
        self.chunk_bytes = chunk_bytes
        self.max_age_s = max_age_s
        self._clock = clock
        #: Bodies built so far (concurrent and repeated scrapes do not add to it).
        self.builds = 0
        #: The most CPU time one slice took, over all builds (seconds; CPU rather than wall
        #: time, so that other processes taking the machine do not inflate it).
        self.longest_slice_s = 0.0
        self._slice_began = 0.0
        self._slice_cpu_began = 0.0
        self._budget = slice_s
        self._body: list[bytes] | None = None
        self._built_at = 0.0
        #: The series of the last build: an unchanged one is not written again.
        self._series = SeriesCache()
        self._building: anyio.Event | None = None

    async def scrape(self) -> tuple[list[bytes], str]:
        """The body (as chunks) and its content type."""
        while True:
            body = self._body
            if body is not None and self._clock() - self._built_at < self.max_age_s:
                return body, CONTENT_TYPE_LATEST
            if self._building is None:
                break
            # Someone is building: share their result. If their client went away and the
            # build was cancelled, the loop comes back here and this scrape builds instead.
            await self._building.wait()
        done = self._building = anyio.Event()
        try:
            started = self._clock()
            body = await self._build()
            self._body, self._built_at = body, started
            self.builds += 1
        finally:
            self._building = None
            done.set()
        return body, CONTENT_TYPE_LATEST

    async def _build(self) -> list[bytes]:
        backend = TextBackend(self._series)
        self._slice_began, self._slice_cpu_began = time.perf_counter(), time.thread_time()
        self._budget = self.slice_s
        for _ in self.collector.fill(Families(backend)):
            await self._maybe_yield()
        chunks: list[bytes] = []
        pending: list[bytes] = []
        size = 0
        for piece in backend.pieces():
            pending.append(piece)
            size += len(piece)
            if size >= self.chunk_bytes:
                chunks.append(b"".join(pending))
                pending, size = [], 0
                await self._maybe_yield()
        if self.runtime is not None:
            pending.append(generate_latest(self.runtime))  # ~60 samples
        if pending:
            chunks.append(b"".join(pending))
        self._note_slice()
        return chunks

    async def _maybe_yield(self) -> None:
        """Yield to the event loop if this slice has used its budget.

        The budget is ``slice_s``, or ``LOOP_SHARE`` of the CPU time the loop spent before it
        came back after the last yield if that is more: on a loop so busy that a turn takes
        300 ms, 2 ms slices would starve the scrape (Prometheus gives up after 10 s), while
        60 ms adds a fifth to a lag that is already there.
        """
        now = time.perf_counter()
        if now - self._slice_began >= self._budget:
            cpu = self._note_slice()
            # Sleep rather than only yield: the loop then runs the scrape at most SCRAPE_SHARE
            # of the time, and bots that need most of the rest do not queue behind it.
            await anyio.sleep((now - self._slice_began) * (1 - SCRAPE_SHARE) / SCRAPE_SHARE)
            # The loop's turn in this thread's CPU time: the time the OS gave other processes
            # says nothing about how busy the loop is.
            self._slice_began, self._slice_cpu_began = time.perf_counter(), time.thread_time()
            self._budget = max(self.slice_s, LOOP_SHARE * (self._slice_cpu_began - cpu))

    def _note_slice(self) -> float:
        """Record the slice that ends now; return the thread's CPU clock."""
        cpu = time.thread_time()
        self.longest_slice_s = max(self.longest_slice_s, cpu - self._slice_cpu_began)
        return cpu
