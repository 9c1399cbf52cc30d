"""``kasmm settle PROFILES_DIR [--plan | --execute] [--account NAME] [--wait S]``.

Reads the profiles and ``_settlement.yaml`` of a directory (every problem as
``file:line:col``; the destination checked with the SDK; ``--execute`` also needs the
withdrawal credentials, ``--plan`` never reads them), the gates (halted profiles: the ledger's
halts and the running supervisors'), then runs :class:`~kasmm.settle.service.SettlementService`
per account and prints what it planned or did. ``--wait`` then follows the open sweeps, one
pass every few seconds on the monotonic clock, until each is confirmed or failed, or the time
is up. ``--resolve KEY`` is the operator's way out of a sweep stuck open
(:mod:`kasmm.commands.settle_resolve`: a ledger operation, reads no profile).

Exit statuses (:mod:`kasmm.daemon.exit_codes`): 0 done or nothing to do; ``SETTLE_FAILED`` a
sweep was refused or failed; ``USAGE`` a configuration or usage error (nothing was read from an
exchange); ``SETTLE_UNAVAILABLE`` an exchange could not be read (nothing decided for that
account); ``SETTLE_PENDING`` ``--wait`` ran out with sweeps still open; ``EXIT_IN_USE`` another
process settles the account now.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from kasmm.commands.settle_gates import halted_profiles
from kasmm.commands.settle_render import render_json, render_text
from kasmm.config.loader import ConfigIssue, load_paths
from kasmm.config.settlement_load import load_settlement
from kasmm.core.settlement import Gates
from kasmm.daemon import exit_codes
from kasmm.errors import LedgerLost
from kasmm.settle.check import find_settlement_file, sdk_destination_check
from kasmm.settle.service import AccountRun, SettlementService
from kasmm.store import Ledger, LedgerError, SchemaError
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.state_dir import (
    EXIT_IN_USE,
    ledger_path,
    locks_dir,
    prepare_state_dir,
    resolve_state_dir,
)

__all__ = ["POLL_S", "exit_status", "settle_command"]

#: Seconds between two passes over the open sweeps under ``--wait``.
POLL_S = 2.0


def _fail(message: str) -> int:
    print(f"kasmm settle: {message}", file=sys.stderr)
    return exit_codes.USAGE


def _print_issues(issues: Sequence[ConfigIssue]) -> None:
    for issue in sorted(issues, key=ConfigIssue.sort_key):
        print(issue, file=sys.stderr)


def exit_status(runs: Sequence[AccountRun], *, waited: bool) -> int:
    """The most urgent outcome of the runs decides the exit status."""
    if any(r.failed for r in runs):
        return exit_codes.SETTLE_FAILED
    if any(r.busy for r in runs):
        return EXIT_IN_USE
    if any(r.plan is None for r in runs):
        return exit_codes.SETTLE_UNAVAILABLE
    if waited and any(r.open for r in runs):
        return exit_codes.SETTLE_PENDING
    return exit_codes.OK


def settle_command(
    directory: Path,
    *,
    execute: bool = False,
    account: str | None = None,
    wait_s: float | None = None,
    state_dir: Path | None = None,
    as_json: bool = False,
    poll_s: float = POLL_S,
    service_factory: Callable[..., SettlementService] | None = None,
) -> int:
    """Plan (or execute) the settlement of the accounts of ``directory``; see the module
    docstring for the exit statuses. ``service_factory`` replaces the exchange and node
    wiring (tests); the default is :func:`kasmm.commands.settle_wiring.build_service`."""
    if not directory.is_dir():
        return _fail(f"no such directory: {directory}")
    loaded = load_paths([directory])
    if loaded.issues:
        _print_issues(loaded.issues)
        return _fail(f"{len(loaded.issues)} profile issue(s): fix them first (kasmm validate)")
    path = find_settlement_file(directory)
    if path is None:
        return _fail(f"no _settlement.yaml in {directory}: nothing to settle")
    profiles = {name: lp.profile for name, lp in loaded.profiles.items()}
    settlement = load_settlement(
        path,
        profiles=profiles,
        check_destination=sdk_destination_check,
        require_credentials=execute,
    )
    if settlement.settlement is None:
        _print_issues(settlement.issues)
        return _fail(f"{path}: {len(settlement.issues)} issue(s)")
    accounts = sorted(settlement.settlement.settlement)
    if account is not None:
        if account not in accounts:
            return _fail(f"{path}: no settlement for account {account!r}")
        accounts = [account]
    state = prepare_state_dir(resolve_state_dir(state_dir))
    try:
        ledger = Ledger(ledger_path(state))
    except (LedgerLost, LedgerError, SchemaError) as exc:
        return _fail(str(exc))
    with ledger:
        book = SettlementBook(ledger)
        if service_factory is None:
            from kasmm.commands.settle_wiring import build_service

            service_factory = build_service
        service = service_factory(
            settlement=settlement.settlement,
            members=settlement.members,
            profiles=profiles,
            book=book,
            locks=locks_dir(state),
            accounts=loaded.accounts,
        )
        runs = []
        for name in accounts:
            members = settlement.members.get(name, ())
            gates = Gates(halted_profiles=halted_profiles(ledger, state, members))
            runs.append(anyio.run(_run_one, service, name, execute, gates, wait_s, poll_s))
        if as_json:
            print(json.dumps(render_json(runs, book), indent=2))
        else:
            print("\n\n".join(render_text(run, book) for run in runs))
        return exit_status(runs, waited=execute and wait_s is not None)


async def _run_one(
    service: SettlementService,
    account: str,
    execute: bool,
    gates: Gates,
    wait_s: float | None,
    poll_s: float,
) -> AccountRun:
    return await service.run(account, execute=execute, gates=gates, wait_s=wait_s, poll_s=poll_s)
