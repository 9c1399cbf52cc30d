"""What the quoting pipeline derives from its parameters: computed once per parameter object.

``QuotingParams`` is frozen, so whether it is usable and the Decimal forms of its share floats are
the same for every decision made with one object; :func:`prepared` computes them on the first
decision and keeps them on the object (its ``_derived`` slot), instead of re-checking a dozen
fields and re-parsing float reprs on every book.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.params import QuotingParams
from kasmm.core.skew import ShareDecimals


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the pipeline derives from one ``QuotingParams`` object."""

    problem: str | None  # check_params
    shares: ShareDecimals


def prepared(params: QuotingParams) -> Prepared:
    """``params``' validity and Decimal forms, computed on first use and kept on the object.

    Parameters are frozen values, so what is derived from them holds for every decision made
    with the same object; a new object (a mode switch, ``dataclasses.replace``) starts empty.
    """
    derived = params._derived
    if isinstance(derived, Prepared):
        return derived
    made = Prepared(
        problem=check_params(params),
        shares=ShareDecimals.of(params),
    )
    object.__setattr__(params, "_derived", made)
    return made


def finite(x: float | None, *, positive: bool = False) -> bool:
    """A finite float >= 0 (> 0 with ``positive``); False for ``None``."""
    return x is not None and math.isfinite(x) and (x > 0 if positive else x >= 0)


def dec_ok(x: Decimal | None, *, positive: bool = False) -> bool:
    """A finite Decimal >= 0 (> 0 with ``positive``); False for ``None``."""
    return x is not None and x.is_finite() and (x > 0 if positive else x >= 0)


def check_params(params: QuotingParams) -> str | None:
    """``bad_params`` when a parameter the strategy uses is unusable (else ``None``)."""
    if not (dec_ok(params.size, positive=True) and params.levels >= 1):
        return "bad_params"
    if not (finite(params.level_step_bps) and finite(params.skew_strength)):
        return "bad_params"
    vol = params.volatility
    if vol is not None and not all(
        finite(x) for x in (vol.halflife_s, vol.horizon_s, vol.multiplier, vol.cap_bps)
    ):
        return "bad_params"
    if params.strategy == "fixed_spread":
        return None if finite(params.spread_bps, positive=True) else "bad_params"
    if not (finite(params.gamma, positive=True) and finite(params.kappa, positive=True)):
        return "bad_params"
    if params.sigma is not None and not finite(params.sigma):
        return "bad_params"
    return None if finite(params.min_spread_bps) else "bad_params"
