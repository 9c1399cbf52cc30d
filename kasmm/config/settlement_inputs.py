"""From the settlement config and the account's profiles to the pure plan's inputs.

The one place that decides *which* profiles count and *which* of their modes: every enabled
profile of the account (a disabled one rests nothing), at the larger need of its modes per
asset (the schedule may switch to the aggressive mode between two settlements, so a sweep
sized for passive would starve it). A profile whose market has no mark is not guessed at: it
is reported as a stale feed, which holds every sweep of the account (top-ups still print).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from kasmm.config.schema import ModeName, Profile
from kasmm.config.settlement import AccountSettlement, to_band
from kasmm.config.to_core import quoting_params
from kasmm.core.settlement import Gates, PlanInputs, WithdrawTerms
from kasmm.core.settlement_need import AssetNeeds, account_need, profile_need
from kasmm.core.types import Balances

__all__ = ["account_needs", "plan_inputs", "profile_needs"]


def profile_needs(profile: Profile, mark: Decimal) -> AssetNeeds:
    """One profile's need: per asset, the larger of its modes' needs at ``mark``."""
    modes: list[ModeName] = ["passive"]
    if profile.modes.aggressive is not None:
        modes.append("aggressive")
    out: dict[str, Decimal] = {}
    for mode in modes:
        need = profile_need(quoting_params(profile, mode=mode), profile.base, profile.quote, mark)
        for asset, amount in need.amounts.items():
            out[asset] = max(out.get(asset, amount), amount)
    return AssetNeeds(out)


def account_needs(
    profiles: Sequence[Profile], marks: Mapping[str, Decimal]
) -> tuple[AssetNeeds, tuple[str, ...]]:
    """The account's need (enabled profiles, added), and the symbols without a usable mark.

    :param marks: symbol -> mark price on this account's exchange.
    """
    needs: list[AssetNeeds] = []
    unmarked: list[str] = []
    for p in profiles:
        if not p.enabled:
            continue
        mark = marks.get(p.symbol)
        if mark is None or not mark.is_finite() or mark <= 0:
            unmarked.append(p.symbol)
            continue
        needs.append(profile_needs(p, mark))
    return account_need(needs), tuple(dict.fromkeys(unmarked))


def plan_inputs(
    acct: AccountSettlement,
    profiles: Sequence[Profile],
    *,
    balances: Balances,
    marks: Mapping[str, Decimal],
    terms: Mapping[str, WithdrawTerms],
    swept_today: Mapping[str, Decimal],
    gates: Gates,
) -> PlanInputs:
    """The inputs of :func:`~kasmm.core.settlement.plan_settlement` for one account.

    ``gates`` carries the ledger's and the supervisor's state (halted profiles, stale feeds,
    pending sweeps); symbols without a mark are added to its stale feeds.
    """
    needs, unmarked = account_needs(profiles, marks)
    stale = tuple(dict.fromkeys((*gates.stale_feeds, *unmarked)))
    return PlanInputs(
        balances=balances,
        needs=needs,
        bands={asset: to_band(asset, band) for asset, band in acct.assets.items()},
        terms=terms,
        swept_today=swept_today,
        gates=Gates(gates.halted_profiles, stale, gates.pending),
    )
