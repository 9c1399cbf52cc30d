"""How ``kasmm settle`` shows a run: text for people, JSON for scripts.

Per account: each banded asset's line (:func:`kasmm.core.settlement.describe`: the amounts, the
band, the limits that bound a sweep, and why nothing moves), each top-up with the exchange's
deposit address (an operator sends it; kasmm never signs), each sweep this run requested or
followed with its key, amount, destination, state and its trail from the ledger, and the
problems. Money as exact decimal strings; no credential ever reaches these functions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from kasmm.core.settlement import Hold, Sweep, TopUp
from kasmm.settle.service import AccountRun
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import SweepRecord

__all__ = ["render_json", "render_text", "sweep_json", "sweep_lines"]


def _ts(wall: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall))


def sweep_lines(record: SweepRecord, book: SettlementBook) -> list[str]:
    head = (
        f"  sweep {record.key}: {record.amount} {record.asset} to {record.address}: {record.state}"
    )
    if record.txid:
        head += f" (txid {record.txid}, {record.confirmations} confirmations)"
    if record.reason:
        head += f" ({record.reason})"
    lines = [head]
    for step in book.steps(record.key):
        detail = ", ".join(f"{k}={v}" for k, v in sorted(step.detail.items()))
        lines.append(
            f"    {step.seq}. {_ts(step.ts)} {step.state}" + (f": {detail}" if detail else "")
        )
    return lines


def render_text(run: AccountRun, book: SettlementBook) -> str:
    """One account's run as text."""
    what = "execute" if run.executed else "plan"
    lines = [f"account {run.account} ({run.exchange}): {what}"]
    if run.plan is not None:
        lines.extend(f"  {line}" for line in run.lines)
        if not run.plan.assets:
            lines.append("  no asset is banded: nothing to plan")
    for notice in run.top_ups:
        if notice.address is not None:
            lines.append(
                f"  top up: send {notice.amount} {notice.asset} to {notice.address} from your "
                "wallet; kasmm never signs"
            )
        else:
            lines.append(
                f"  top up: deposit {notice.amount} {notice.asset} to the exchange account "
                f"({notice.error}); kasmm never signs"
            )
    if not run.executed and run.plan is not None and run.plan.sweeps:
        lines.append("  (plan only: kasmm settle --execute requests the sweeps above)")
    for record in (*run.advanced, *run.requested):
        lines.extend(sweep_lines(record, book))
    lines.extend(f"  problem: {p}" for p in run.problems)
    return "\n".join(lines)


def sweep_json(record: SweepRecord, book: SettlementBook) -> dict[str, Any]:
    return {
        "key": record.key,
        "asset": record.asset,
        "amount": str(record.amount),
        "fee": str(record.fee),
        "address": record.address,
        "network": record.network,
        "state": record.state,
        "withdrawal_id": record.withdrawal_id,
        "txid": record.txid,
        "confirmations": record.confirmations,
        "reason": record.reason,
        "derivation": record.derivation,
        "trail": [
            {"seq": s.seq, "state": s.state, "ts": s.ts, "detail": dict(s.detail)}
            for s in book.steps(record.key)
        ],
    }


def _action_json(action: Sweep | TopUp | Hold) -> dict[str, Any]:
    if isinstance(action, Sweep):
        return {
            "action": "sweep",
            "amount": str(action.amount),
            "fee": str(action.fee),
            "capped_by": list(action.capped_by),
        }
    if isinstance(action, TopUp):
        return {"action": "top_up", "amount": str(action.amount), "reason": action.reason}
    return {"action": "hold", "reason": action.reason, "excess": str(action.excess)}


def render_json(runs: Sequence[AccountRun], book: SettlementBook) -> dict[str, Any]:
    """Every account's run as one JSON-ready document (exact decimal strings)."""
    accounts: list[dict[str, Any]] = []
    for run in runs:
        assets = []
        if run.plan is not None:
            for plan, line in zip(run.plan.assets, run.lines, strict=True):
                assets.append(
                    {
                        "asset": plan.asset,
                        "counted": str(plan.counted),
                        "free": str(plan.free),
                        "need": str(plan.need),
                        "floor": str(plan.floor),
                        "ceiling": None if plan.ceiling is None else str(plan.ceiling),
                        **_action_json(plan.action),
                        "line": line,
                    }
                )
        accounts.append(
            {
                "account": run.account,
                "exchange": run.exchange,
                "executed": run.executed,
                "busy": run.busy,
                "assets": assets,
                "top_ups": [
                    {
                        "asset": n.asset,
                        "amount": str(n.amount),
                        "reason": n.reason,
                        "address": n.address,
                        "error": n.error,
                    }
                    for n in run.top_ups
                ],
                "sweeps": [sweep_json(r, book) for r in (*run.advanced, *run.requested)],
                "problems": list(run.problems),
            }
        )
    return {"accounts": accounts}
