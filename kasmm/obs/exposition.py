"""The Prometheus text format (0.0.4), written line by line as the collector adds samples.

``prometheus_client.generate_latest`` works from ``Sample`` objects (a named tuple and a label
dict each, ~340,000 of them at 2,000 profiles), re-validates every label name of every sample
with a regex, then joins and encodes the whole ~38 MB body in two C calls of ~30 ms that nothing
can interrupt; creating and freeing that many container objects also sets off full garbage
collections that walk all of them. :class:`TextBackend` makes families whose ``add_metric``
writes the sample's line at once, with each family's label order, escaping and Go float
formatting worked out once; lines are joined and encoded every :data:`LINES_PER_PIECE`, so a
scrape holds a few thousand ``bytes`` pieces and no per-sample objects, and each step of the
work is small. The bytes are exactly what ``generate_latest`` writes for the same calls on
prometheus_client's families (the tests feed both and compare).

Only what kasmm's families use is supported: gauges, counters and histograms with names in the
legacy character set, label values as strings, no timestamps, exemplars or ``_created``.

Scrape after scrape most series are written again unchanged: the label sets of a profile stay,
and many values (a quiet profile's counters, the buckets of a venue endpoint it did not call)
do not move in 5 s. A :class:`SeriesCache` passed to successive backends (the exporter keeps
one) remembers each series' selector and last value with the text written for it, so an
unchanged series costs a dict lookup and a comparison, and a changed one only its new value's
text. A line depends on nothing but its family, label values and value, so a reused line is
the bytes the library would write (the tests compare scrape after scrape).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from prometheus_client.utils import floatToGoString as _untyped_go_float

__all__ = ["LINES_PER_PIECE", "SeriesCache", "TextBackend"]

_F = TypeVar("_F", bound="_Family")

#: Sample lines joined into one piece (~25 KB of kasmm's lines).
LINES_PER_PIECE = 200

#: Python float -> Go's text for it, as the library writes values (``1e+06``, ``+Inf``, ``NaN``).
_go_float: Callable[[float], str] = _untyped_go_float
#: Names the library writes unchanged (the legacy character sets; ``__`` labels are reserved).
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"(?!__)[a-zA-Z_][a-zA-Z0-9_]*")


class _Escapes(dict[str, str]):
    """Label value -> its escaped form, computed once per distinct value of a scrape."""

    def __missing__(self, value: str) -> str:
        escaped = self[value] = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        return escaped


def _same(a: float, b: float) -> bool:
    """``a`` and ``b`` are written alike: equal, and of the same sign if zero (``0.0 == -0.0``,
    but the library writes ``-0.0``). NaN equals nothing, so it is always written afresh."""
    return a == b and (a != 0 or math.copysign(1.0, a) == math.copysign(1.0, b))


def _same_sum(a: float | None, b: float | None) -> bool:
    """A histogram's sums ``a`` and ``b`` are written alike (``None``: none written)."""
    if a is None or b is None:
        return a is b
    return _same(a, b)


class SeriesCache:
    """Each family's series as the last scrape wrote them, for the next scrape to reuse.

    Per family (by name, type and label names): label values -> what was written for them
    (see :class:`_Gauge` and :class:`_Histogram`). A scrape takes each series' entry out of
    the previous scrape's and puts it (or its replacement) into its own, so only the series
    it wrote again are kept: those of a removed profile leave the cache with it. A scrape cut
    short only costs the next one the entries it had taken (an entry maps inputs to their text
    and is exact whenever it was made).

    Taking rather than reading matters to the cyclic GC, which counts tracked objects (tuples,
    lists) allocated net of those freed and collects the young generation every 20,000
    (:data:`kasmm.supervisor.daemon.GC_THRESHOLDS`): taking an entry frees the previous
    scrape's key when the new one goes in, and a changed series frees the entry it replaces
    at once, so a scrape of 500 profiles (~110,000 series) leaves as many tracked objects as it
    found. Reading instead (keeping every new key until the old dict goes) set off two or three
    young collections of ~10-20 ms in every scrape. Entries hold only strings and floats, so
    the GC stops tracking them (and their keys) the first time it sees them.
    """

    def __init__(self) -> None:
        self._families: dict[tuple[str, str, tuple[str, ...]], dict[tuple[str, ...], Any]] = {}

    def previous(self, key: tuple[str, str, tuple[str, ...]]) -> dict[tuple[str, ...], Any]:
        """The entries the last scrape left for the family ``key`` (empty at first)."""
        return self._families.get(key, {})

    def keep(
        self, key: tuple[str, str, tuple[str, ...]], entries: dict[tuple[str, ...], Any]
    ) -> None:
        """Replace the family's entries with those of the scrape that ends."""
        self._families[key] = entries


