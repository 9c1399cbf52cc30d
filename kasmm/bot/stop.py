"""A bot's stop: cancel every order, verify at the venue, give every order a final status.

Runs shielded from the caller's cancellation (the supervisor may be tearing down), within a
deadline. An order left behind is the worst outcome of a stop, so transient errors are retried
and a listing that still shows the bot's orders is tried again, with a growing pause.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from kasmm.bot.commands import Command
from kasmm.bot.engine import Engine
from kasmm.clock import Clock
from kasmm.core.types import OpenOrder
from kasmm.errors import AuthenticationFailed, FatalVenueError, LedgerLost, OrderNotFound
from kasmm.journal import BotJournal
from kasmm.venues.base import Venue

#: Seconds the bot may spend cancelling its orders on stop before giving up.
SHUTDOWN_DEADLINE_S = 10.0
#: How long the shutdown safety net (cancel-all by prefix, then verify) retries transient
#: errors, within ``SHUTDOWN_DEADLINE_S``; backoff 0.1 s doubling to 0.5 s.
SHUTDOWN_RETRY_S = 5.0


class Stop:
    """One stop of one bot."""

    def __init__(
        self, engine: Engine, venue: Venue, clock: Clock, journal: BotJournal, log: Any
    ) -> None:
        self.engine = engine
        self.venue = venue
        self.clock = clock
        self.journal = journal
        self.log = log
        #: The ledger was lost while stopping (the bot raises it once the stop is done).
        self.ledger_lost: LedgerLost | None = None

    async def run(self, *, carry_out: Callable[[list[Command]], Awaitable[None]]) -> int:
        """Cancel every order within the deadline; return how many remain (``carry_out``
        performs the engine's outbox: the stop's order events)."""
        if self.engine.rules is None:
            # Never connected: this run placed nothing. Orders an earlier run may have left
            # are cancelled by the next start's reconciliation; a dead venue is not retried.
            self.log.info("bot_stopped", orders_left=0, connected=False)
            return 0
        remaining: list[OpenOrder] | None = None
        with anyio.move_on_after(SHUTDOWN_DEADLINE_S, shield=True) as scope:
            for cid in list(self.engine.open_orders):
                found = True
                try:
                    await self.venue.cancel_order(cid)
                except OrderNotFound:
                    found = False
                except Exception as exc:  # any failure: fall through to the safety net
                    self.log.warning("shutdown_cancel_failed", client_id=cid, error=str(exc))
                    found = False
                self.engine.orders.stopped_order(cid, found, self.clock.wall())
            await carry_out(self.engine.take())
            remaining = await self._cancel_all_verified()
        if scope.cancelled_caught:
            self.log.error("shutdown_deadline_exceeded", deadline_s=SHUTDOWN_DEADLINE_S)
        await self._journal_stop(remaining)
        if remaining is None:
            return max(1, len(self.engine.open_orders))
        self.log.info("bot_stopped", orders_left=len(remaining))
        return len(remaining)

    async def _cancel_all_verified(self) -> list[OpenOrder] | None:
        """Safety net of a stop: cancel everything with our prefix (the local view may miss an
        order whose placement outcome was unknown), then list what is left.

        A transient error is retried (an order left behind is the worst outcome of a stop), and
        so is a listing that still shows our orders: with a growing pause between tries, so a
        venue that keeps listing an order cannot turn the stop into a busy loop that drains
        the account's rate budget other profiles need for their own cancels. Returns what is
        still listed, or ``None`` when it could not be verified.
        """
        retry_until = self.clock.now() + SHUTDOWN_RETRY_S
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.venue.cancel_all(self.engine.ids.prefix)
                remaining = [
                    o
                    for o in await self.venue.fetch_open_orders()
                    if self.engine.ids.is_own(o.client_id)
                ]
            except (AuthenticationFailed, FatalVenueError) as exc:
                self.log.error("shutdown_verify_failed", error=f"{type(exc).__name__}: {exc}")
                return None
            except Exception as exc:
                if self.clock.now() >= retry_until:
                    self.log.error("shutdown_verify_failed", error=f"{type(exc).__name__}: {exc}")
                    return None
                self.log.warning("shutdown_verify_retry", attempt=attempt, error=type(exc).__name__)
            else:
                if not remaining or self.clock.now() >= retry_until:
                    return remaining
                self.log.warning(
                    "shutdown_orders_still_listed", attempt=attempt, count=len(remaining)
                )
            await self.clock.sleep_until(self.clock.now() + min(0.5, 0.05 * 2**attempt))

    async def _journal_stop(self, remaining: list[OpenOrder] | None) -> None:
        """Give every order the ledger holds as live a final status, then write the journal.

        Orders not listed by the venue after the safety net are gone (cancelled by the stop;
        a fill the venue reports later still moves the order to ``filled``). When the stop
        could not be verified nothing is claimed: those orders stay live in the ledger.
        """
        with anyio.move_on_after(SHUTDOWN_DEADLINE_S / 2, shield=True):
            try:
                if remaining is not None:
                    await self.journal.close_live_orders(
                        {o.client_id for o in remaining}, self.clock.wall(), "stop"
                    )
                await self.journal.flush()
            except LedgerLost as exc:
                self.ledger_lost = exc
            except Exception as exc:  # never mask why the bot stopped
                self.log.error("stop_not_journaled", error=f"{type(exc).__name__}: {exc}")
