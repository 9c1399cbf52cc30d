"""A settlement process for crash tests: one sweep of KAS from a MEXC emulator, then exit.

``python -m tests.settle_child --ledger FILE --url URL --address ADDR --amount N`` records the
sweep in the ledger at FILE, requests it through ccxt from the emulator at URL, and prints the
record's state as one JSON line. A test kills it with SIGKILL in between, as a crash would.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path

import anyio

from kasmm.core.settlement import Sweep
from kasmm.settle.address import validate_address
from kasmm.settle.ccxt_desk import CcxtWithdrawalDesk
from kasmm.settle.destination import FixedAddress
from kasmm.settle.executor import Settler
from kasmm.store import Ledger
from kasmm.store.settlement_book import SettlementBook
from tests.settle_rig import mexc_client


async def _main(args: argparse.Namespace) -> None:
    desk = CcxtWithdrawalDesk(mexc_client(args.url))
    try:
        with Ledger(Path(args.ledger)) as ledger:
            settler = Settler(
                account="acct",
                network="mainnet",
                confirmations=10,
                book=SettlementBook(ledger),
                desk=desk,
                node=None,
                destination=FixedAddress(validate_address(args.address, "mainnet")),
            )
            record = await settler.sweep("KAS", Sweep(Decimal(args.amount), Decimal(1), ()))
            sys.stdout.write(json.dumps({"key": record.key, "state": record.state}) + "\n")
    finally:
        await desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.settle_child")
    for name in ("--ledger", "--url", "--address", "--amount"):
        parser.add_argument(name, required=True)
    anyio.run(_main, parser.parse_args())


if __name__ == "__main__":
    main()