class _Labels:
    """A family's label names, in the order generate_latest writes them (sorted by name)."""

    __slots__ = ("count", "written")

    def __init__(self, names: Sequence[str]) -> None:
        if not all(_LABEL_NAME.fullmatch(n) for n in names):
            raise ValueError(f"label names {tuple(names)} outside the legacy character set")
        self.count = len(names)
        #: ``('name="', index of its value)`` in writing order.
        self.written = [
            (f'{names[i]}="', i) for i in sorted(range(len(names)), key=names.__getitem__)
        ]

    def selector(self, sample: str, values: Sequence[str], escapes: _Escapes) -> str:
        """``sample{a="x",b="y"}`` for these label values (given in declaration order)."""
        if len(values) != self.count:
            raise ValueError(f"{sample}: {len(values)} label values for {self.count} labels")
        if not values:
            return sample
        pairs = ",".join(f'{prefix}{escapes[values[i]]}"' for prefix, i in self.written)
        return f"{sample}{{{pairs}}}"


class _Family:
    """One family's HELP/TYPE head and its sample lines, in pieces."""

    def __init__(
        self,
        escapes: _Escapes,
        cache: SeriesCache,
        name: str,
        doc: str,
        kind: str,
        labels: Sequence[str],
    ) -> None:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"metric name {name!r} outside the legacy character set")
        self.escapes = escapes
        self.labels = _Labels(labels)
        doc = doc.replace("\\", r"\\").replace("\n", r"\n")
        self.head = f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"
        self.pieces: list[bytes] = []
        self._lines: list[str] = []
        self._cache = cache
        self._cache_key = (name, kind, tuple(labels))
        #: The last scrape's entries, and this scrape's (label values -> entry).
        self._before = cache.previous(self._cache_key)
        self._now: dict[tuple[str, ...], Any] = {}

    def _add(self, key: tuple[str, ...], entry: tuple[Any, ...], lines: Sequence[str]) -> None:
        """Write ``lines`` for the series ``key``, whose cache entry is ``entry``."""
        self._now[key] = entry
        pending = self._lines
        pending.extend(lines)
        if len(pending) >= LINES_PER_PIECE:
            self.pieces.append("".join(pending).encode())
            pending.clear()

    def flush(self) -> None:
        """Close the last, partial piece, and leave this scrape's entries to the next."""
        if self._lines:
            self.pieces.append("".join(self._lines).encode())
            self._lines.clear()
        self._cache.keep(self._cache_key, self._now)


class _Gauge(_Family):
    """Entries: label values -> ``(value, line)``."""

    def __init__(
        self, escapes: _Escapes, cache: SeriesCache, name: str, doc: str, labels: Sequence[str]
    ) -> None:
        super().__init__(escapes, cache, name, doc, "gauge", labels)
        self.sample = name

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        key = tuple(labels)
        entry = self._before.pop(key, None)
        if entry is None:
            selector = self.labels.selector(self.sample, labels, self.escapes)
            entry = (value, f"{selector} {_go_float(value)}\n")
        elif entry[0] is not value and not (
            entry[0] == value and (value or _same(entry[0], value))
        ):
            # Changed: neither the same object nor _same (inlined: a nonzero equal value is
            # written alike, so the sign check only runs for zeros). The line up to its last
            # space is the selector (a value's text has no space; label values may).
            line = entry[1]
            entry = (value, f"{line[: line.rindex(' ')]} {_go_float(value)}\n")
        # _add, inlined: this runs for most of a scrape's ~220 lines per profile.
        self._now[key] = entry
        lines = self._lines
        lines.append(entry[1])
        if len(lines) >= LINES_PER_PIECE:
            self.pieces.append("".join(lines).encode())
            lines.clear()


