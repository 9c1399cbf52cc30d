"""A settlement rig for tests: an exchange emulator, a ccxt withdrawal desk on it, the Kaspa node
emulator paid whenever the exchange sends a withdrawal, and a ledger.

Shared by ``tests/unit/test_settle_ccxt.py`` and the crash child (``tests/settle_child.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
from pydantic import SecretStr

from kasmm.settle.ccxt_desk import CcxtWithdrawalDesk
from kasmm.settle.node import SOMPI_PER_KAS
from tests.emulators.bingx import BingxEmulator
from tests.emulators.gate import GateEmulator
from tests.emulators.gate import configure_ccxt as configure_gate
from tests.emulators.gate_venue import ACCOUNT as GATE_ACCOUNT
from tests.emulators.kaspa_node import KaspaNodeEmulator
from tests.emulators.kucoin import KucoinEmulator
from tests.emulators.mexc import MexcEmulator
from tests.emulators.mexc import configure_ccxt as configure_mexc
from tests.emulators.wallet import KAS_ADDRESS, Stage, Wallet

__all__ = ["EXCHANGES", "KEY", "SECRET", "START_KAS", "Exchange", "exchange", "mexc_client"]

KEY, SECRET = "wd-key", "wd-secret-0123456789"
START_KAS = Decimal("100000")
EXCHANGES = ("mexc", "gate", "kucoin", "bingx")


@dataclass
class Exchange:
    """A started emulator, its wallet, a desk on it and the node its withdrawals pay."""

    emu: Any
    wallet: Wallet
    desk: CcxtWithdrawalDesk
    node: KaspaNodeEmulator
    account: str
    kas: Callable[[], Decimal]


def link_node(wallet: Wallet, node: KaspaNodeEmulator) -> None:
    """Make ``node`` hold the payment of every withdrawal the exchange marks sent (once)."""
    paid: set[str] = set()
    before = wallet.on_change

    def on_change() -> None:
        if before is not None:
            before()
        for w in wallet.withdrawals.values():
            if w.stage in (Stage.SENT, Stage.COMPLETED) and w.txid and w.id not in paid:
                paid.add(w.id)
                node.pay(w.address, w.txid, int(w.received * SOMPI_PER_KAS))

    wallet.on_change = on_change


def mexc_client(base_url: str, key: str = KEY, secret: str = SECRET) -> Any:
    """A ``ccxt.async_support.mexc`` with the withdrawal key, pointed at an emulator."""
    ex = ccxt_async.mexc({"apiKey": key, "secret": secret, "enableRateLimit": False})
    configure_mexc(ex, base_url)
    return ex


@asynccontextmanager
async def exchange(name: str, **emu_args: Any) -> AsyncIterator[Exchange]:
    """The emulator ``name`` (KAS 100000, :data:`KAS_ADDRESS` whitelisted), a desk on it and a
    linked node emulator; all closed afterwards."""
    balances = {"KAS": str(START_KAS), "USDT": "10000"}
    emu: Any
    if name == "mexc":
        emu = MexcEmulator(KEY, SECRET, balances=balances, **emu_args)
    elif name == "gate":
        emu = GateEmulator(api_key=KEY, secret=SECRET, balances=balances, **emu_args)
    elif name == "kucoin":
        emu = KucoinEmulator(KEY, SECRET, balances=balances, **emu_args)
    else:
        emu = BingxEmulator(KEY, SECRET, balances=balances, **emu_args)
    async with emu, KaspaNodeEmulator() as node:
        account = GATE_ACCOUNT if name == "gate" else KEY
        if name == "gate":
            ex = ccxt_async.gate({"apiKey": KEY, "secret": SECRET, "enableRateLimit": False})
            configure_gate(ex, emu.base_url)
        else:
            ex = emu.ccxt()
        desk = CcxtWithdrawalDesk(ex, secrets=[SecretStr(KEY), SecretStr(SECRET)])
        try:
            emu.wallet.allow(account, KAS_ADDRESS)
            link_node(emu.wallet, node)
            matching = emu.wallet.engine
            yield Exchange(
                emu,
                emu.wallet,
                desk,
                node,
                account,
                lambda: matching.balance(account, "KAS").available,
            )
        finally:
            await desk.close()
        assert getattr(emu, "internal_errors", []) == []
