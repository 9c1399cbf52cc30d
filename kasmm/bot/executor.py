"""Carrying out a round's order actions through the venue, with the error policy written once.

Per action: a venue error is that action's outcome (counted by the consecutive-errors rule);
authentication and fatal errors end the run; a rate limit ends the round (its remaining actions
are stale by the time the limit lifts; the next event requotes); a placement whose answer was
lost is looked up by client id before anything else is decided; a rejection for funds re-reads
the balances at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kasmm.bot.engine import Engine
from kasmm.clock import Clock
from kasmm.core.types import CancelOrder, ClientOrderId, OpenOrder, OrderAction, PlaceOrder
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RequestTimedOut,
    VenueError,
)
from kasmm.venues.base import Venue

#: How long a rate-limited round backs off before the next event may requote.
RATE_LIMIT_PAUSE_S = 1.0


class Executor:
    """Executes rounds for one engine against one venue."""

    def __init__(
        self,
        engine: Engine,
        venue: Venue,
        clock: Clock,
        *,
        read_balances: Callable[[], Awaitable[None]],
    ) -> None:
        self.engine = engine
        self.venue = venue
        self.clock = clock
        self._read_balances = read_balances

    async def execute(self, actions: tuple[OrderAction, ...]) -> None:
        """Hand ``actions`` to the venue (whose requests draw from the profile's token bucket).

        Cancels come first: the reconciler orders them so, which frees balance for the places.
        """
        for action in actions:
            try:
                if isinstance(action, CancelOrder):
                    await self._cancel(action.client_id)
                else:
                    await self._place(action)
            except (AuthenticationFailed, FatalVenueError):
                raise
            except RateLimited as exc:
                self.engine.error(exc)
                await self.clock.sleep_until(self.clock.now() + RATE_LIMIT_PAUSE_S)
                return
            except VenueError as exc:
                self.engine.error(exc)

    async def _cancel(self, client_id: ClientOrderId) -> None:
        try:
            await self.venue.cancel_order(client_id)
        except OrderNotFound as exc:
            self.engine.cancelled(client_id, exc, self.clock.wall())
            return
        self.engine.cancelled(client_id, None, self.clock.wall())

    async def _place(self, action: PlaceOrder) -> None:
        intent = action.intent
        request = self.engine.request_for(intent)
        sent_at = self.clock.now()
        try:
            order = await self.venue.place_order(request)
        except (OrderRejected, InsufficientFunds) as exc:
            self.engine.rejected(request, intent.level, exc, self.clock.wall())
            if isinstance(exc, InsufficientFunds):
                await self._read_balances()
            return
        except RequestTimedOut:
            # Unknown outcome: the order may rest on the book. Look it up before going on.
            found = await self._lookup(request.client_id)
            if found is None:
                self.engine.outcome_unknown(request, intent.level, self.clock.wall())
                raise
            order = found
        self.engine.placed(request, intent.level, order, sent_at, self.clock.wall())

    async def _lookup(self, client_id: ClientOrderId) -> OpenOrder | None:
        for order in await self.venue.fetch_open_orders():
            if order.client_id == client_id:
                return order
        return None
