"""Numbers for people: money, prices and sizes rounded to the market's precision.

Every reader that shows a number to a person (``kasmm status``, ``kasmm top``, the ``kasmm run``
summary, ``kasmm pnl``, the report, the backtest table, ``/status`` rows) goes through
:class:`NumberFormat`, so one market shows one precision everywhere. Machine-readable outputs
that promise exact values (``kasmm run --summary-json``, ``kasmm pnl --json``'s ``exact``
fields) use :func:`plain` instead: the exact value, never in exponent notation.

The rule (KAS/USDT, tick ``0.000001``: prices ``0.080012``, PnL ``5.92``):

* **prices** are shown to the tick's decimal places (``tick 0.000001`` -> 6 places);
* **money** (quote amounts: PnL, fees, equity, volume in quote) to ``max(2, tick places - 4)``
  places. Every kasmm market has KAS as its base, so the tick tracks the value of one unit of
  the quote currency: 2 places on KAS/USDT (``1e-6`` tick, 0.01 USDT), 6 on KAS/BTC (``1e-10``
  tick, 0.000001 BTC, about a tenth of a US cent at today's prices): in both, a cent's worth;
* **sizes** (base amounts) to the lot's decimal places;
* without a tick (the ledger does not store one, and a bot knows it only once its venue
  connected) the tick is taken as ``10^-4`` of the price level: ``0.08`` -> ``0.000001``, which
  is what venues list for KAS pairs; without any price either, prices and money fall back to
  :data:`FALLBACK_PLACES` with trailing zeros trimmed;
* rounding is half-even (``Decimal``'s banker's rounding, as the ledger's sums), output is
  fixed-point (``0E-7`` is ``0.00``), a negative value that rounds to zero loses its sign
  (never ``-0.00``), and rounded money keeps its places (``5.90``) so columns line up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext

__all__ = [
    "FALLBACK_PLACES",
    "MONEY_MIN_PLACES",
    "PNL_PARTS",
    "NumberFormat",
    "fixed",
    "money_places",
    "plain",
    "pnl_dict",
    "step_places",
]

#: Money is never shown with fewer places than this (a cent of a fiat-like quote currency).
MONEY_MIN_PLACES = 2
#: Money is shown this many places coarser than the tick (see the module docstring).
MONEY_BELOW_TICK = 4
#: Places when nothing about the market is known (trailing zeros trimmed).
FALLBACK_PLACES = 8
#: The PnL attribution's parts, in display order (:class:`kasmm.core.pnl.PnlParts` fields).
PNL_PARTS: tuple[str, ...] = ("spread_capture", "revaluation", "fees", "net", "hold", "vs_hold")

Number = Decimal | float | int


def _decimal(value: Number) -> Decimal | None:
    """``value`` as a finite Decimal (a float through its shortest repr), else None."""
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    return Decimal(value)


def step_places(step: Decimal) -> int:
    """Decimal places of a tick or lot: ``0.000001`` -> 6, ``0.50`` -> 1, ``1`` and ``10`` -> 0."""
    if not step.is_finite() or step <= 0:
        return 0
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def money_places(tick: Decimal) -> int:
    """Places money is shown with on a market of price tick ``tick`` (the module's rule)."""
    return max(MONEY_MIN_PLACES, step_places(tick) - MONEY_BELOW_TICK)


def fixed(value: Number | None, places: int, *, sign: bool = False) -> str:
    """``value`` rounded half-even to ``places`` decimals, fixed-point, never ``-0``.

    ``None``, NaN and infinities are ``-``. With ``sign``, a positive result gets a ``+``.
    """
    number = None if value is None else _decimal(value)
    if number is None:
        return "-"
    with localcontext() as ctx:
        ctx.prec = max(60, number.adjusted() + places + 2)
        try:
            rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
        except InvalidOperation:  # pragma: no cover - prec above covers every finite value
            return plain(number)
    if rounded.is_zero():
        rounded = abs(rounded)
    text = f"{rounded:f}"
    return f"+{text}" if sign and rounded > 0 else text


def plain(value: Number | None) -> str:
    """The exact value in fixed-point notation, trailing zeros trimmed: ``0E-7`` -> ``0``,
    ``1.50`` -> ``1.5``, ``1E+3`` -> ``1000``. For JSON that promises exact strings."""
    number = None if value is None else _decimal(value)
    if number is None:
        return "-"
    text = f"{number:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """How one market's numbers are shown (see the module docstring for the rule).

    ``None`` places mean "unknown": :data:`FALLBACK_PLACES` with trailing zeros trimmed.
    """

    price_places: int | None = None
    money_places: int | None = None
    size_places: int | None = None

    @classmethod
    def for_market(
        cls, tick: Decimal | None, lot: Decimal | None = None, price: Number | None = None
    ) -> NumberFormat:
        """The format of a market with price tick ``tick`` and size lot ``lot``; without a
        tick, the one of a market trading near ``price`` (see :meth:`for_price`)."""
        if tick is None or not tick.is_finite() or tick <= 0:
            base = cls.for_price(price)
        else:
            base = cls(step_places(tick), money_places(tick))
        size = step_places(lot) if lot is not None and lot.is_finite() and lot > 0 else None
        return cls(base.price_places, base.money_places, size)

    @classmethod
    def for_price(cls, price: Number | None) -> NumberFormat:
        """The format of a market whose tick is unknown, trading near ``price``: the tick is
        taken as ``10^-4`` of the price's leading digit (``0.08`` -> ``0.000001``)."""
        number = None if price is None else _decimal(price)
        if number is None or number <= 0:
            return cls()
        tick = Decimal(1).scaleb(number.adjusted() - MONEY_BELOW_TICK)
        return cls(step_places(tick), money_places(tick))

    def price(self, value: Number | None) -> str:
        """A price at the tick's places."""
        return self._show(value, self.price_places)

    def money(self, value: Number | None, *, sign: bool = False) -> str:
        """A quote amount (PnL, fees, equity, notional) at the money places."""
        return self._show(value, self.money_places, sign=sign)

    def size(self, value: Number | None) -> str:
        """A base amount at the lot's places."""
        return self._show(value, self.size_places)

    def pnl(self, parts: object) -> dict[str, str]:
        """The six parts of a :class:`~kasmm.core.pnl.PnlParts` as rounded money strings."""
        return pnl_dict(parts, self)

    @staticmethod
    def _show(value: Number | None, places: int | None, *, sign: bool = False) -> str:
        if places is not None:
            return fixed(value, places, sign=sign)
        rounded = fixed(value, FALLBACK_PLACES)
        if rounded == "-":
            return rounded
        text = plain(Decimal(rounded))
        if sign and text not in ("-", "0") and not text.startswith("-"):
            return f"+{text}"
        return text


def pnl_dict(parts: object, fmt: NumberFormat | None = None) -> dict[str, str]:
    """``{part: text}`` for the fields of ``parts`` named in :data:`PNL_PARTS` (a
    :class:`~kasmm.core.pnl.PnlParts`, or any object or mapping with those names): rounded
    with ``fmt``, or exact (:func:`plain`) without one."""
    out: dict[str, str] = {}
    for name in PNL_PARTS:
        value = parts[name] if isinstance(parts, Mapping) else getattr(parts, name)
        out[name] = fmt.money(value) if fmt is not None else plain(value)
    return out