class _Counter(_Gauge):
    def __init__(
        self, escapes: _Escapes, cache: SeriesCache, name: str, doc: str, labels: Sequence[str]
    ) -> None:
        # As CounterMetricFamily: the family is named without _total, its sample with it.
        total = name.removesuffix("_total") + "_total"
        _Family.__init__(self, escapes, cache, total, doc, "counter", labels)
        self.sample = total


class _Histogram(_Family):
    """Entries: label values -> ``(buckets, sum, lines)``: a histogram's lines, reused while
    its buckets and sum stay equal. The bucket counts are compared with ``==`` (they are counts
    of observations, so never the ``-0.0`` that equals ``0.0`` but is written apart), and the
    ``buckets`` passed are kept as they are (the caller does not change them afterwards)."""

    def __init__(
        self, escapes: _Escapes, cache: SeriesCache, name: str, doc: str, labels: Sequence[str]
    ) -> None:
        super().__init__(escapes, cache, name, doc, "histogram", labels)
        self.bucket = name + "_bucket"
        self.count = name + "_count"
        self.sum = name + "_sum"
        # The bucket lines' labels, sorted with "le" among them: the labels written before
        # it and after it, so each bucket line is the same prefix and suffix around its bound.
        written = _Labels((*labels, "le")).written
        at = next(n for n, (_, i) in enumerate(written) if i == len(labels))
        self.before_le, self.after_le = written[:at], written[at + 1 :]

    def add_metric(
        self, labels: Sequence[str], buckets: Sequence[tuple[str, float]], sum_value: float | None
    ) -> None:
        key = tuple(labels)
        entry = self._before.pop(key, None)
        if entry is None or entry[0] != buckets or not _same_sum(entry[1], sum_value):
            entry = (buckets, sum_value, self._write(labels, buckets, sum_value))
        self._add(key, entry, entry[2])

    def _write(
        self, labels: Sequence[str], buckets: Sequence[tuple[str, float]], sum_value: float | None
    ) -> tuple[str, ...]:
        """The histogram's lines, as HistogramMetricFamily's samples are written."""
        escapes = self.escapes
        selector = self.labels.selector
        if len(labels) != self.labels.count:
            raise ValueError(f"{self.bucket}: {len(labels)} label values for {self.labels.count}")
        before = "".join(f'{prefix}{escapes[labels[i]]}",' for prefix, i in self.before_le)
        after = "".join(f',{prefix}{escapes[labels[i]]}"' for prefix, i in self.after_le)
        head, tail = f'{self.bucket}{{{before}le="', f'"{after}}}'
        lines = [f"{head}{escapes[le]}{tail} {_go_float(count)}\n" for le, count in buckets]
        # As HistogramMetricFamily: no count and sum with negative buckets or without a sum.
        if float(buckets[0][0]) >= 0 and sum_value is not None:
            lines.append(f"{selector(self.count, labels, escapes)} {_go_float(buckets[-1][1])}\n")
            lines.append(f"{selector(self.sum, labels, escapes)} {_go_float(sum_value)}\n")
        return tuple(lines)  # kept: a tuple of strings is soon untracked by the GC, a list never


class TextBackend:
    """A :class:`~kasmm.obs.families.Backend` whose families write exposition text."""

    def __init__(self, cache: SeriesCache | None = None) -> None:
        """:param cache: the series written by the previous scrape (a fresh one if omitted)."""
        self._escapes = _Escapes()
        self._cache = SeriesCache() if cache is None else cache
        self._families: list[_Family] = []

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> _Gauge:
        return self._add(_Gauge(self._escapes, self._cache, name, doc, labels))

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> _Counter:
        return self._add(_Counter(self._escapes, self._cache, name, doc, labels))

    def histogram(self, name: str, doc: str, labels: Sequence[str]) -> _Histogram:
        return self._add(_Histogram(self._escapes, self._cache, name, doc, labels))

    def _add(self, family: _F) -> _F:
        self._families.append(family)
        return family

    def pieces(self) -> Iterator[bytes]:
        """The body, in order: each family's head, then its pieces (taken, not copied)."""
        for family in self._families:
            family.flush()
            yield family.head.encode()
            yield from family.pieces
            family.pieces = []
