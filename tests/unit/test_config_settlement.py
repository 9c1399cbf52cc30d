"""``_settlement.yaml``: the invalid corpus (tests/invalid/settlement/, one exact issue per file),
the example file, the membership pass against profiles, credentials, and the validator seam."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from kasmm.config.schema import Profile
from kasmm.config.settlement import (
    AssetBandConfig,
    DestinationKind,
    Network,
    prefix_check,
    to_band,
)
from kasmm.config.settlement_load import load_settlement
from kasmm.core.settlement import AssetBand

ROOT = Path(__file__).resolve().parent.parent.parent
CORPUS = ROOT / "tests" / "invalid" / "settlement"
EXAMPLE = ROOT / "profiles" / "_settlement.yaml.example"
M = "settlement.mexc-main."
G = "settlement.gate-main."

# file -> (line, col, field, message substring)
EXPECTED: dict[str, tuple[int, int, str, str]] = {
    "bad_cron.yaml": (12, 13, M + "schedule.cron", "invalid cron expression"),
    "bad_network.yaml": (3, 14, M + "network", "'mainnet' or 'testnet'"),
    "bad_node_url.yaml": (9, 15, M + "node_url", "must be a ws:// or wss:// URL"),
    "bad_timezone.yaml": (13, 17, M + "schedule.timezone", "unknown time zone 'Europe/Atlantis'"),
    "band_inverted.yaml": (13, 24, M + "assets.KAS.keep_at_least", "must not exceed keep_at_most"),
    "both_destinations.yaml": (4, 5, M + "destination", "exactly one of address or xpub"),
    "literal_secret.yaml": (7, 16, M + "withdrawal_credentials.api_key", "never inlined"),
    "mainnet_with_testnet_xpub.yaml": (
        5,
        13,
        M + "destination.xpub",
        "a mainnet xpub starts with kpub or xpub",
    ),
    "missing_limits.yaml": (8, 7, G + "assets.KAS.max_per_day", "required with keep_at_most"),
    "negative_band.yaml": (13, 24, M + "assets.KAS.keep_at_least", "greater than or equal to 0"),
    "no_assets.yaml": (7, 5, G + "assets", "at least 1 item"),
    "no_destination.yaml": (4, 5, G + "destination", "exactly one of address or xpub"),
    "private_key.yaml": (5, 13, M + "destination.xpub", "extended private key"),
    "sweep_above_day.yaml": (16, 20, M + "assets.KAS.max_sweep", "must not exceed max_per_day"),
    "sweep_without_ceiling.yaml": (
        10,
        20,
        G + "assets.KAS.min_sweep",
        "no effect without keep_at_most",
    ),
    "testnet_with_mainnet_address.yaml": (
        5,
        16,
        M + "destination.address",
        "a testnet address starts with 'kaspatest:'",
    ),
    "unknown_key.yaml": (20, 9, M + "assets.USDT.keep_about", "did you mean 'keep_at_most'?"),
    "usdt_sweep_limit.yaml": (
        20,
        20,
        M + "assets.USDT.max_sweep",
        "only KAS can be sent to a Kaspa address",
    ),
}


def test_corpus_is_complete() -> None:
    assert {p.name for p in CORPUS.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid(name: str) -> None:
    line, col, field, fragment = EXPECTED[name]
    result = load_settlement(CORPUS / name)
    assert result.settlement is None
    assert len(result.issues) == 1, [str(i) for i in result.issues]
    issue = result.issues[0]
    assert (issue.line, issue.col, issue.field) == (line, col, field)
    assert fragment in issue.message
    assert str(issue).startswith(f"{CORPUS / name}:{line}:{col}: {field}: ")


@pytest.mark.parametrize(
    ("name", "secret"),
    [("private_key.yaml", "xprv9s21ZrQH"), ("literal_secret.yaml", "abcdef0123456789")],
)
def test_refused_secrets_are_never_repeated(name: str, secret: str) -> None:
    (issue,) = load_settlement(CORPUS / name).issues
    assert secret not in str(issue)


def test_example_loads_and_converts() -> None:
    result = load_settlement(EXAMPLE)
    assert result.issues == []
    assert result.settlement is not None
    acct = result.settlement.settlement["mexc-main"]
    assert acct.network == "mainnet" and acct.confirmations == 100
    assert acct.schedule is not None and acct.schedule.cron == "0 3 * * *"
    kas, usdt = (to_band(a, acct.assets[a]) for a in ("KAS", "USDT"))
    assert kas == AssetBand(D(50000), D(200000), D(5000), D(100000), D(150000), True)
    assert usdt == AssetBand(D(2000), D(20000), D(0), None, None, False)


def test_empty_file_is_no_settlement(tmp_path: Path) -> None:
    (tmp_path / "_settlement.yaml").write_text("")
    result = load_settlement(tmp_path / "_settlement.yaml")
    assert result.issues == [] and result.settlement is not None
    assert result.settlement.settlement == {}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("- a\n- b\n", "expected a mapping"), ("a: [1\n", "YAML syntax error")],
)
def test_not_a_mapping(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "_settlement.yaml").write_text(text)
    (issue,) = load_settlement(tmp_path / "_settlement.yaml").issues
    assert fragment in issue.message


def _profile(name: str, exchange: str, account: str | None, key: str = "${K}") -> Profile:
    venue: dict[str, object] = {
        "type": "ccxt",
        "exchange": exchange,
        "credentials": {"api_key": key, "secret": "${S}"},
    }
    if account is not None:
        venue["account"] = account
    return Profile.model_validate(
        {
            "name": name,
            "venue": venue,
            "symbol": "KAS/USDT",
            "modes": {"passive": {"spread_bps": 50, "size": 100}},
        }
    )


def test_members_are_the_profiles_naming_the_account() -> None:
    profiles = {
        p.name: p
        for p in (
            _profile("b", "mexc", "mexc-main"),
            _profile("a", "mexc", "mexc-main"),
            _profile("c", "mexc", None),
            _profile("d", "gate", "gate-main"),
        )
    }
    result = load_settlement(EXAMPLE, profiles=profiles)
    assert result.issues == []
    assert result.members == {"mexc-main": ("a", "b")}


@pytest.mark.parametrize(
    ("profiles", "field", "fragment"),
    [
        ([], "settlement.mexc-main", "no exchange profile names account 'mexc-main'"),
        (
            [_profile("a", "mexc", "mexc-main"), _profile("b", "gate", "mexc-main")],
            "settlement.mexc-main",
            "trade on gate, mexc",
        ),
        (
            [_profile("a", "mexc", "mexc-main", key="${MEXC_WITHDRAW_API_KEY}")],
            "settlement.mexc-main.withdrawal_credentials.api_key",
            "is a trading profile's key",
        ),
    ],
)
def test_membership_problems(profiles: list[Profile], field: str, fragment: str) -> None:
    result = load_settlement(EXAMPLE, profiles={p.name: p for p in profiles})
    (issue,) = result.issues
    assert issue.field == field and fragment in issue.message
    assert result.settlement is None and result.members == {}


def test_credentials_resolved_only_when_required(tmp_path: Path) -> None:
    assert load_settlement(EXAMPLE, env={}).issues == []
    result = load_settlement(EXAMPLE, env={}, require_credentials=True, credentials_dir=tmp_path)
    assert [i.field for i in result.issues] == [
        "settlement.mexc-main.withdrawal_credentials.api_key",
        "settlement.mexc-main.withdrawal_credentials.secret",
    ]
    assert "MEXC_WITHDRAW_API_KEY" in result.issues[0].message
    env = {"MEXC_WITHDRAW_API_KEY": "k-not-real", "MEXC_WITHDRAW_API_SECRET": "s-not-real"}
    result = load_settlement(EXAMPLE, env=env, require_credentials=True)
    assert result.issues == [] and "k-not-real" not in repr(result.settlement)


def test_destination_validator_is_the_callers() -> None:
    seen: list[tuple[DestinationKind, str, Network]] = []

    def sdk_check(kind: DestinationKind, value: str, network: Network) -> str | None:
        seen.append((kind, value, network))
        return "bad checksum"

    (issue,) = load_settlement(EXAMPLE, check_destination=sdk_check).issues
    assert seen == [("address", "kaspa:REPLACE-WITH-YOUR-WALLET-ADDRESS", "mainnet")]
    assert (issue.field, issue.message) == (
        "settlement.mexc-main.destination.address",
        "bad checksum",
    )


@pytest.mark.parametrize(
    ("kind", "value", "network", "ok"),
    [
        ("address", "kaspa:qq", "mainnet", True),
        ("address", "kaspatest:qq", "mainnet", False),
        ("address", "kaspatest:qq", "testnet", True),
        ("address", "kaspa:qq", "testnet", False),
        ("xpub", "kpub2...", "mainnet", True),
        ("xpub", "xpub6...", "mainnet", True),
        ("xpub", "ktub2...", "testnet", True),
        ("xpub", "tpubD...", "testnet", True),
        ("xpub", "kpub2...", "testnet", False),
    ],
)
def test_prefix_check(kind: DestinationKind, value: str, network: Network, ok: bool) -> None:
    assert (prefix_check(kind, value, network) is None) is ok


def test_to_band_only_kas_is_sweepable() -> None:
    band = AssetBandConfig(keep_at_least=D(1), keep_at_most=D(2))
    assert to_band("KAS", band).sweepable and not to_band("USDC", band).sweepable
