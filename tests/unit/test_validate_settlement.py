"""``kasmm validate DIR`` validates the directory's ``_settlement.yaml`` too: the destination with
the Kaspa SDK, the membership pass against the profiles, and never the withdrawal credentials."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kasmm.commands.validate import validate_command
from tests.emulators.wallet import KAS_ADDRESS
from tests.unit import kaspa_vectors as v

TESTNET = "kaspatest:qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhqrxplya"
PROFILE = """\
name: mexc-kas
venue:
  type: ccxt
  exchange: mexc
  account: mexc-main
  credentials: {api_key: "${T_KEY}", secret: "${T_SECRET}"}
symbol: KAS/USDT
modes:
  passive: {spread_bps: 50, size: 1000, levels: 2}
kill_switch: {max_drawdown: null, max_daily_loss: null}
"""


def _settlement(destination: str, account: str = "mexc-main", key: str = "${WD_KEY}") -> str:
    return textwrap.dedent(f"""\
        settlement:
          {account}:
            network: mainnet
            destination: {destination}
            withdrawal_credentials: {{api_key: "{key}", secret: "${{WD_SECRET}}"}}
            node_url: ws://127.0.0.1:17110
            assets:
              KAS: {{keep_at_least: 1000, keep_at_most: 5000, max_sweep: 3000, max_per_day: 4000}}
        """)


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("T_KEY", "k")
    monkeypatch.setenv("T_SECRET", "s")
    monkeypatch.delenv("WD_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    (tmp_path / "mexc-kas.yaml").write_text(PROFILE)
    return tmp_path


@pytest.mark.parametrize(
    ("settlement", "field", "message"),
    [
        (_settlement(f'{{address: "{KAS_ADDRESS}"}}'), None, None),
        (_settlement(f'{{xpub: "{v.GEN1_ACCOUNT_KPUB}"}}'), None, None),
        (
            _settlement(f'{{address: "{KAS_ADDRESS[:-1]}q"}}'),
            "settlement.mexc-main.destination.address",
            "checksum",
        ),
        (
            _settlement(f'{{address: "{TESTNET}"}}'),
            "settlement.mexc-main.destination.address",
            "mainnet",
        ),
        (
            _settlement(f'{{address: "{KAS_ADDRESS}"}}', account="nobody"),
            "settlement.nobody",
            "no exchange profile names account 'nobody'",
        ),
        (
            _settlement(f'{{address: "{KAS_ADDRESS}"}}', key="${T_KEY}"),
            "settlement.mexc-main.withdrawal_credentials.api_key",
            "trading profile's key",
        ),
    ],
)
def test_validate_checks_the_settlement_file(
    directory: Path,
    capsys: pytest.CaptureFixture[str],
    settlement: str,
    field: str | None,
    message: str | None,
) -> None:
    (directory / "_settlement.yaml").write_text(settlement)
    code = validate_command([directory])
    out = capsys.readouterr().out
    if field is None:
        assert (code, out) == (0, "")  # WD_KEY is not set: validate does not need it
        return
    assert code == 1
    (line,) = out.splitlines()
    assert line.startswith(f"{directory / '_settlement.yaml'}:")
    assert f": {field}: " in line and message is not None and message in line


def test_a_private_key_is_refused_without_being_repeated(
    directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (directory / "_settlement.yaml").write_text(_settlement(f'{{xpub: "{v.GEN1_MASTER_KPRV}"}}'))
    assert validate_command([directory]) == 1
    out = capsys.readouterr().out
    assert "private key" in out and v.GEN1_MASTER_KPRV not in out


def test_a_settlement_file_named_directly_is_checked_against_its_directory(
    directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = directory / "_settlement.yaml"
    path.write_text(_settlement(f'{{address: "{KAS_ADDRESS}"}}'))
    assert validate_command([path]) == 0
    path.write_text(_settlement(f'{{address: "{KAS_ADDRESS}"}}', account="nobody"))
    assert validate_command([path]) == 1
    assert "no exchange profile names account 'nobody'" in capsys.readouterr().out
