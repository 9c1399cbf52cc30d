"""What a settlement notification says: one :class:`~kasmm.alerts.events.Alert` per change of a
sweep (requested, lookup pending, confirmed, failed, resolved by an operator) and per failed
scheduled run.

Pure, like :mod:`kasmm.alerts.events`: plain values in, the title, body and dedup key out. Every
text goes through :func:`~kasmm.alerts.redact.redact` last, because a failure reason is the
exchange's own error text, and ccxt's error messages can quote the signed request (its URL, its
key): the supervisor registers each account's withdrawal credentials with the redactor when it
loads ``_settlement.yaml``, so none of them can reach a phone.
"""

from __future__ import annotations

from kasmm.alerts.events import Alert
from kasmm.alerts.redact import redact
from kasmm.config.notify import EventKind
from kasmm.store.settlement_resolve import ResolvedStep
from kasmm.store.settlements import SweepRecord

__all__ = [
    "run_failed",
    "sweep_confirmed",
    "sweep_failed",
    "sweep_pending",
    "sweep_requested",
    "sweep_resolved",
]

#: Failure texts are cut here (an exchange's error may carry a whole response body).
_MAX_REASON = 300


def _what(r: SweepRecord) -> str:
    return f"{r.amount} {r.asset} from {r.exchange} account {r.account}"


def _alert(kind: EventKind, title: str, body: str, key: tuple[str, ...]) -> Alert:
    return Alert(kind, redact(title), redact(body), key)


def sweep_requested(r: SweepRecord) -> Alert:
    """A sweep was recorded and its withdrawal requested."""
    return _alert(
        "settlement_requested",
        f"kasmm: settlement of {r.amount} {r.asset} requested ({r.account})",
        f"Sweep {r.key}: {_what(r)} to {r.address} (fee {r.fee}) requested.",
        ("settlement_requested", r.key),
    )


def sweep_pending(r: SweepRecord, age_s: float) -> Alert:
    """The request's answer never came: it may have gone out, so it is looked up, not resent."""
    return _alert(
        "settlement_pending",
        f"kasmm: settlement {r.key} outcome unknown ({r.account})",
        f"Sweep {r.key}: {_what(r)} to {r.address} was requested {age_s:.0f} s ago and the "
        "exchange's answer is not known; it is being looked up by its id and is never sent "
        "again. `kasmm status` shows it.",
        ("settlement_pending", r.key),
    )


def sweep_confirmed(r: SweepRecord) -> Alert:
    """The withdrawal arrived with the confirmations the account requires."""
    return _alert(
        "settlement_confirmed",
        f"kasmm: settlement of {r.amount} {r.asset} confirmed ({r.account})",
        f"Sweep {r.key}: {_what(r)} arrived at {r.address}; transaction {r.txid or '-'} has "
        f"{r.confirmations} confirmations.",
        ("settlement_confirmed", r.key),
    )


def sweep_failed(r: SweepRecord) -> Alert:
    """The sweep failed: refused (nothing left), or the exchange reports it failed."""
    reason = (r.reason or "no reason given")[:_MAX_REASON]
    txid = f" (transaction {r.txid})" if r.txid else ""
    return _alert(
        "settlement_failed",
        f"kasmm: settlement of {r.amount} {r.asset} FAILED ({r.account})",
        f"Sweep {r.key}: {_what(r)} to {r.address} failed{txid}: {reason}",
        ("settlement_failed", r.key),
    )


def sweep_resolved(r: SweepRecord, step: ResolvedStep) -> Alert | None:
    """An operator resolved the sweep (``kasmm settle --resolve``): confirmed or failed on
    their word, not the node's or the exchange's; ``None`` for a move to ``accepted`` (normal
    tracking goes on from there, and an accepted sweep is not announced either)."""
    why = step.reason[:_MAX_REASON]
    if r.state == "confirmed":
        return _alert(
            "settlement_confirmed",
            f"kasmm: settlement of {r.amount} {r.asset} marked confirmed by {step.by} "
            f"({r.account})",
            f"Sweep {r.key}: {_what(r)} to {r.address} was marked confirmed by operator "
            f"{step.by} (transaction {r.txid or '-'}), not by the node: {why}",
            ("settlement_resolved", r.key, r.state),
        )
    if r.state == "failed":
        return _alert(
            "settlement_failed",
            f"kasmm: settlement of {r.amount} {r.asset} marked FAILED by {step.by} ({r.account})",
            f"Sweep {r.key}: {_what(r)} to {r.address} was marked failed by operator {step.by}: "
            f"{why}. The day's limit no longer counts it, and the account's bots expect it "
            "back on the exchange.",
            ("settlement_resolved", r.key, r.state),
        )
    return None


def run_failed(account: str, error: str) -> Alert:
    """A scheduled settlement run of ``account`` raised (the next firing tries again)."""
    return _alert(
        "settlement_failed",
        f"kasmm: scheduled settlement of {account} failed",
        f"The scheduled settlement of account {account} failed: {error[:_MAX_REASON]}. "
        "Open sweeps stay in the ledger; the next scheduled run resumes them.",
        ("settlement_run_failed", account, error[:80]),
    )
