"""``kasmm settle --resolve`` end to end: the real command in a subprocess against the ledger a
real ``--execute`` (ccxt, MEXC emulator) left.

A sweep the exchange holds in review forever stays ``accepted`` and holds the asset
(``--plan``: "a sweep of this asset is still pending"). The operator cancels it in the
exchange's interface (the KAS comes back) and states so with ``--resolve KEY --as failed``:
from an empty directory (no profile, no credential, no exchange needed), recorded in the trail
with who and why; the next ``--plan`` sweeps again. Refusals (closed, unknown, usage) exit
non-zero with the reason and write nothing.
"""

from __future__ import annotations

import sys
from decimal import Decimal as D
from pathlib import Path

import anyio
import pytest

from kasmm.store import Ledger
from kasmm.store.settlement_book import SettlementBook
from tests.emulators.wallet import Stage
from tests.integration import test_settle_cli as settle_cli
from tests.integration.test_settle_cli import ACCOUNT, ROOT, Setup, _kas

pytestmark = pytest.mark.anyio

#: The emulator, node and profile directory of ``kasmm settle``'s own end-to-end tests.
setup = settle_cli.setup


async def _resolve(setup: Setup, directory: Path, *args: str) -> tuple[int, str, str]:
    argv = [
        sys.executable,
        "-m",
        "kasmm",
        "--log-format",
        "json",
        "settle",
        str(directory),
        "--state-dir",
        str(setup.state),
        *args,
    ]
    # no credential in the environment: a ledger operation needs none
    env = {k: v for k, v in setup.env(withdrawal=False).items() if k not in ("T_KEY", "T_SECRET")}
    done = await anyio.run_process(argv, env=env, check=False, cwd=ROOT)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_a_stuck_sweep_resolved_as_failed_no_longer_holds_the_asset(
    setup: Setup, tmp_path: Path
) -> None:
    code, out, err = await setup.settle("--execute")  # the exchange reviews it, forever
    assert code == 0, out + err
    (w1,) = setup.emu.wallet.withdrawals.values()
    assert _kas(setup.emu) == D(200000)
    with Ledger(setup.state / "kasmm.sqlite") as ledger:
        (stuck,) = SettlementBook(ledger).sweeps(ACCOUNT)
    assert stuck.state == "accepted"
    code, out, _ = await setup.settle("--plan", withdrawal=False)
    assert code == 0 and "held: a sweep of this asset is still pending" in out, out

    setup.emu.wallet.advance(w1.id, Stage.CANCELLED)  # cancelled in the exchange's UI
    assert _kas(setup.emu) == D(300000)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    why = "cancelled in MEXC's withdrawal history; the KAS is back"
    code, out, err = await _resolve(
        setup, empty, "--resolve", stuck.key, "--as", "failed", "--reason", why, "--operator", "bob"
    )
    assert code == 0, out + err
    assert f"sweep {stuck.key}: accepted -> failed, resolved by bob: {why}" in out
    assert "today's limit no longer counts it" in out and "expects it back" in out
    assert '"event":"settlement_resolved"' in err and '"operator":"bob"' in err
    with Ledger(setup.state / "kasmm.sqlite") as ledger:
        book = SettlementBook(ledger)
        after = book.sweep(stuck.key)
        last = book.steps(stuck.key)[-1]
        (action,) = ledger.operator_actions()
    assert after is not None and after.state == "failed"
    assert last.detail == {"by": "bob", "reason": why, "resolved": True, "from": "accepted"}
    assert (action.operator, action.action, action.details["sweep_key"]) == (
        "bob",
        "settle_resolve",
        stuck.key,
    )

    code, out, _ = await setup.settle("--plan", withdrawal=False)
    assert code == 0 and "still pending" not in out, out
    assert "KAS: holds 300000" in out and "sweep 100000" in out, out

    # closed now: refused, nothing written
    code, out, err = await _resolve(
        setup, empty, "--resolve", stuck.key, "--as", "confirmed", "--reason", "x"
    )
    assert code == 2 and "failed already: only an open sweep" in err, err
    code, _, err = await _resolve(
        setup, empty, "--resolve", "mexc-main:KAS:nope", "--as", "failed", "--reason", "x"
    )
    assert code == 2 and "no sweep 'mexc-main:KAS:nope'" in err, err
    with Ledger(setup.state / "kasmm.sqlite") as ledger:
        assert len(ledger.operator_actions()) == 1
    assert len(setup.emu.wallet.withdrawals) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resolve", "k", "--as", "failed"], "--resolve needs --reason"),
        (["--resolve", "k", "--reason", "x"], "--resolve needs --as"),
        (["--resolve", "k", "--as", "failed", "--reason", "x", "--wait", "5"], "--wait"),
        (["--plan", "--txid", "ab"], "--txid goes with --resolve"),
        (["--resolve", "k", "--execute", "--as", "failed", "--reason", "x"], "not allowed"),
    ],
)
async def test_usage_errors(setup: Setup, tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = await _resolve(setup, tmp_path, *args)
    assert code == 2 and message in err, err
