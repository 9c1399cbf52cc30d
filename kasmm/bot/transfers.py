"""Settlement sweeps seen by a bot: a transfer off its exchange account, not a loss.

A sweep of the account (``kasmm settle``, the supervisor's schedule: any process) is in the
shared ledger before its withdrawal is requested. The driver hands the account's sweeps to the
engine with each balance read (read from the ledger *before* the venue's balances, so a
deduction a read shows always has its sweep in hand); this module decides which of them the
read shows, so the account books them instead of reporting a drift:

* an unbooked sweep that has not failed is *expected* to leave: the read shows it when the
  asset is lower than the fill-driven view by its amount, or its amount plus the fee
  (exchanges differ in which they deduct), within the dust ``Account.resync`` allows;
* a sweep booked out that then failed is expected *back* by the amount booked;
* several expected transfers of one asset are matched together (the combination that explains
  the difference best, the oldest first on a tie);
* a sweep that was ``sent`` or ``confirmed`` at the previous read and that neither read
  matched left in a read with other changes: it is booked anyway, with a warning, and without
  moving the inventory again (a read adopted it already). So is one sent before the read that
  starts a restarted bot (it left while the bot was down: the read adopts it).

A failed sweep booked out whose amount never shows back is left to the drift check (it may
come back late; a failure refused at request time never left, and was never booked).

What is booked is queued; the engine books it on its next decision (a mark is needed: the
position leaves at :func:`kasmm.core.pnl.transfer`, the risk tracker forgets its value). Sweeps
requested before accounting opened are the opening inventory's history and are ignored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from kasmm.bot.account import Account
from kasmm.bot.commands import Command, Log, StoreTransfer
from kasmm.bot.risk_tracker import RiskTracker
from kasmm.core.pnl import transfer
from kasmm.core.portfolio import MemberTransfer
from kasmm.core.types import ZERO
from kasmm.store.settlements import BookedTransfer, SweepRecord, TransferDirection

#: At most this many expected transfers of one asset are combined (3^n combinations).
MAX_COMBINED: Final = 6
#: States in which the withdrawal has certainly left the account at the exchange.
_LEFT: Final = frozenset({"sent", "confirmed"})


@dataclass(frozen=True, slots=True)
class Expected:
    """A transfer a balance read may show: ``asset`` lower (``out``) or higher (``back``) by
    one of ``amounts``."""

    key: str
    direction: TransferDirection
    asset: str
    amounts: tuple[Decimal, ...]
    #: the sweep's state when last read from the ledger
    state: str


@dataclass(frozen=True, slots=True)
class Booking:
    """A transfer to book: ``amount`` of ``asset`` moved ``direction``."""

    key: str
    direction: TransferDirection
    asset: str
    amount: Decimal
    #: booked without a read that showed it (``sent``/``confirmed`` and never matched)
    unmatched: bool = False

    @property
    def signed_out(self) -> Decimal:
        """The amount that left the account (negative: came back)."""
        return self.amount if self.direction == "out" else -self.amount


def expected(
    sweeps: Iterable[SweepRecord],
    booked: Mapping[tuple[str, TransferDirection], Decimal],
    assets: tuple[str, str],
    since: float,
) -> tuple[Expected, ...]:
    """The transfers of ``assets`` still to book, oldest first.

    :param booked: what was booked already, by ``(key, direction)``.
    :param since: wall time accounting opened (older sweeps are ignored).
    """
    out: list[Expected] = []
    for s in sweeps:
        if s.asset not in assets or s.requested_ts < since:
            continue
        if s.state != "failed":
            if (s.key, "out") not in booked:
                amounts = (s.amount, s.amount + s.fee) if s.fee else (s.amount,)
                out.append(Expected(s.key, "out", s.asset, amounts, s.state))
        elif (s.key, "out") in booked and (s.key, "back") not in booked:
            out.append(Expected(s.key, "back", s.asset, (booked[(s.key, "out")],), s.state))
    return tuple(out)


def match(
    candidates: Sequence[Expected], local: Decimal, venue: Decimal, dust: Decimal
) -> tuple[Booking, ...]:
    """Which of ``candidates`` (one asset's) explain ``venue - local``, within ``dust``.

    Every combination (each candidate skipped or taken at one of its amounts) is tried; the
    one leaving the smallest residual wins, the earliest in order (taking the oldest) on a
    tie. None taken is a combination too: a read that shows nothing matches nothing.
    """
    items = list(candidates[:MAX_COMBINED])
    best: tuple[Decimal, tuple[Decimal | None, ...]] | None = None
    options = [(*c.amounts, None) for c in items]
    for choice in itertools.product(*options):
        moved = ZERO
        for c, amount in zip(items, choice, strict=True):
            if amount is not None:
                moved += amount if c.direction == "back" else -amount
        residual = abs(local + moved - venue)
        if residual <= dust and (best is None or residual < best[0]):
            best = (residual, choice)
    if best is None:
        return ()
    return tuple(
        Booking(c.key, c.direction, c.asset, amount)
        for c, amount in zip(items, best[1], strict=True)
        if amount is not None
    )


@dataclass(frozen=True, slots=True)
class TransferStatus:
    """What the view shows of the account's settlement sweeps."""

    #: Net amount transferred out, by asset, since accounting opened (negative: came back).
    transferred_out: tuple[tuple[str, Decimal], ...]
    #: Bookings by ``(asset, direction)`` since accounting opened.
    bookings: tuple[tuple[str, TransferDirection, int], ...]
    #: Sweeps expected and not seen yet: ``(key, direction, asset, amount)``.
    pending: tuple[tuple[str, TransferDirection, str, Decimal], ...]


class Transfers:
    """One bot's sweeps: what it booked, what it expects, what it must book next."""

    def __init__(self) -> None:
        #: Amount booked, by ``(sweep key, direction)`` (restored from the ledger).
        self.booked: dict[tuple[str, TransferDirection], Decimal] = {}
        #: Net amount transferred out, by asset, since accounting opened.
        self.transferred_out: dict[str, Decimal] = {}
        #: Bookings by ``(asset, direction)`` since accounting opened (the metric's counter).
        self.counts: dict[tuple[str, TransferDirection], int] = {}
        #: What the last read expected and did not see yet.
        self.pending: tuple[Expected, ...] = ()
        #: Wall time accounting opened (``inf``: not yet; every sweep is then ignored).
        self.since = float("inf")
        self._queued: list[Booking] = []
        #: The asset of each booking, by ``(sweep key, direction)``.
        self._assets: dict[tuple[str, TransferDirection], str] = {}
        #: Bookings wait for the next decision (a plain flag: the engine asks every decision).
        self.due = False
        #: Keys sent or confirmed at the previous read, unmatched there.
        self._left_before: frozenset[str] = frozenset()

    def restored(self, transfers: Iterable[BookedTransfer], opened_at: float | None) -> None:
        """Resume from the ledger's bookings of this profile (never booked twice)."""
        if opened_at is not None:
            self.since = opened_at
        for t in transfers:
            self._count(t.key, t.direction, t.asset, t.amount)

    def on_read(
        self,
        sweeps: Sequence[SweepRecord],
        assets: tuple[str, str],
        local: tuple[Decimal, Decimal],
        venue: tuple[Decimal, Decimal],
        dust: tuple[Decimal, Decimal],
        opened: bool,
    ) -> tuple[Decimal, Decimal]:
        """Match a balance read (``venue`` against the fill-driven ``local``, base and quote)
        with the sweeps; queue the bookings and return ``local`` moved by those the read
        showed (what the drift check then compares)."""
        booked = dict(self.booked)
        booked.update({(b.key, b.direction): b.amount for b in self._queued})
        candidates = expected(sweeps, booked, assets, self.since)
        if not opened:
            # The read that starts a restarted bot: what was sent before the ledger was read
            # (before the balances) is in these balances, which the bot adopts as they are.
            for c in candidates:
                if c.direction == "out" and c.state in _LEFT:
                    self._queue(Booking(c.key, "out", c.asset, c.amounts[-1], unmatched=True))
            queued = {(b.key, b.direction) for b in self._queued}
            self.pending = tuple(c for c in candidates if (c.key, c.direction) not in queued)
            self._left_before = frozenset()
            return local
        moved = list(local)
        shown: set[str] = set()
        for i, asset in enumerate(assets):
            of_asset = [c for c in candidates if c.asset == asset]
            if not of_asset:
                continue
            for booking in match(of_asset, local[i], venue[i], dust[i]):
                shown.add(booking.key)
                moved[i] -= booking.signed_out
                self._queue(booking)
        left_now: set[str] = set()
        for c in candidates:
            if c.key in shown or c.direction != "out":
                continue
            if c.key in self._left_before:
                # Sent before the previous read, shown by neither: a read adopted it already.
                self._queue(Booking(c.key, "out", c.asset, c.amounts[-1], unmatched=True))
            elif c.state in _LEFT:
                left_now.add(c.key)
        self._left_before = frozenset(left_now)
        queued = {(b.key, b.direction) for b in self._queued}
        self.pending = tuple(c for c in candidates if (c.key, c.direction) not in queued)
        return moved[0], moved[1]

    def status(self) -> TransferStatus | None:
        """The view's part (``None``: nothing was ever booked or expected)."""
        if not self.booked and not self.pending and not self._queued:
            return None
        return TransferStatus(
            tuple(sorted(self.transferred_out.items())),
            tuple((a, d, n) for (a, d), n in sorted(self.counts.items())),
            tuple((c.key, c.direction, c.asset, c.amounts[0]) for c in self.pending),
        )

    def moves(self, base_asset: str) -> tuple[MemberTransfer, ...]:
        """What the account's balances show moved: every booking, and those a read showed
        that wait for the next decision to be booked (the inventory moved already). What a
        portfolio takes off its peak (:mod:`kasmm.core.group_transfers`)."""
        out = [
            MemberTransfer(key, d, self._assets[(key, d)] == base_asset, a if d == "out" else -a)
            for (key, d), a in self.booked.items()
        ]
        out += [
            MemberTransfer(b.key, b.direction, b.asset == base_asset, b.signed_out)
            for b in self._queued
        ]
        return tuple(out)

    def take(self) -> list[Booking]:
        """The queued bookings, counted as booked (the engine books each)."""
        out, self._queued = self._queued, []
        self.due = False
        for b in out:
            self._count(b.key, b.direction, b.asset, b.amount)
        return out

    def _queue(self, booking: Booking) -> None:
        self._queued.append(booking)
        self.due = True

    def _count(self, key: str, direction: TransferDirection, asset: str, amount: Decimal) -> None:
        if (key, direction) in self.booked:
            return
        self.booked[(key, direction)] = amount
        self._assets[(key, direction)] = asset
        signed = amount if direction == "out" else -amount
        self.transferred_out[asset] = self.transferred_out.get(asset, ZERO) + signed
        self.counts[(asset, direction)] = self.counts.get((asset, direction), 0) + 1


def book_transfers(
    transfers: Transfers,
    account: Account,
    tracker: RiskTracker,
    base_asset: str,
    mid: Decimal,
    wall: float,
    outbox: list[Command],
) -> tuple[RiskTracker, Decimal]:
    """Book what ``transfers`` has queued at ``mid``: base leaves the PnL position at average
    cost (:func:`kasmm.core.pnl.transfer`), the tracker's peak and day-start equity forget the
    value that left (drawdown and the day's PnL measure trading only), and each booking is
    logged and stored (``outbox``).

    :return: the new tracker and the total value that left, in quote (negative: came back).
    """
    total = ZERO
    for b in transfers.take():
        is_base = b.asset == base_asset
        value = b.signed_out * mid if is_base else b.signed_out
        if is_base:
            account.pnl = transfer(account.pnl, b.signed_out, mid)
        tracker = tracker.transferred(value)
        total += value
        fields = {
            "sweep": b.key,
            "direction": b.direction,
            "asset": b.asset,
            "amount": str(b.amount),
            "value": str(value),
        }
        if b.unmatched:
            outbox.append(Log("warning", "transfer_booked_unmatched", fields))
        else:
            outbox.append(Log("info", "transfer_booked", fields))
        outbox.append(StoreTransfer(b.key, b.direction, b.asset, b.amount, mid, value, wall))
    return tracker, total
