"""Secrets canary: API credentials must never leave the process that uses them.

Every ccxt profile gets canary credentials (key, secret, KuCoin passphrase): a MEXC profile that
trades on the loopback emulator, one whose secret is wrong (authentication fails), a KuCoin one
pointed at the same loopback emulator (nothing it asks for exists there: it fails), and a profile
that inlines a literal secret (refused). The supervisor runs as a real process through fills,
injected venue errors (lost answers, 503s, 429s), a reload by file edit and by SIGHUP, a SIGKILL
and a restart on the same state directory, then SIGTERM. Afterwards no canary may appear in: the
log output of both runs, ``/metrics`` and ``/status`` scraped from the control endpoint,
``kasmm status --json``, any byte of the state directory (the SQLite ledger and its WAL), and the
text of exceptions (str, repr and formatted traceback with their chained causes) raised by a
venue built with canary credentials.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import traceback
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from kasmm.clock import RealClock
from kasmm.config.loader import load_file
from kasmm.limiter import TokenBucket
from kasmm.venues.factory import build_venue
from tests.integration.test_supervise_process import Supervised
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
CANARY = {
    "CANARY_MEXC_KEY": "mx0canaryKEY7f3a9c1e5d",
    "CANARY_MEXC_SECRET": "canarySECRETmexc0b5d2e8f4a61",
    "CANARY_WRONG_SECRET": "canarySECRETwrong9e7c3b1d22",
    "CANARY_KUCOIN_KEY": "canaryKEYkucoin64f0c2a9b1",
    "CANARY_KUCOIN_SECRET": "canarySECRETkucoin5a8e31c07d",
    "CANARY_KUCOIN_PASSPHRASE": "canaryPASSkucoin1d9b7e2f",
}
LITERAL = "canaryLITERALinline3c5a7e9b"
NEEDLES = [*CANARY.values(), LITERAL]
assert all(len(n) >= 20 for n in NEEDLES)

pytestmark = pytest.mark.slow


def forms(needle: str) -> list[bytes]:
    """The needle as it could be written: plain, URL-encoded, JSON-escaped, UTF-16."""
    return [
        needle.encode(),
        urllib.parse.quote(needle).encode(),
        json.dumps(needle)[1:-1].encode(),
        needle.encode("utf-16-le"),
    ]


def leaks(data: bytes) -> list[str]:
    """Which needles occur in ``data`` (in any of their forms)."""
    return [n for n in NEEDLES if any(f in data for f in forms(n))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Emulator:
    def __init__(self, tmp: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.emulators.mexc",
                "--port",
                "0",
                "--api-key",
                CANARY["CANARY_MEXC_KEY"],
                "--secret",
                CANARY["CANARY_MEXC_SECRET"],
                "--mid",
                "0.08",
                "--spread-bps",
                "20",
                "--size",
                "50000",
                "--state",
                str(tmp / "emu-state.json"),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url: str = json.loads(self.proc.stdout.readline())["url"]

    def call(self, path: str, data: dict[str, Any] | None = None) -> Any:
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(data).encode() if data is not None else None,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(tmp_path)
    yield emu
    emu.close()


def ccxt_profile(name: str, exchange: str, url: str, creds: str, spread: int = 10) -> str:
    return textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: ccxt
          exchange: {exchange}
          rest_url: {url}
          credentials: {creds}
          use_websocket: false
          book_poll_s: 0.25
          timeout_s: 3
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: {spread}, size: 500, levels: 1}}
          passive: {{spread_bps: {spread}, size: 500, levels: 1}}
        refresh: {{fallback_interval_s: 0.5}}
        kill_switch: {{max_drawdown: null, max_daily_loss: null}}
        """
    )


def scrape(addr: str, path: str) -> bytes:
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as r:
        body: bytes = r.read()
        return body


def status_cli(addr: str) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "kasmm", "status", "--addr", addr, "--json"],
        cwd=REPO,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


class Supervisor(Supervised):
    """``kasmm supervise`` with file watching, the control endpoint and debug logs."""

    def __init__(
        self, log: Path, profiles: Path, state: Path, addr: str, env: dict[str, str]
    ) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kasmm",
                "--log-format",
                "json",
                "--log-level",
                "debug",
                "supervise",
                str(profiles),
                "--metrics-addr",
                addr,
                "--state-dir",
                str(state),
            ],
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )


