"""The production ``settle`` of the supervisor's schedule: the settlement service of ``kasmm
settle`` (ccxt desks, the SDK's node client, the executor), run with ``execute=True`` over the
supervisor's last good ``_settlement.yaml``.

Each run opens its own connection to the ledger file, as another process would: the service's
ledger calls are synchronous, and the supervisor's :class:`~kasmm.store.AsyncLedger` connection
belongs to its worker thread. The service takes the account's lock file in the state
directory, so a ``kasmm settle --execute`` in a shell and this schedule never settle one account
at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anyio.to_thread

from kasmm.core.settlement import Gates
from kasmm.store.ledger import Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.state_dir import ledger_path, locks_dir
from kasmm.supervisor.settle_schedule import SettleFn
from kasmm.supervisor.settling import Settling

__all__ = ["scheduled_settle"]


def scheduled_settle(
    settling: Settling, state: Path, *, wall: Callable[[], float] = time.time
) -> SettleFn:
    """``settle(account, gates)`` for ``settling``'s scheduler, on the state directory ``state``.

    :raises RuntimeError: (from the returned function) no valid ``_settlement.yaml`` is loaded.
    """

    async def settle(account: str, gates: Gates) -> object:
        cfg = settling.scheduler.config
        if cfg is None:
            raise RuntimeError("no valid _settlement.yaml is loaded")
        # Imported on first use: ccxt and the SDK load only where settlement runs.
        from kasmm.commands.settle_wiring import build_service

        ledger = await anyio.to_thread.run_sync(Ledger, ledger_path(state))
        try:
            service = build_service(
                settlement=cfg.settlement,
                members=cfg.members,
                profiles=settling.profiles,
                book=SettlementBook(ledger),
                locks=locks_dir(state),
                wall=wall,
            )
            return await service.run(account, execute=True, gates=gates)
        finally:
            ledger.close()

    return settle
