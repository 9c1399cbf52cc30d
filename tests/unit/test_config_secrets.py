"""Secret references: resolution, missing variables, and that values never leak."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from kasmm.commands.validate import validate_command
from kasmm.config.loader import load_file, load_paths
from kasmm.config.schema import Credentials, Profile
from kasmm.config.secrets import (
    MissingSecret,
    ResolvedCredentials,
    missing_credentials,
    resolve_credentials,
    resolve_secret,
    secret_variable,
)
from kasmm.errors import ConfigError

CANARY_ENV = "canary-env-7f3a9c1e5b"  # value of a referenced environment variable
CANARY_LITERAL = "canary-literal-0d2e8b4f6a"  # a secret wrongly written into a profile

ENABLED_CCXT = """\
venue:
  type: ccxt
  exchange: mexc
  credentials:
    api_key: ${KASMM_CANARY_KEY}
    secret: ${KASMM_CANARY_SECRET}
symbol: KAS/USDT
modes:
  aggressive: {spread_bps: 20, size: 1000}
  passive: {spread_bps: 40, size: 1000}
kill_switch: {max_drawdown: {pct: 5}, max_daily_loss: {quote: 50}}
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def test_resolve_from_env_first(tmp_path: Path) -> None:
    (tmp_path / "KEY").write_text("from-file\n")
    secret = resolve_secret("${KEY}", {"KEY": "from-env"}, tmp_path)
    assert isinstance(secret, SecretStr)
    assert secret.get_secret_value() == "from-env"


def test_resolve_from_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "KEY").write_text("from-file\r\n")
    assert resolve_secret("${KEY}", {}, tmp_path).get_secret_value() == "from-file"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert resolve_secret("${KEY}", {}).get_secret_value() == "from-file"


def test_missing_secret_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(MissingSecret) as info:
        resolve_secret("${NOPE_KEY}", {}, tmp_path)
    assert isinstance(info.value, ConfigError)
    assert info.value.variable == "NOPE_KEY"
    assert str(info.value) == (
        "environment variable NOPE_KEY is not set (and no file in $CREDENTIALS_DIRECTORY)"
    )
    with pytest.raises(MissingSecret, match="NOPE_KEY is empty"):
        resolve_secret("${NOPE_KEY}", {"NOPE_KEY": ""}, None)
    (tmp_path / "NOPE_KEY").write_text("\n")
    with pytest.raises(MissingSecret, match="CREDENTIALS_DIRECTORY/NOPE_KEY is empty"):
        resolve_secret("${NOPE_KEY}", {}, tmp_path)


def test_bad_reference_is_not_echoed() -> None:
    with pytest.raises(ValueError) as info:
        secret_variable(CANARY_LITERAL)
    assert CANARY_LITERAL not in str(info.value)


def test_resolve_credentials_and_repr() -> None:
    creds = Credentials(api_key="${K}", secret="${S}", password="${P}")
    env = {"K": CANARY_ENV + "k", "S": CANARY_ENV + "s", "P": CANARY_ENV + "p"}
    resolved = resolve_credentials(creds, env, None)
    assert isinstance(resolved, ResolvedCredentials)
    assert resolved.password is not None
    assert resolved.password.get_secret_value() == CANARY_ENV + "p"
    assert "**********" in repr(resolved)
    assert CANARY_ENV not in repr(resolved) and CANARY_ENV not in str(resolved)
    with pytest.raises(MissingSecret, match=r"\bS\b"):
        resolve_credentials(creds, {"K": "x", "P": "y"}, None)
    missing = missing_credentials(creds, {"K": "x"}, None)
    assert [(name, exc.variable) for name, exc in missing] == [("secret", "S"), ("password", "P")]


def test_enabled_ccxt_resolves_and_disabled_does_not_need_keys(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(ENABLED_CCXT)
    env = {"KASMM_CANARY_KEY": CANARY_ENV, "KASMM_CANARY_SECRET": CANARY_ENV}
    profiles, issues = load_file(path, env=env)
    assert issues == [] and profiles[0].profile.enabled
    _, issues = load_file(path, env={"KASMM_CANARY_KEY": CANARY_ENV})
    assert [str(i) for i in issues] == [
        f"{path}:6:13: live: venue.credentials.secret: environment variable "
        "KASMM_CANARY_SECRET is not set (and no file in $CREDENTIALS_DIRECTORY)"
    ]
    path.write_text("enabled: false\n" + ENABLED_CCXT)
    assert load_file(path, env={})[1] == []


def test_credentials_directory_used_by_the_loader(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "KASMM_CANARY_KEY").write_text(CANARY_ENV + "\n")
    (creds / "KASMM_CANARY_SECRET").write_text(CANARY_ENV + "\n")
    (tmp_path / "live.yaml").write_text(ENABLED_CCXT)
    assert load_file(tmp_path / "live.yaml", env={}, credentials_dir=creds)[1] == []


def test_literal_secret_error_hides_the_value() -> None:
    data = {
        "name": "x",
        "venue": {
            "type": "ccxt",
            "exchange": "mexc",
            "credentials": {"api_key": CANARY_LITERAL, "secret": "${S}"},
        },
        "symbol": "KAS/USDT",
        "modes": {
            "aggressive": {"spread_bps": 20, "size": 1},
            "passive": {"spread_bps": 40, "size": 1},
        },
    }
    with pytest.raises(ValidationError) as info:
        Profile.model_validate(data)
    assert CANARY_LITERAL not in str(info.value)
    assert CANARY_LITERAL not in repr(info.value)
    assert "never inlined" in str(info.value)


def test_no_secret_value_in_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KASMM_CANARY_KEY", CANARY_ENV)
    monkeypatch.setenv("KASMM_CANARY_SECRET", CANARY_ENV)
    (tmp_path / "live.yaml").write_text(ENABLED_CCXT)
    (tmp_path / "inlined.yaml").write_text(
        ENABLED_CCXT.replace("${KASMM_CANARY_SECRET}", CANARY_LITERAL)
    )
    (tmp_path / "dupkey.yaml").write_text(
        ENABLED_CCXT.replace(
            "    secret: ${KASMM_CANARY_SECRET}\n",
            f"    secret: ${{KASMM_CANARY_SECRET}}\n    secret: {CANARY_LITERAL}\n",
        )
    )
    (tmp_path / "typo.yaml").write_text(
        ENABLED_CCXT.replace("size: 1000}", f"size: {CANARY_LITERAL}}}", 1).replace(
            "exchange: mexc", f"exchange: mexc\n  passphrase: {CANARY_LITERAL}"
        )
    )
    assert validate_command([tmp_path]) == 1
    out, err = capsys.readouterr()
    assert "inlined.yaml:6:13: inlined: venue.credentials.secret:" in out
    assert 'duplicate key "secret"' in out
    assert "typo.yaml" in out
    for canary in (CANARY_ENV, CANARY_LITERAL):
        assert canary not in out and canary not in err

    result = load_paths([tmp_path])
    assert list(result.profiles) == ["live"]
    for canary in (CANARY_ENV, CANARY_LITERAL):
        assert canary not in repr(result) and canary not in str(result)
        assert all(canary not in repr(i) for i in result.issues)