def test_canary_credentials_appear_nowhere(tmp_path: Path, emulator: Emulator) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    state = tmp_path / "state"
    url = emulator.url
    mexc = '{api_key: "${CANARY_MEXC_KEY}", secret: "${CANARY_MEXC_SECRET}"}'
    wrong = '{api_key: "${CANARY_MEXC_KEY}", secret: "${CANARY_WRONG_SECRET}"}'
    kucoin = (
        '{api_key: "${CANARY_KUCOIN_KEY}", secret: "${CANARY_KUCOIN_SECRET}",'
        ' password: "${CANARY_KUCOIN_PASSPHRASE}"}'
    )
    (profiles / "mexc.yaml").write_text(ccxt_profile("canary-mexc", "mexc", url, mexc))
    (profiles / "wrong.yaml").write_text(ccxt_profile("canary-wrong", "mexc", url, wrong))
    (profiles / "kucoin.yaml").write_text(ccxt_profile("canary-kucoin", "kucoin", url, kucoin))
    env = {**os.environ, **CANARY}
    outputs: dict[str, bytes] = {}
    runs: list[Supervisor] = []

    def start(n: int) -> tuple[Supervisor, str]:
        addr = f"127.0.0.1:{free_port()}"
        sup = Supervisor(tmp_path / f"run{n}.jsonl", profiles, state, addr, env)
        runs.append(sup)
        return sup, addr

    try:
        first, addr = start(1)
        first.wait_for(lambda e: e["event"] == "supervisor_ready", timeout=40)
        # Venue trouble: lost answers after the order was placed, 503s, 429s.
        for path in ("/api/v3/order", "/api/v3/batchOrders"):  # single or batch placements
            emulator.call(
                "/_emu/fault",
                {"method": "POST", "path": path, "status": 503, "count": 2, "after": True},
            )
        emulator.call(
            "/_emu/fault",
            {"method": "GET", "path": "/api/v3/openOrders", "status": 429, "count": 2},
        )
        ours = wait_until(
            lambda: [
                o
                for o in emulator.call("/_emu/state")["orders"]
                if o["status"] == "NEW" and o["account"] == CANARY["CANARY_MEXC_KEY"]
            ]
        )
        ask = next((o for o in ours if o["side"] == "SELL"), ours[0])
        side = "BUY" if ask["side"] == "SELL" else "SELL"
        emulator.call("/_emu/trade", {"side": side, "price": ask["price"], "size": "200"})
        first.wait_for(lambda e: e["event"] == "fill", timeout=30)
        first.wait_for(
            lambda e: e["event"] == "profile_failed" and e.get("profile") == "canary-wrong",
            timeout=30,
        )
        # Reloads: an edit (watched), a refused literal secret, and SIGHUP.
        (profiles / "mexc.yaml").write_text(ccxt_profile("canary-mexc", "mexc", url, mexc, 12))
        literal = f'{{api_key: "${{CANARY_MEXC_KEY}}", secret: "{LITERAL}"}}'
        (profiles / "literal.yaml").write_text(ccxt_profile("canary-lit", "mexc", url, literal))
        first.wait_for(lambda e: e["event"] == "config_invalid", timeout=20)
        first.proc.send_signal(signal.SIGHUP)
        first.wait_for(lambda e: e["event"] == "reload_requested", timeout=20)
        time.sleep(2.0)
        outputs["metrics-1"] = scrape(addr, "/metrics")
        outputs["status-1"] = scrape(addr, "/status")
        outputs["status-cli-1"] = status_cli(addr)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)

        second, addr = start(2)
        second.wait_for(lambda e: e["event"] == "supervisor_ready", timeout=40)
        time.sleep(2.0)
        outputs["metrics-2"] = scrape(addr, "/metrics")
        outputs["status-2"] = scrape(addr, "/status")
        outputs["status-cli-2"] = status_cli(addr)
        second.proc.send_signal(signal.SIGTERM)
        second.proc.wait(timeout=40)
    finally:
        for sup in runs:
            sup.close()

    # The run did what it should: the scrapes are real and the errors happened.
    assert b"kasmm_" in outputs["metrics-1"] and b"canary-mexc" in outputs["metrics-1"]
    status = json.loads(outputs["status-cli-2"])
    assert {p["name"] for p in status["profiles"]} >= {"canary-mexc", "canary-kucoin"}
    events = [e for s in runs for e in s.events()]
    assert any(e["event"] == "fill" for e in events)
    assert any(
        e["event"] == "profile_failed" and e.get("profile") == "canary-kucoin" for e in events
    )

    for n in (1, 2):
        outputs[f"log-{n}"] = (tmp_path / f"run{n}.jsonl").read_bytes()
    for file in sorted(state.rglob("*")):
        if file.is_file():
            outputs[f"state:{file.name}"] = file.read_bytes()
    assert any(name.startswith("state:kasmm.sqlite") for name in outputs)
    # The detector itself works (the environment we passed does hold the canaries).
    assert leaks(json.dumps(CANARY).encode()) == list(CANARY.values())
    found = {name: leaks(data) for name, data in outputs.items()}
    assert not {k: v for k, v in found.items() if v}, found


@pytest.mark.anyio
async def test_canary_is_absent_from_venue_exceptions(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CANARY.items():
        monkeypatch.setenv(name, value)
    mexc = '{api_key: "${CANARY_MEXC_KEY}", secret: "${CANARY_WRONG_SECRET}"}'
    kucoin = (
        '{api_key: "${CANARY_KUCOIN_KEY}", secret: "${CANARY_KUCOIN_SECRET}",'
        ' password: "${CANARY_KUCOIN_PASSPHRASE}"}'
    )
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cases = [
        ("wrong", ccxt_profile("x-wrong", "mexc", emulator.url, mexc)),
        ("kucoin", ccxt_profile("x-kucoin", "kucoin", emulator.url, kucoin)),
        ("dead", ccxt_profile("x-dead", "kucoin", dead, kucoin)),
    ]
    texts: list[str] = []
    clock = RealClock()
    for label, text in cases:
        path = tmp_path / f"{label}.yaml"
        path.write_text(text)
        loaded, issues = load_file(path)
        assert not issues
        venue = build_venue(loaded[0].profile, clock, TokenBucket(50, 50, clock))
        texts.append(repr(venue))
        for call in ("connect", "fetch_balances", "fetch_open_orders"):
            try:
                with anyio.fail_after(20):
                    await getattr(venue, call)()
            except Exception as exc:
                texts.append(str(exc))
                texts.append(repr(exc))
                texts.append("".join(traceback.format_exception(exc)))
            else:
                texts.append(f"{label} {call}: no error")
        await venue.close()
    assert sum("Error" in t or "Failed" in t for t in texts) >= 3  # errors really happened
    found = leaks("\n".join(texts).encode())
    assert not found, found
