"""The production wiring of :class:`~kasmm.settle.service.SettlementService`: ccxt desks, the
SDK's node client, the executor.

Which key reads and which withdraws is decided here, once: a plan reads balances, mids, terms
and deposit addresses with the trading key of the account's first member profile (read-only
calls; the withdrawal key is never resolved for ``--plan``); an execution uses the account's
``withdrawal_credentials`` only. Resolved secrets go to ccxt's constructor and to the desk's
scrubber, nowhere else.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kasmm.clock import RealClock
from kasmm.config.schema import AccountLimits, CcxtVenueConfig, Profile
from kasmm.config.secrets import resolve_credentials
from kasmm.config.settlement import AccountSettlement, SettlementFile
from kasmm.limiter import TokenBucket
from kasmm.settle.ccxt_desk import desk_for
from kasmm.settle.desk import WithdrawalDesk
from kasmm.settle.destination import destination_from
from kasmm.settle.executor import Settler
from kasmm.settle.node import KaspaNode
from kasmm.settle.sdk_node import SdkKaspaNode
from kasmm.settle.service import SettlementService, SweepExecutor
from kasmm.store.settlement_book import SettlementBook

__all__ = ["build_service", "member_venue"]


def member_venue(
    account: str, names: Sequence[str], profiles: Mapping[str, Profile]
) -> CcxtVenueConfig:
    """The venue of the account's first member profile (enabled ones first): its exchange,
    ``rest_url`` and trading credentials.

    :raises ValueError: no member profile trades on a ccxt venue (the membership pass refuses
        such a file, so this is a caller's bug).
    """
    ranked = sorted((n for n in names if n in profiles), key=lambda n: (not profiles[n].enabled, n))
    for name in ranked:
        venue = profiles[name].venue
        if isinstance(venue, CcxtVenueConfig):
            return venue
    raise ValueError(f"no exchange profile trades on account {account!r}")


def _desk_factory(
    settlement: SettlementFile,
    members: Mapping[str, Sequence[str]],
    profiles: Mapping[str, Profile],
    accounts: Mapping[str, AccountLimits],
) -> Callable[[str, bool], WithdrawalDesk]:
    def make(account: str, withdraw: bool) -> WithdrawalDesk:
        venue = member_venue(account, members.get(account, ()), profiles)
        refs = (
            settlement.settlement[account].withdrawal_credentials if withdraw else venue.credentials
        )
        # The account's rate budget from _accounts.yaml when it declares one (the exchange's
        # published budget otherwise): settlement runs beside the account's trading.
        limits = accounts.get(account)
        bucket = (
            None
            if limits is None
            else TokenBucket(limits.capacity, limits.refill_per_s, RealClock(), name=account)
        )
        return desk_for(venue, resolve_credentials(refs), bucket)

    return make


def _node(acct: AccountSettlement) -> contextlib.AbstractAsyncContextManager[KaspaNode]:
    return SdkKaspaNode(acct.node_url, acct.network)


def build_service(
    *,
    settlement: SettlementFile,
    members: Mapping[str, Sequence[str]],
    profiles: Mapping[str, Profile],
    book: SettlementBook,
    locks: Path | None,
    wall: Callable[[], float] = time.time,
    accounts: Mapping[str, AccountLimits] | None = None,
) -> SettlementService:
    """The service over ccxt (desks), the SDK (node) and the executor; ``accounts`` are the
    rate budgets of ``_accounts.yaml``."""

    def settler(
        account: str, acct: AccountSettlement, desk: WithdrawalDesk, node: KaspaNode
    ) -> SweepExecutor:
        dest = acct.destination
        return Settler(
            account=account,
            network=acct.network,
            confirmations=acct.confirmations,
            book=book,
            desk=desk,
            node=node,
            destination=destination_from(acct.network, address=dest.address, xpub=dest.xpub),
            wall=wall,
        )

    return SettlementService(
        settlement=settlement,
        members=members,
        profiles=profiles,
        book=book,
        desk_factory=_desk_factory(settlement, members, profiles, accounts or {}),
        node_factory=_node,
        settler_factory=settler,
        locks=locks,
        wall=wall,
    )
