"""What a simulated account (sim, replay, paper) offers a bot that restarts on an existing ledger.

A real exchange remembers the account's balances across restarts; a simulated venue is rebuilt
from its configuration every time. The ledger carries on, so a restarted simulated account must
resume from the balances its ledger implies (the opening balances plus every stored fill), or the
bot's inventory and the ledger's position disagree. This is a capability of the simulated
venues only, not part of the ``Venue`` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol, runtime_checkable

#: Decorators (rate limit, timeout, metering, faults) expose the venue they wrap as ``inner``.
_MAX_WRAPPERS = 16


@runtime_checkable
class SimulatedAccount(Protocol):
    """A simulated venue whose balances a restarting bot can set from its ledger."""

    def starting_balances(self) -> dict[str, Decimal] | None:
        """Totals per asset while the account is untouched (no order yet) and keeps balances.

        ``None`` when the market keeps none (the Avellaneda–Stoikov model) or the account has
        traded already (its balances then carry its own history).
        """
        ...

    def restore_balances(self, balances: Mapping[str, Decimal]) -> None:
        """Hold exactly ``balances`` (all free) from now on; only while untouched.

        :raises RuntimeError: the account has traded, or keeps no balances.
        """
        ...


def simulated_account(venue: object) -> SimulatedAccount | None:
    """The simulated account behind ``venue`` and its decorators, or ``None`` (a real exchange)."""
    for _ in range(_MAX_WRAPPERS):
        if isinstance(venue, SimulatedAccount):
            return venue
        venue = getattr(venue, "inner", None)
        if venue is None:
            return None
    return None
