"""``kasmm settle``'s arguments: the parser, the checks of which flags go together, the call.

Apart from :mod:`kasmm.cli` so that the command line stays a table of commands; nothing here
imports ccxt or the SDK (the command's module does, when it runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_settle_parser", "run_settle"]


def add_settle_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``kasmm settle``: sweep what the bots do not need to a Kaspa wallet (issue 20)."""
    p = sub.add_parser(
        "settle",
        help="plan or execute settlement of exchange accounts to a Kaspa wallet",
        description=(
            "Per account of PROFILES_DIR/_settlement.yaml: what would move and why (--plan, the "
            "default: the amounts, the band, the limits, top-ups with the exchange's deposit "
            "address), or withdraw the planned sweeps to the destination (--execute, with the "
            "withdrawal credentials), recording every step in the ledger; an interrupted "
            "settlement is resumed by the next --execute, never sent twice. Exit 0 done, 1 a "
            "sweep refused or failed, 2 configuration error, 3 an exchange could not be read, "
            "4 --wait ran out with sweeps open, 75 another settlement of the account runs. "
            "--resolve KEY --as confirmed|failed|accepted --reason TEXT: the operator's way out "
            "of an open sweep that cannot finish on its own (a ledger operation: no exchange, "
            "node or credential needed; recorded in its trail with who and why)."
        ),
    )
    p.add_argument("directory", type=Path, metavar="PROFILES_DIR", help="the profile directory")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--plan", action="store_true", help="print the plan only (the default)")
    how.add_argument("--execute", action="store_true", help="request the planned sweeps")
    how.add_argument(
        "--resolve",
        default=None,
        metavar="KEY",
        help="resolve the open sweep KEY (its idempotency key) by the operator's word, with --as",
    )
    p.add_argument(
        "--as",
        dest="resolve_as",
        choices=("confirmed", "failed", "accepted"),  # kasmm.store.settlement_resolve.RESOLVE_AS
        default=None,
        help=(
            "with --resolve: confirmed (the payment arrived; needs its txid: the sweep's, or "
            "--txid), failed (nothing left the account, or it came back: today's limit no "
            "longer counts it and a running bot that booked it expects it back; never for "
            "money that left), or accepted (a requested sweep found in the exchange's own "
            "interface: --withdrawal-id; tracking goes on by that id)"
        ),
    )
    p.add_argument("--reason", default=None, metavar="TEXT", help="with --resolve: why (required)")
    p.add_argument(
        "--txid", default=None, help="with --resolve --as confirmed: the payment's transaction id"
    )
    p.add_argument(
        "--withdrawal-id",
        default=None,
        metavar="ID",
        help="with --resolve: the exchange's withdrawal id (required for --as accepted)",
    )
    p.add_argument(
        "--operator", default=None, help="with --resolve: who acts (default: the login name)"
    )
    p.add_argument("--account", default=None, metavar="NAME", help="only this account")
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --execute: follow open sweeps until confirmed or failed, at most SECONDS",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory holding kasmm.sqlite (default: $STATE_DIRECTORY or ./state)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (exact decimal strings)")


def run_settle(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Check which flags go together (``parser.error`` otherwise), then run the command."""
    if args.resolve is not None:
        return _settle_resolve(parser, args)
    resolving = ("--as", "--reason", "--txid", "--withdrawal-id", "--operator")
    given = (args.resolve_as, args.reason, args.txid, args.withdrawal_id, args.operator)
    for flag, value in zip(resolving, given, strict=True):
        if value is not None:
            parser.error(f"{flag} goes with --resolve KEY")
    if args.wait is not None and not args.execute:
        parser.error("--wait follows the sweeps of --execute")
    if args.wait is not None and not args.wait >= 0:
        parser.error("--wait takes a number of seconds, 0 or more")
    from kasmm.commands.settle import settle_command

    return settle_command(
        args.directory,
        execute=args.execute,
        account=args.account,
        wait_s=args.wait,
        state_dir=args.state_dir,
        as_json=args.json,
    )


def _settle_resolve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``kasmm settle --resolve KEY``: the flags that go with it, then the command."""
    if args.resolve_as is None:
        parser.error("--resolve needs --as confirmed|failed|accepted")
    if args.reason is None or not args.reason.strip():
        parser.error("--resolve needs --reason TEXT (it goes to the sweep's trail)")
    for flag, value in (("--wait", args.wait), ("--account", args.account)):
        if value is not None:
            parser.error(f"{flag} does not go with --resolve (the key names the sweep)")
    from kasmm.commands.settle_resolve import settle_resolve_command

    return settle_resolve_command(
        args.directory,
        args.resolve,
        args.resolve_as,
        args.reason,
        txid=args.txid,
        withdrawal_id=args.withdrawal_id,
        state_dir=args.state_dir,
        operator=args.operator,
        as_json=args.json,
    )
