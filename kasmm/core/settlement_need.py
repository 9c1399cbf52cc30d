"""What a running profile needs on the exchange: the floor no settlement sweep may go below.

A sweep takes KAS (or any asset) off an exchange account; the profiles trading on that account
must still be able to rest their full ladders and hold their inventory targets afterwards, or
the sweep would quietly turn a market maker into a one-sided one. This module turns a
profile's :class:`~kasmm.core.params.QuotingParams` and a mark price into that need, per asset,
and adds the needs of every profile on one account.

The rule (:func:`profile_need`), at the mark ``m``:

* **Ladders.** The ask ladder needs ``A`` base: the sum of every level's size (the active
  mode's ``size``, ``levels`` and ``level_size_step``; a size in quote is divided by ``m``).
  The bid ladder needs ``B = A_bid * m`` quote, the same sizes valued at the mark (bids rest
  below the mark, so this over-counts slightly: the safe side).
* **A share target** ``s`` (``target_share``, in (0, 1)): the profile skews toward holding
  ``s`` of its value in base. The smallest holding that covers both ladders *at* the target
  share has value ``W = max(A * m / s, B / (1 - s))``; it needs ``s * W / m`` base and
  ``(1 - s) * W`` quote. Sweeping below that would leave the account off target, and the skew
  would then buy back what was swept. A share of 0 or 1 (or none) needs just the ladders.
* **An amount target** ``T`` (``target_base``, which wins over the share, as in the skew):
  ``max(A, T)`` base and ``B`` quote.
* **A base floor** (``min_base``): asks never sell below it, so a full ask ladder needs
  ``min_base + A`` base; the base need is at least that.

Fees, the book's own spread and the skew's shifting of sizes are ignored: the band's
``keep_at_least`` is where an operator adds a margin. The need of a profile that cannot be
valued (no mark, or a mark that is not a positive finite number) is refused with
``ValueError`` rather than guessed: a plan without a mark must not sweep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.level_sizes import level_sizes
from kasmm.core.params import QuotingParams

__all__ = ["AssetNeeds", "account_need", "profile_need"]

_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class AssetNeeds:
    """What one or more profiles need on the exchange, per asset (asset -> amount).

    Amounts are in each asset's own unit and never negative; an asset not listed needs
    nothing.
    """

    amounts: Mapping[str, Decimal]

    def of(self, asset: str) -> Decimal:
        """The need of ``asset`` (zero when none)."""
        return self.amounts.get(asset, _ZERO)


def _ladder_base(params: QuotingParams, mark: Decimal) -> Decimal:
    """One side's ladder in base: every level's size summed (a quote size divided by mark)."""
    sizes = level_sizes(
        params.size, params.level_size_step, params.level_size_step_pct, params.levels
    )
    total = sum(sizes, _ZERO)
    return total / mark if params.size_unit == "quote" else total


def profile_need(params: QuotingParams, base: str, quote: str, mark: Decimal) -> AssetNeeds:
    """What one profile needs on the exchange at ``mark`` (the rule is the module docstring's).

    :param params: the profile's quoting parameters (its active mode).
    :param base: the base asset of its symbol (``KAS``).
    :param quote: the quote asset of its symbol (``USDT``).
    :param mark: the price to value the ladders at, in quote per base.
    :return: the base and quote needs.
    :raises ValueError: if ``mark`` is not a positive finite number, or ``base == quote``.
    """
    if not mark.is_finite() or mark <= 0:
        raise ValueError("the mark must be a positive finite price")
    if base == quote:
        raise ValueError("base and quote must differ")
    ladder = _ladder_base(params, mark)
    ask_base = ladder
    bid_quote = ladder * mark
    if params.target_base is not None:
        base_need = max(ask_base, params.target_base)
        quote_need = bid_quote
    elif params.target_share is not None and 0 < params.target_share < 1:
        share = Decimal(repr(params.target_share))
        value = max(ask_base * mark / share, bid_quote / (_ONE - share))
        base_need = share * value / mark
        quote_need = (_ONE - share) * value
    else:
        base_need, quote_need = ask_base, bid_quote
    if params.min_base is not None:
        base_need = max(base_need, params.min_base + ask_base)
    return AssetNeeds({base: base_need, quote: quote_need})


def account_need(needs: Iterable[AssetNeeds]) -> AssetNeeds:
    """The needs of every profile on one account, added per asset.

    Profiles on one account rest their ladders side by side on the same balances (two KAS
    pairs share the KAS, every ``*/USDT`` pair shares the USDT), so their needs add up.
    """
    out: dict[str, Decimal] = {}
    for need in needs:
        for asset, amount in need.amounts.items():
            out[asset] = out.get(asset, _ZERO) + amount
    return AssetNeeds(out)
