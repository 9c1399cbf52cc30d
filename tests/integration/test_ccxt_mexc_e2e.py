"""A supervisor trading on an out-of-process MEXC emulator through the profile's rest_url.

The emulator outlives the bot: orders must arrive signed, post-only and prefixed, fill and be
accounted for, be cancelled at shutdown, and a restart after kill -9 must clean up what the
killed process left, without touching an order that is not the bot's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kasmm.config.schema import Profile
from kasmm.store import Ledger
from tests.integration.test_supervise_process import Supervised
from tests.support import wait_until

KEY, SECRET = "e2e-key-1234", "e2e-secret-abcdef-0123456789"


class EmulatorProcess:
    def __init__(self, tmp: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.emulators.mexc",
                "--port",
                "0",
                "--api-key",
                KEY,
                "--secret",
                SECRET,
                "--mid",
                "0.08",
                "--spread-bps",
                "20",
                "--levels",
                "5",
                "--size",
                "50000",
                "--state",
                str(tmp / "emu-state.json"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = json.loads(self.proc.stdout.readline())["url"]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return json.loads(r.read())

    def post(self, path: str, data: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(data).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def open_orders(self) -> list[dict[str, Any]]:
        return [
            o
            for o in self.get("/_emu/state")["orders"]
            if o["status"] in ("NEW", "PARTIALLY_FILLED")
        ]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess(tmp_path)
    yield emu
    emu.close()


def test_bot_on_mexc_emulator_survives_kill_9(tmp_path: Path, emulator: EmulatorProcess) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "mexc.yaml").write_text(
        textwrap.dedent(f"""\
        name: mexc-e2e
        venue:
          type: ccxt
          exchange: mexc
          rest_url: {emulator.url}
          credentials: {{api_key: "${{E2E_MEXC_KEY}}", secret: "${{E2E_MEXC_SECRET}}"}}
          use_websocket: false
          book_poll_s: 0.25
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: 10, size: 500, levels: 1}}
          passive: {{spread_bps: 10, size: 500, levels: 1}}
        refresh: {{fallback_interval_s: 0.5}}
        kill_switch:
          {{stale_book: {{seconds: 30, action: pause, pause_s: 5}},
           max_drawdown: null, max_daily_loss: null}}
        """)
    )
    profile_prefix = Profile.model_validate(
        {
            "name": "mexc-e2e",
            "venue": {"type": "sim"},
            "symbol": "KAS/USDT",
            "modes": {
                "aggressive": {"spread_bps": 1, "size": 1},
                "passive": {"spread_bps": 1, "size": 1},
            },
        }
    ).client_id_prefix
    foreign = emulator.post(
        "/_emu/foreign",
        {"side": "BUY", "price": "0.07", "qty": "100", "client_order_id": "human-order-1"},
    )
    assert foreign
    env = {**os.environ, "E2E_MEXC_KEY": KEY, "E2E_MEXC_SECRET": SECRET}
    state = tmp_path / "state"

    first = Supervised(profiles, tmp_path / "run1.jsonl", "--state-dir", str(state), env=env)
    try:
        first.wait_for(lambda e: e["event"] == "supervisor_ready", timeout=40)
        ours = wait_until(
            lambda: [
                o
                for o in emulator.open_orders()
                if (o["client_order_id"] or "").startswith(profile_prefix)
            ]
        )
        # An outside taker lifts our ask: a fill the bot must account for.
        ask = next(o for o in ours if o["side"] == "SELL")
        emulator.post("/_emu/trade", {"side": "BUY", "price": ask["price"], "size": "200"})
        first.wait_for(lambda e: e["event"] == "fill", timeout=20)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
    finally:
        first.close()

    left = [
        o for o in emulator.open_orders() if (o["client_order_id"] or "").startswith(profile_prefix)
    ]
    assert left, "a killed bot leaves its orders on the exchange (no dead man's switch on MEXC)"

    second = Supervised(profiles, tmp_path / "run2.jsonl", "--state-dir", str(state), env=env)
    try:
        cleaned = second.wait_for(lambda e: e["event"] == "leftover_orders_cancelled", timeout=40)
        assert cleaned["count"] == len(left)
        second.wait_for(lambda e: e["event"] == "supervisor_ready", timeout=40)
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(timeout=30) == 0
    finally:
        second.close()

    still_open = emulator.open_orders()
    assert [o["client_order_id"] for o in still_open] == ["human-order-1"]
    requests = emulator.get("/_emu/requests")
    # Placements go out one by one or as MEXC batches (``batchOrders``: a JSON list of orders).
    sent = [
        r
        for r in requests
        if r["method"] == "POST" and r["path"] in ("/api/v3/order", "/api/v3/batchOrders")
    ]
    orders = [
        order
        for r in sent
        for order in (
            json.loads(r["params"]["batchOrders"])
            if r["path"] == "/api/v3/batchOrders"
            else [r["params"]]
        )
    ]
    assert orders and all(r["signed_ok"] for r in sent)
    assert all(o["type"] == "LIMIT_MAKER" for o in orders)
    assert all(o["newClientOrderId"].startswith(profile_prefix) for o in orders)
    assert not [r for r in requests if r["status"] == 429]
    # The fill is in the ledger exactly once, like at the venue.
    venue_trades = [t for t in emulator.get("/_emu/state")["trades"] if t["account"] == KEY]
    with Ledger(state / "kasmm.sqlite") as ledger:
        assert len(ledger.fills("mexc-e2e")) == len(venue_trades) >= 1
    # The canary: the secret never reached a log line.
    for log in ("run1.jsonl", "run2.jsonl"):
        assert SECRET not in (tmp_path / log).read_text()
