"""The invalid-profile corpus: every file in tests/invalid/ fails at an exact place.

Each case is one YAML file; the table below holds its single expected issue as
``(line, col, field, message substring)``. Cases that need more than one file live in a
subdirectory and have their own tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kasmm.config.loader import ConfigIssue, load_file, load_paths

CORPUS = Path(__file__).resolve().parent.parent / "invalid"
ENV = {"KASMM_TEST_PRESENT_SECRET": "present-but-not-a-real-secret"}

# file -> (line, col, field, message substring)
EXPECTED: dict[str, tuple[int, int, str, str]] = {
    "syntax_error.yaml": (6, 1, "-", "YAML syntax error: expected ',' or ']'"),
    "tab_indentation.yaml": (6, 1, "-", "indent with spaces"),
    "wrong_type.yaml": (7, 11, "modes.aggressive.size", "valid decimal"),
    "unknown_top_key.yaml": (11, 1, "colour", "unknown key 'colour'"),
    "unknown_nested_key.yaml": (
        11,
        5,
        "modes.passive.colour",
        "allowed: ask_spread_bps, bid_spread_bps, level_size_step, level_step_bps",
    ),
    "negative_spread.yaml": (9, 17, "modes.passive.spread_bps", "greater than 0"),
    "zero_spread.yaml": (6, 17, "modes.aggressive.spread_bps", "greater than 0"),
    "zero_size.yaml": (7, 11, "modes.aggressive.size", "greater than 0"),
    "min_share_gt_max.yaml": (12, 14, "inventory.min_share", "must not exceed max_share"),
    "target_outside_range.yaml": (12, 17, "inventory.target_share", "is outside [min_share"),
    "target_share_and_base.yaml": (13, 16, "inventory.target_base", "not both"),
    "min_base_gt_max_base.yaml": (12, 13, "inventory.min_base", "must not exceed max_base"),
    "unknown_venue_type.yaml": (2, 9, "venue.type", "expected one of 'sim', 'ccxt'"),
    "missing_venue_type.yaml": (1, 1, "venue.type", "missing key 'type'"),
    "unknown_market_model.yaml": (4, 12, "venue.market.model", "'random_walk', 'as2008'"),
    "unknown_exchange.yaml": (4, 13, "venue.exchange", "supported: mexc, gate, kucoin, bingx"),
    "missing_credential.yaml": (
        6,
        14,
        "venue.credentials.api_key",
        "environment variable KASMM_TEST_UNSET_API_KEY is not set "
        "(and no file in $CREDENTIALS_DIRECTORY)",
    ),
    "literal_secret.yaml": (7, 13, "venue.credentials.secret", "never inlined"),
    "duplicate_keys.yaml": (11, 1, "-", 'duplicate key "symbol"'),
    "nan_spread.yaml": (9, 17, "modes.passive.spread_bps", "finite number"),
    "inf_size.yaml": (10, 11, "modes.passive.size", "finite number"),
    "huge_number.yaml": (10, 11, "-", "number longer than 100 characters"),
    "levels_zero.yaml": (11, 13, "modes.passive.levels", "greater than or equal to 1"),
    "levels_99.yaml": (11, 13, "modes.passive.levels", "less than or equal to 20"),
    "bad_cron.yaml": (12, 11, "schedule[0].cron", "invalid cron expression"),
    "bad_timezone.yaml": (13, 15, "schedule[0].timezone", "unknown time zone 'Europe/Atlantis'"),
    "bad_daily_loss_timezone.yaml": (
        14,
        15,
        "kill_switch.max_daily_loss.timezone",
        "unknown time zone",
    ),
    "pause_without_pause_s.yaml": (12, 3, "kill_switch.mid_jump.pause_s", "requires pause_s"),
    "pause_s_without_pause.yaml": (
        15,
        14,
        "kill_switch.max_drawdown.pause_s",
        "only applies to action 'pause'",
    ),
    "drawdown_no_limit.yaml": (12, 3, "kill_switch.max_drawdown", "set quote or pct"),
    "live_without_daily_loss.yaml": (
        12,
        1,
        "kill_switch.max_daily_loss",
        "needs kill_switch.max_daily_loss; set a limit, or 'max_daily_loss: null'",
    ),
    "bad_symbol.yaml": (3, 9, "symbol", "BASE/QUOTE"),
    "same_base_quote.yaml": (3, 9, "symbol", "base and quote assets must differ"),
    "list_without_names.yaml": (8, 3, "[1].name", "must set their own name"),
    "empty.yaml": (1, 1, "-", "empty file"),
    "scalar_top_level.yaml": (1, 1, "-", "expected a profile mapping or a list"),
    "binary.yaml": (3, 1, "-", "binary file"),
    "bad_utf8.yaml": (11, 18, "-", "not valid UTF-8"),
    "missing_modes.yaml": (1, 1, "modes", "required field is missing"),
    "modes_not_mapping.yaml": (4, 1, "modes", "valid dictionary"),
    "passive_narrower.yaml": (9, 17, "modes.passive.spread_bps", "at least the aggressive"),
    "as_missing_gamma.yaml": (11, 1, "strategy.gamma", "required field is missing"),
    "bad_horizon_type.yaml": (16, 11, "strategy.horizon.type", "'session_end', 'rolling'"),
    "bad_session_end.yaml": (17, 10, "strategy.horizon.end", "HH:MM"),
    "schedule_bad_mode.yaml": (13, 11, "schedule[0].mode", "'aggressive' or 'passive'"),
    "sim_balances_missing_quote.yaml": (3, 3, "venue.balances", "must include USDT"),
    # mexc and kucoin have no test URL in the installed ccxt (gate and bingx do).
    "sandbox_unsupported.yaml": (9, 12, "venue.sandbox", "no sandbox (testnet) for kucoin"),
    "deep_nesting.yaml": (11, 39, "-", "nesting deeper than 32 levels"),
    "alias_bomb.yaml": (2, 8, "-", "aliases"),
    "unsupported_tag.yaml": (11, 15, "-", "is not supported"),
    "invalid_name.yaml": (1, 7, "name", "must be 1-64 letters"),
    "multi_document.yaml": (11, 1, "-", "expected a single document"),
    "non_string_key.yaml": (11, 1, "-", "mapping keys must be strings"),
}


@pytest.fixture(autouse=True)
def _no_credentials_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def test_corpus_is_large_enough_and_fully_described() -> None:
    files = {p.name for p in CORPUS.glob("*.yaml")}
    assert len(files) >= 35
    assert files == set(EXPECTED), "every corpus file needs an expectation (and vice versa)"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_profile(name: str) -> None:
    line, col, field, fragment = EXPECTED[name]
    path = CORPUS / name
    profiles, issues = load_file(path, env=ENV)
    assert len(issues) == 1, [str(i) for i in issues]
    issue = issues[0]
    assert (issue.line, issue.col, issue.field) == (line, col, field), str(issue)
    assert fragment in issue.message
    text = str(issue)
    assert text.startswith(f"{path}:{line}:{col}: ")
    assert f": {field}: " in text
    if name == "list_without_names.yaml":
        assert [p.profile.name for p in profiles] == ["first"]
    else:
        assert profiles == []


def test_profile_label_in_issue_is_the_file_stem() -> None:
    _, issues = load_file(CORPUS / "zero_size.yaml", env=ENV)
    assert str(issues[0]).startswith(f"{CORPUS / 'zero_size.yaml'}:7:11: zero_size: ")
    _, issues = load_file(CORPUS / "syntax_error.yaml", env=ENV)
    assert str(issues[0]).startswith(f"{CORPUS / 'syntax_error.yaml'}:6:1: -: ")


def test_duplicate_names_across_files() -> None:
    directory = CORPUS / "duplicate_names"
    result = load_paths([directory], env=ENV)
    assert [str(i) for i in result.issues] == [
        f"{directory / 'b.yaml'}:11:1: dup: name: duplicate profile name "
        f"(already defined in {directory / 'a.yaml'})"
    ]
    assert list(result.profiles) == ["dup"]
    assert result.profiles["dup"].path == directory / "a.yaml"
    assert result.files == {directory / "a.yaml": ["dup"], directory / "b.yaml": ["dup"]}


def test_whole_corpus_as_a_directory_never_crashes() -> None:
    result = load_paths([CORPUS], env=ENV)
    assert all(isinstance(i, ConfigIssue) for i in result.issues)
    assert len(result.issues) >= len(EXPECTED)
    assert result.issues == sorted(result.issues, key=ConfigIssue.sort_key)
