"""The settlement executor: request a sweep once, then follow it to the chain, across restarts.

This is the code that moves money, so its rules come first:

1. **Recorded before requested.** A sweep's row (state ``requested``, its idempotency key, its
   client id, the address and the amount) is committed to the ledger *before*
   :meth:`WithdrawalDesk.withdraw` is called. Whatever happens after (the answer lost, the
   process killed), the ledger says a request may have gone out.
2. **Never sent twice.** A sweep is requested by :meth:`Settler.sweep` exactly once; nothing
   here ever calls ``withdraw`` for a recorded sweep again. A sweep whose answer was lost is
   *looked up* (:meth:`Settler.advance_open`) in the exchange's withdrawal list: by its client
   id, or where the exchange keeps none (KuCoin) by asset, amount, address and a time window
   after the request, taking only a withdrawal no other sweep claims and never guessing
   between two. Not found within ``lookup_grace_s`` of wall time (so it holds across
   restarts), it is ``failed`` (``not_found_at_exchange``), and still never resent.
3. **One open sweep per asset.** A new sweep is refused while the account has an open sweep of
   the asset, checked in the same ledger transaction that records the new one (two processes
   cannot both start one). The plan's gate holds such sweeps too; this does not rely on it.
4. **Forward only.** ``requested`` -> ``accepted`` (the exchange's id) -> ``sent`` (listed
   ``ok``, with its txid) -> ``confirmed`` (the node sees the payment ``confirmations`` deep),
   or ``failed`` (refused, failed or cancelled at the exchange, or never found). Each step is
   one ledger transaction with its trail entry (:mod:`kasmm.store.settlements`).

Keys, client ids and the lookup are in :mod:`.lookup`. Ledger calls run in a
worker thread (SQLite may wait for another process's lock); the writes that follow a
withdrawal's answer are shielded from cancellation, so an accepted request is recorded as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import structlog

from kasmm.config.settlement import NATIVE_ASSET
from kasmm.core.settlement import Sweep
from kasmm.settle.address import Network
from kasmm.settle.desk import DeskError, Withdrawal, WithdrawalDesk, WithdrawalRefused
from kasmm.settle.destination import SweepDestination
from kasmm.settle.lookup import LIST_BACK_S, client_id_for, match_withdrawal, new_sweep_key
from kasmm.settle.node import KaspaNode, NodeError, NodeMisconfigured, confirm
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import OPEN_STATES, SettlementStateError, SweepRecord, SweepState

__all__ = [
    "SettleError",
    "Settler",
    "SweepInvalid",
    "SweepPending",
]

T = TypeVar("T")
log = structlog.get_logger("kasmm.settle")


class SettleError(Exception):
    """A sweep the executor will not start (base class)."""


class SweepPending(SettleError):
    """The account has an open sweep of the asset: its effect is not known yet."""

    def __init__(self, open_sweep: SweepRecord) -> None:
        super().__init__(
            f"{open_sweep.account}: sweep {open_sweep.key} of {open_sweep.asset} is still "
            f"{open_sweep.state}; a new one waits until it is confirmed or failed"
        )
        self.open_sweep = open_sweep


class SweepInvalid(SettleError, ValueError):
    """The sweep asked for cannot be made (not KAS, not a positive amount)."""


class Settler:
    """Sweeps of one exchange account to its Kaspa destination (see the module docstring).

    :param account: the exchange account's name (``venue.account`` of its profiles).
    :param network: the Kaspa network of the destination and the node.
    :param confirmations: DAA-score depth at which an arrival is ``confirmed``.
    :param book: the shared ledger's settlement rows.
    :param desk: the account's withdrawal side, built with its *withdrawal* credentials.
    :param node: a Kaspa node to confirm arrivals (``None``: sweeps stop at ``sent``).
    :param destination: gives each sweep's address.
    :param wall: wall clock (epoch seconds): timestamps and the lookup grace.
    :param lookup_grace_s: how long a request not found at the exchange stays ``requested``.
    """

    def __init__(
        self,
        *,
        account: str,
        network: Network,
        confirmations: int,
        book: SettlementBook,
        desk: WithdrawalDesk,
        node: KaspaNode | None,
        destination: SweepDestination,
        wall: Callable[[], float] = time.time,
        lookup_grace_s: float = 900.0,
    ) -> None:
        if confirmations < 1:
            raise ValueError("confirmations must be at least 1")
        if lookup_grace_s < LIST_BACK_S:
            # A request failed after the grace may still be listed later; the grace must
            # outlast the look-back so that a later sweep's match can never take it.
            raise ValueError(f"lookup_grace_s must be at least {LIST_BACK_S:g} s")
        if destination.network != network:
            raise ValueError(f"the destination is on {destination.network}, not {network}")
        self._account = account
        self._network: Network = network
        self._confirmations = confirmations
        self._book = book
        self._desk = desk
        self._node = node
        self._destination = destination
        self._wall = wall
        self._grace_s = lookup_grace_s
        self._ledger_slot = anyio.CapacityLimiter(1)

    @property
    def account(self) -> str:
        """The exchange account settled."""
        return self._account

    async def _ledger(self, call: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(call, limiter=self._ledger_slot)

    async def _advance(self, key: str, state: SweepState, **fields: Any) -> SweepRecord:
        """One ledger step, shielded: a step whose cause already happened is always written."""
        step = partial(self._book.advance, key, state, self._wall(), **fields)
        with anyio.CancelScope(shield=True):
            record = await self._ledger(step)
        return record

    # ------------------------------------------------------------------------ sweep
    async def sweep(self, asset: str, sweep: Sweep) -> SweepRecord:
        """Record and request one sweep of ``asset``; return its record after the answer.

        Refused -> ``failed`` with the reason; answer unknown -> stays ``requested`` (found by
        :meth:`advance_open`); accepted -> ``accepted`` with the exchange's id.

        :raises SweepInvalid: not KAS, or not a positive amount.
        :raises SweepPending: the account has an open sweep of ``asset`` (nothing recorded).
        """
        if asset != NATIVE_ASSET:
            raise SweepInvalid(f"a Kaspa address receives {NATIVE_ASSET} only, not {asset}")
        if not (sweep.amount.is_finite() and sweep.amount > 0):
            raise SweepInvalid(f"a sweep moves a positive amount, not {sweep.amount}")
        earlier = await self._ledger(partial(self._book.sweeps, self._account))
        target = self._destination.target(earlier)
        now = self._wall()
        key = new_sweep_key(self._account, asset, now)
        record = SweepRecord(
            key=key,
            account=self._account,
            exchange=self._desk.exchange,
            asset=asset,
            amount=sweep.amount,
            fee=sweep.fee,
            address=target.address,
            network=self._network,
            client_id=client_id_for(key) if self._desk.takes_client_id else None,
            state="requested",
            derivation=target.derivation,
            requested_ts=now,
            updated_ts=now,
        )
        blocking = await self._ledger(partial(self._book.record_requested_alone, record))
        if blocking is not None:
            raise SweepPending(blocking)
        self._log("info", "settlement_requested", record, derivation=target.derivation)
        try:
            withdrawal_id = await self._desk.withdraw(
                asset, record.amount, record.address, record.client_id
            )
        except WithdrawalRefused as exc:
            failed = await self._advance(
                key, "failed", reason=exc.reason, detail={"message": str(exc)}
            )
            self._log("warning", "settlement_failed", failed, reason=exc.reason, error=str(exc))
            return failed
        except DeskError as exc:
            # WithdrawalUnknown (and anything else the desk raises): it may have gone out.
            self._log(
                "warning",
                "settlement_lookup_pending",
                record,
                reason="answer_unknown",
                error=str(exc),
            )
            return record
        accepted = await self._advance(key, "accepted", withdrawal_id=withdrawal_id)
        self._log("info", "settlement_accepted", accepted)
        return accepted

    # ----------------------------------------------------------------- advance_open
    async def advance_open(self) -> list[SweepRecord]:
        """One pass over the account's open sweeps; their records after it, oldest first.

        Exchange lists and node answers that cannot be read now leave a sweep where it is
        (the next pass retries); a misconfigured node is logged once per pass, as an error.
        """
        every = await self._ledger(partial(self._book.sweeps, self._account))
        open_sweeps = [r for r in every if r.state in OPEN_STATES]
        if not open_sweeps:
            return []
        claimed = {r.withdrawal_id for r in every if r.withdrawal_id is not None}
        listings: dict[str, list[Withdrawal] | None] = {}
        node_reported = False
        out: list[SweepRecord] = []
        for record in open_sweeps:
            try:
                if record.state in ("requested", "accepted"):
                    if record.asset not in listings:
                        listings[record.asset] = await self._listing(record.asset, open_sweeps)
                    listed = listings[record.asset]
                    if listed is not None:
                        others = frozenset(claimed - {record.withdrawal_id})
                        record = await self._follow(record, listed, others)
                        if record.withdrawal_id is not None:
                            claimed.add(record.withdrawal_id)
                if record.state == "sent":
                    record, reported = await self._confirm(record, node_reported)
                    node_reported = node_reported or reported
            except SettlementStateError as exc:
                # Another process moved this sweep on meanwhile (the ledger refused to move
                # it back): its stored record is the truth, and the other sweeps go on.
                stored = await self._ledger(partial(self._book.sweep, record.key))
                self._log(
                    "warning",
                    "settlement_lookup_pending",
                    record,
                    reason="moved_elsewhere",
                    error=str(exc),
                )
                record = stored if stored is not None else record
            out.append(record)
        return out

    async def _listing(
        self, asset: str, open_sweeps: Sequence[SweepRecord]
    ) -> list[Withdrawal] | None:
        oldest = min(r.requested_ts for r in open_sweeps if r.asset == asset)
        try:
            return await self._desk.withdrawals(asset, int((oldest - LIST_BACK_S) * 1000))
        except DeskError as exc:
            log.warning(
                "settlement_lookup_pending",
                account=self._account,
                asset=asset,
                reason="desk_unavailable",
                error=str(exc),
            )
            return None

    async def _follow(
        self, record: SweepRecord, listed: list[Withdrawal], claimed: frozenset[str]
    ) -> SweepRecord:
        """Move a ``requested`` or ``accepted`` sweep on from the exchange's list."""
        if record.state == "requested":
            found = match_withdrawal(record, listed, claimed)
            if len(found) > 1:
                ids = sorted(w.id for w in found)
                self._log(
                    "warning",
                    "settlement_lookup_pending",
                    record,
                    reason="ambiguous",
                    candidates=ids,
                )
                return record
            if not found:
                age = self._wall() - record.requested_ts
                if age <= self._grace_s:
                    self._log("info", "settlement_lookup_pending", record, reason="not_listed")
                    return record
                failed = await self._advance(
                    record.key,
                    "failed",
                    reason="not_found_at_exchange",
                    detail={"waited_s": round(age, 1)},
                )
                self._log("error", "settlement_failed", failed, reason="not_found_at_exchange")
                return failed
            (withdrawal,) = found
            record = await self._advance(
                record.key,
                "accepted",
                withdrawal_id=withdrawal.id,
                detail={"found_by": "client_id" if withdrawal.client_id else "match"},
            )
            self._log("info", "settlement_accepted", record)
        else:
            by_id = [w for w in listed if w.id == record.withdrawal_id]
            if not by_id:
                self._log("info", "settlement_lookup_pending", record, reason="not_listed")
                return record
            (withdrawal,) = by_id[:1]
        return await self._on_status(record, withdrawal)

    async def _on_status(self, record: SweepRecord, withdrawal: Withdrawal) -> SweepRecord:
        status = {"status": withdrawal.status, "raw_status": withdrawal.raw_status}
        if withdrawal.status == "failed":
            failed = await self._advance(
                record.key, "failed", reason="failed_at_exchange", detail=status
            )
            self._log(
                "warning",
                "settlement_failed",
                failed,
                reason="failed_at_exchange",
                raw_status=withdrawal.raw_status,
            )
            return failed
        if withdrawal.status == "ok" and withdrawal.txid:
            sent = await self._advance(record.key, "sent", txid=withdrawal.txid, detail=status)
            self._log("info", "settlement_sent", sent)
            return sent
        if withdrawal.status == "ok":
            # done at the exchange without a transaction id: nothing to confirm on chain yet
            self._log("warning", "settlement_lookup_pending", record, reason="ok_without_txid")
        return record

    async def _confirm(self, record: SweepRecord, reported: bool) -> tuple[SweepRecord, bool]:
        """Ask the node how deep a ``sent`` sweep's payment is; ``(record, node_reported)``."""
        if self._node is None or record.txid is None:
            self._log("info", "settlement_lookup_pending", record, reason="no_node")
            return record, False
        try:
            seen = await confirm(self._node, self._network, record.txid, record.address)
        except NodeMisconfigured as exc:
            if not reported:
                log.error("settlement_node_misconfigured", account=self._account, error=str(exc))
            return record, True
        except NodeError as exc:
            self._log(
                "warning",
                "settlement_lookup_pending",
                record,
                reason="node_unavailable",
                error=str(exc),
            )
            return record, False
        if seen.is_confirmed(self._confirmations):
            confirmed = await self._advance(
                record.key,
                "confirmed",
                confirmations=seen.confirmations,
                detail={"received": str(seen.amount_kas)},
            )
            self._log("info", "settlement_confirmed", confirmed, received=seen.amount_kas)
            return confirmed, False
        if seen.found and seen.confirmations != record.confirmations:
            record = await self._advance(record.key, "sent", confirmations=seen.confirmations)
        self._log(
            "info",
            "settlement_lookup_pending",
            record,
            reason="confirming",
            found=seen.found,
            needed=self._confirmations,
        )
        return record, False

    def _log(self, level: str, event: str, record: SweepRecord, **extra: Any) -> None:
        amount: Decimal = record.amount
        getattr(log, level)(
            event,
            account=record.account,
            exchange=record.exchange,
            asset=record.asset,
            amount=amount,
            key=record.key,
            client_id=record.client_id,
            withdrawal_id=record.withdrawal_id,
            txid=record.txid,
            address=record.address,
            confirmations=record.confirmations,
            **extra,
        )
