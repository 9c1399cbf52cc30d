"""``kasmm settle PROFILES_DIR --resolve KEY --as accepted|confirmed|failed --reason TEXT``.

The operator's way out of a sweep that cannot finish on its own (a ``sent`` payment the node no
longer shows because it was spent from the wallet before its confirmations, a KuCoin sweep two
withdrawals match, a lookup the exchange's list cannot answer): while open, such a sweep holds
every new sweep of its asset. The rules are :mod:`kasmm.store.settlement_resolve`'s.

A ledger operation only: no exchange, no node and no credential is needed (the profiles are not
read either, so a broken profile never blocks the way out). It takes the account's settlement
lock, so it never races a running ``kasmm settle --execute`` or the supervisor's scheduled
settlement, writes the step (with who and why) and the operator action in one transaction,
logs ``settlement_resolved``, and prints the sweep with its trail. A running supervisor's watch
announces it.

Exit statuses: 0 resolved; ``USAGE`` refused (unknown or closed sweep, a missing reason or
transaction id, ...: the message says why, nothing written) or the ledger cannot be opened;
``EXIT_IN_USE`` the account is being settled now (try again when that ends).
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from kasmm.alerts.redact import redact
from kasmm.commands.settle_render import sweep_json, sweep_lines
from kasmm.daemon import exit_codes
from kasmm.errors import LedgerLost
from kasmm.settle.run import settle_lock_path
from kasmm.store import Ledger, LedgerError, SchemaError
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlement_resolve import Resolution, ResolveAs, Resolved, ResolveRefused
from kasmm.store.state_dir import (
    EXIT_IN_USE,
    LockBusy,
    LockFile,
    ledger_path,
    locks_dir,
    prepare_state_dir,
    resolve_state_dir,
)

log = structlog.get_logger("kasmm.settle")

__all__ = ["settle_resolve_command"]

#: What each resolution means from now on (printed after it).
_AFTER: dict[str, str] = {
    "accepted": "kasmm settle --execute (or the schedule) follows it by that withdrawal id",
    "confirmed": "it no longer holds new sweeps of its asset",
    "failed": (
        "it no longer holds new sweeps of its asset and today's limit no longer counts it; "
        "a running bot of the account that booked it as gone expects it back on the exchange"
    ),
}


def _fail(message: str, status: int = exit_codes.USAGE) -> int:
    print(f"kasmm settle: {message}", file=sys.stderr)
    return status


def settle_resolve_command(
    directory: Path,
    key: str,
    to: ResolveAs,
    reason: str,
    *,
    txid: str | None = None,
    withdrawal_id: str | None = None,
    state_dir: Path | None = None,
    operator: str | None = None,
    as_json: bool = False,
    wall: Callable[[], float] = time.time,
) -> int:
    """Resolve open sweep ``key`` as ``to``; see the module docstring for the exit statuses."""
    if not directory.is_dir():
        return _fail(f"no such directory: {directory}")
    state = resolve_state_dir(state_dir)
    path = ledger_path(state)
    if not path.exists():
        return _fail(f"no ledger at {path}: no sweep to resolve")
    try:
        opened = Ledger(path)
    except (LedgerLost, LedgerError, SchemaError) as exc:
        return _fail(str(exc))
    with opened as ledger:
        book = SettlementBook(ledger)
        record = book.sweep(key)
        if record is None:
            return _fail(f"no sweep {key!r} in the ledger {path}")
        lock = LockFile(
            settle_lock_path(locks_dir(prepare_state_dir(state)), record.account),
            f"kasmm settle --resolve {record.account}",
        )
        resolution = Resolution(
            key=key,
            to=to,
            reason=reason,
            by=operator or getpass.getuser(),
            txid=txid,
            withdrawal_id=withdrawal_id,
        )
        try:
            with lock.acquire():
                done = book.resolve(resolution, wall())
        except LockBusy as exc:
            return _fail(
                f"account {record.account!r} is being settled now ({exc}); resolve it when "
                "that run ends",
                EXIT_IN_USE,
            )
        except ResolveRefused as exc:
            return _fail(str(exc))
        _log(done)
        if as_json:
            print(json.dumps(_json(done, book), indent=2))
        else:
            print("\n".join(_text(done, book)))
    return exit_codes.OK


def _log(done: Resolved) -> None:
    r, how = done.after, done.resolution
    log.info(
        "settlement_resolved",
        account=r.account,
        exchange=r.exchange,
        asset=r.asset,
        amount=str(r.amount),
        sweep_key=r.key,
        state=r.state,
        previous=done.before.state,
        operator=how.by,
        reason=redact(how.reason),
        txid=r.txid,
        withdrawal_id=r.withdrawal_id,
    )


def _text(done: Resolved, book: SettlementBook) -> list[str]:
    how = done.resolution
    return [
        f"sweep {how.key}: {done.before.state} -> {done.after.state}, resolved by {how.by}: "
        f"{how.reason}",
        *sweep_lines(done.after, book),
        f"  from now on: {_AFTER[done.after.state]}",
    ]


def _json(done: Resolved, book: SettlementBook) -> dict[str, object]:
    how = done.resolution
    return {
        "resolved": {
            "account": done.after.account,
            "previous": done.before.state,
            "by": how.by,
            "reason": how.reason,
            "sweep": sweep_json(done.after, book),
        }
    }
