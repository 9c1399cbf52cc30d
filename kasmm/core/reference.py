"""Reference prices: what a profile prices its quotes off, when not its own book's mid.

A thin venue quoted off its own mid is picked off whenever the price moves first on a deep
venue. A profile's ``reference:`` names other markets (public data, shared by the supervisor);
this module decides, from the latest book of each, the one price the quoting pipeline centres on:

* **one source**: its mid; **several**: their ``median`` (robust to one bad venue), or their
  mids weighted by top-of-book depth (``depth_weighted``: the deeper venue leads);
* a source may be **converted** through another pair (KAS/USDC via USDC/USDT: multiply; via
  USDT/USDC: divide), the conversion pair with the same age rule as the source;
* a source older than ``max_age_s`` (measured from when it *arrived*, on the interval clock)
  **drops out**; with none left the decision falls back to the own mid or pauses quoting, as
  configured (``on_stale``);
* a reference further than ``max_deviation_pct`` from the own mid **pauses** quoting: a broken
  reference (a wrong pair, a dead venue's last print, a fat finger) must not drag quotes through
  the book. The own book still bounds every quote (the post-only guard in the pipeline).

Pure: frozen values in, a frozen :class:`Reference` out, no clock (``now`` is passed in).
Every decision says which source priced it (:attr:`Reference.source`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from kasmm.core.types import ZERO, Book

#: ``Reference.source`` when the own book priced the decision.
OWN_BOOK: Final = "own_book"
#: ``Reference.problem`` values (each pauses quoting: the risk rule named ``reference``).
STALE: Final = "reference_stale"
DEVIATION: Final = "reference_deviation"

Method = Literal["median", "depth_weighted"]
OnStale = Literal["own_mid", "pause"]

_TWO: Final = Decimal(2)
_HUNDRED: Final = Decimal(100)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One market to price off: ``key`` (``"<exchange>:<symbol>"``), optionally converted into
    the profile's quote asset through the market ``via`` (``invert``: divide by its mid, for a
    pair quoted the other way round)."""

    key: str
    via: str | None = None
    invert: bool = False

    @property
    def label(self) -> str:
        """How a decision names it: the key, with its conversion."""
        if self.via is None:
            return self.key
        return f"{self.key}{'/' if self.invert else '*'}{self.via}"


@dataclass(frozen=True, slots=True)
class ReferenceParams:
    """A profile's ``reference:`` block (no sources: the own book prices every decision)."""

    sources: tuple[SourceSpec, ...] = ()
    method: Method = "median"
    max_age_s: float = 5.0
    #: ``None``: no guard against the own mid.
    max_deviation_pct: float | None = None
    on_stale: OnStale = "pause"
    #: How long one trip of the ``reference`` rule pauses quoting (re-checked when it ends).
    pause_s: float = 5.0

    @property
    def keys(self) -> tuple[str, ...]:
        """Every market this reference reads (sources and conversions), each once."""
        out: list[str] = []
        for source in self.sources:
            for key in (source.key, source.via):
                if key is not None and key not in out:
                    out.append(key)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Observed:
    """What the reference needs of one market's latest book: its mid and top-of-book depth
    (base units on both sides), and when the book arrived (interval clock)."""

    mid: Decimal
    depth: Decimal
    received_at: float


def observe_book(book: Book, received_at: float) -> Observed | None:
    """A market's book as the reference reads it; ``None`` when it has no usable mid (one side
    empty, crossed, locked or not positive): such a book does not count as a fresh source."""
    if not (book.bids and book.asks):
        return None
    bid, ask = book.bids[0], book.asks[0]
    if not (bid.price.is_finite() and ask.price.is_finite()) or not ZERO < bid.price < ask.price:
        return None
    return Observed((bid.price + ask.price) / _TWO, bid.size + ask.size, received_at)


@dataclass(frozen=True, slots=True)
class Reference:
    """The decision: the price to centre quotes on (``None``: nothing to price from), which
    source priced it, and the problem that must pause quoting (``None``: none)."""

    price: Decimal | None
    source: str
    problem: str | None = None
    #: How far the reference is from the own mid, percent (``None``: not compared).
    deviation_pct: float | None = None
    #: The sources that were fresh and priced it.
    used: tuple[str, ...] = ()


def resolve(
    params: ReferenceParams,
    observed: Mapping[str, Observed],
    own_mid: Decimal | None,
    now: float,
) -> Reference:
    """The reference price at ``now`` from the latest ``observed`` book of each market.

    :param own_mid: the own book's mid (the fallback, and what the deviation guard compares
        with; ``None``: the own book has no mid, so the guard cannot judge and the reference
        is not used either: quoting needs the own book to bound it anyway).
    """
    if not params.sources:
        return Reference(own_mid, OWN_BOOK)
    fresh: list[tuple[SourceSpec, Decimal, Decimal]] = []
    for spec in params.sources:
        priced = _priced(spec, observed, now, params.max_age_s)
        if priced is not None:
            fresh.append((spec, priced[0], priced[1]))
    if not fresh:
        if params.on_stale == "own_mid":
            return Reference(own_mid, f"{OWN_BOOK} (references stale)")
        return Reference(None, "none", STALE)
    labels = tuple(spec.label for spec, _, _ in fresh)
    if len(fresh) == 1:
        price = fresh[0][1]
        source = labels[0]
    elif params.method == "median":
        price = _median([mid for _, mid, _ in fresh])
        source = f"median({','.join(labels)})"
    else:
        price = _depth_weighted([(mid, depth) for _, mid, depth in fresh])
        source = f"depth_weighted({','.join(labels)})"
    if own_mid is None or not own_mid > ZERO:
        return Reference(None, source, None, None, labels)
    moved = abs(price / own_mid - 1) * _HUNDRED
    deviation = float(moved)
    limit = params.max_deviation_pct
    if limit is not None and moved > Decimal(limit):
        return Reference(None, source, DEVIATION, deviation, labels)
    return Reference(price, source, None, deviation, labels)


def _priced(
    source: SourceSpec, observed: Mapping[str, Observed], now: float, max_age_s: float
) -> tuple[Decimal, Decimal] | None:
    """The source's mid in the profile's quote asset and its depth, or ``None`` if it (or its
    conversion) is missing or older than ``max_age_s``."""
    seen = observed.get(source.key)
    if seen is None or now - seen.received_at > max_age_s:
        return None
    if source.via is None:
        return seen.mid, seen.depth
    rate = observed.get(source.via)
    if rate is None or now - rate.received_at > max_age_s:
        return None
    return (seen.mid / rate.mid if source.invert else seen.mid * rate.mid), seen.depth


def _median(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    if n % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / _TWO


def _depth_weighted(values: list[tuple[Decimal, Decimal]]) -> Decimal:
    """Mids weighted by top-of-book depth; equal weights if no source shows any depth."""
    total = sum((depth for _, depth in values), ZERO)
    if not total > ZERO:
        return sum((mid for mid, _ in values), ZERO) / len(values)
    return sum((mid * depth for mid, depth in values), ZERO) / total
