"""What settlement asks an exchange account: balances, withdrawal terms, withdraw, the list.

:class:`WithdrawalDesk` is the narrow port the settlement executor and ``kasmm settle`` use;
:mod:`.ccxt_desk` implements it over ccxt (the one place its answers and errors are
translated). Withdrawals are read back by listing (ccxt has no ``fetch_withdrawal`` on any of
the four exchanges, and ``withdraw`` answers with an id only).

Errors, in the order a caller handles them:

* :class:`WithdrawalRefused`: the exchange said no and nothing went out (address not
  whitelisted, insufficient balance, below the minimum, withdrawals suspended, a permission
  missing on the key). Final for that request: the sweep fails with :attr:`reason`.
* :class:`WithdrawalUnknown`: the request may or may not have reached the exchange (a
  timeout, a dropped connection, an answer that could not be read). Never retried blindly:
  the withdrawal is looked up by its client id (or amount, address and time) first.
* :class:`DeskUnavailable`: a read failed (network, rate limit, maintenance): retry later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from kasmm.core.settlement import WithdrawTerms
from kasmm.core.types import Balances

__all__ = [
    "DeskError",
    "DeskUnavailable",
    "RefusalReason",
    "Withdrawal",
    "WithdrawalDesk",
    "WithdrawalRefused",
    "WithdrawalStatus",
    "WithdrawalUnknown",
]

#: ccxt's unified withdrawal status, narrowed: ``ok`` (sent on chain), ``failed`` (failed or
#: canceled: nothing left, or it came back), ``pending`` (anything else, an unmapped status
#: included: a withdrawal the exchange still shows is never assumed gone).
WithdrawalStatus = Literal["pending", "ok", "failed"]

RefusalReason = Literal[
    "address_not_whitelisted",
    "insufficient_balance",
    "below_minimum",
    "withdrawals_suspended",
    "permission_denied",
    "invalid_request",
]


class DeskError(Exception):
    """An exchange account call that did not do what was asked (base class)."""


class WithdrawalRefused(DeskError):
    """The exchange refused the withdrawal; nothing went out."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class WithdrawalUnknown(DeskError):
    """The withdrawal request's fate is unknown: look it up before anything else."""


class DeskUnavailable(DeskError):
    """A read could not be made now (network, rate limit, maintenance): try again later."""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """One withdrawal as the exchange lists it."""

    id: str
    #: the client id it was requested with, where the exchange keeps one
    client_id: str | None
    asset: str
    amount: Decimal
    fee: Decimal | None
    address: str
    status: WithdrawalStatus
    #: the transaction id on chain (``None`` until sent)
    txid: str | None
    #: exchange time of the request, in milliseconds
    ts_ms: int | None
    #: the exchange's own status text, for the ledger's trail
    raw_status: str | None = None


class WithdrawalDesk(Protocol):
    """An exchange account's withdrawal side (see the module docstring for its errors)."""

    @property
    def exchange(self) -> str:
        """The exchange's id (``mexc``, ``gate``, ``kucoin``, ``bingx``)."""
        ...

    @property
    def takes_client_id(self) -> bool:
        """Whether a withdrawal can carry our client id (KuCoin's cannot)."""
        ...

    async def balances(self) -> Balances:
        """The account's spot balances (free, used, total)."""
        ...

    async def mids(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        """The mid price of each of ``symbols`` (``KAS/USDT``) now: what a plan values the
        profiles' needs at. A symbol without a two-sided book is left out (the plan then holds
        every sweep of the account as if its feed were stale)."""
        ...

    async def terms(self, asset: str) -> WithdrawTerms | None:
        """The withdrawal terms of ``asset`` on the Kaspa network (``None``: not listed)."""
        ...

    async def withdraw(
        self, asset: str, amount: Decimal, address: str, client_id: str | None
    ) -> str:
        """Request a withdrawal on the Kaspa network; return the exchange's withdrawal id.

        :raises WithdrawalRefused: nothing went out.
        :raises WithdrawalUnknown: it may have gone out; look it up.
        """
        ...

    async def withdrawals(self, asset: str, since_ms: int | None = None) -> list[Withdrawal]:
        """The account's withdrawals of ``asset`` since ``since_ms`` (exchange time), any
        status. :raises DeskUnavailable: the list could not be read now."""
        ...

    async def deposit_address(self, asset: str) -> str:
        """The account's deposit address for ``asset`` on the Kaspa network (a top-up's
        destination). :raises DeskUnavailable: it could not be read now."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...
