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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from prometheus_client.utils import floatToGoString as _untyped_go_float

__all__ = ["LINES_PER_PIECE", "TextBackend"]

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
        self, escapes: _Escapes, name: str, doc: str, kind: str, labels: Sequence[str]
    ) -> None:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"metric name {name!r} outside the legacy character set")
        self.escapes = escapes
        self.labels = _Labels(labels)
        doc = doc.replace("\\", r"\\").replace("\n", r"\n")
        self.head = f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"
        self.pieces: list[bytes] = []
        self._lines: list[str] = []

    def _line(self, selector: str, value: float) -> None:
        lines = self._lines
        lines.append(f"{selector} {_go_float(value)}\n")
        if len(lines) >= LINES_PER_PIECE:
            self.pieces.append("".join(lines).encode())
            lines.clear()

    def flush(self) -> None:
        """Close the last, partial piece."""
        if self._lines:
            self.pieces.append("".join(self._lines).encode())
            self._lines.clear()


class _Gauge(_Family):
    def __init__(self, escapes: _Escapes, name: str, doc: str, labels: Sequence[str]) -> None:
        super().__init__(escapes, name, doc, "gauge", labels)
        self.sample = name

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self._line(self.labels.selector(self.sample, labels, self.escapes), value)


class _Counter(_Gauge):
    def __init__(self, escapes: _Escapes, name: str, doc: str, labels: Sequence[str]) -> None:
        # As CounterMetricFamily: the family is named without _total, its sample with it.
        total = name.removesuffix("_total") + "_total"
        _Family.__init__(self, escapes, total, doc, "counter", labels)
        self.sample = total


class _Histogram(_Family):
    def __init__(self, escapes: _Escapes, name: str, doc: str, labels: Sequence[str]) -> None:
        super().__init__(escapes, name, doc, "histogram", labels)
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
        escapes = self.escapes
        selector = self.labels.selector
        if len(labels) != self.labels.count:
            raise ValueError(f"{self.bucket}: {len(labels)} label values for {self.labels.count}")
        before = "".join(f'{prefix}{escapes[labels[i]]}",' for prefix, i in self.before_le)
        after = "".join(f',{prefix}{escapes[labels[i]]}"' for prefix, i in self.after_le)
        head, tail = f'{self.bucket}{{{before}le="', f'"{after}}}'
        for le, count in buckets:
            self._line(f"{head}{escapes[le]}{tail}", count)
        # As HistogramMetricFamily: no count and sum with negative buckets or without a sum.
        if float(buckets[0][0]) >= 0 and sum_value is not None:
            self._line(selector(self.count, labels, escapes), buckets[-1][1])
            self._line(selector(self.sum, labels, escapes), sum_value)


class TextBackend:
    """A :class:`~kasmm.obs.families.Backend` whose families write exposition text."""

    def __init__(self) -> None:
        self._escapes = _Escapes()
        self._families: list[_Family] = []

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> _Gauge:
        return self._add(_Gauge(self._escapes, name, doc, labels))

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> _Counter:
        return self._add(_Counter(self._escapes, name, doc, labels))

    def histogram(self, name: str, doc: str, labels: Sequence[str]) -> _Histogram:
        return self._add(_Histogram(self._escapes, name, doc, labels))

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
