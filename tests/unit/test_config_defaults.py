"""Safe defaults: mid_jump on, live loss limits stated, a documented schema, spread warnings,
an optional aggressive mode (issue 16, point 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kasmm.commands.schema import profile_json_schema
from kasmm.commands.validate import validate_command
from kasmm.config import checks
from kasmm.config.loader import load_file, load_one_for_command, load_paths
from kasmm.config.schema import DEFAULT_MID_JUMP_PCT, Profile
from kasmm.config.to_core import quoting_params, risk_limits
from kasmm.core.risk import MidJumpLimit
from tests.support import make_profile

ENV = {"K": "key", "S": "secret"}


def _fields(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], bool]]:
    """``(model, field, property schema, required)`` of every field of the profile schema.

    A field one of the model's ``anyOf`` alternatives requires counts as required (a mode's
    ``spread_bps``, or its ``bid_spread_bps`` and ``ask_spread_bps``)."""
    models = {"Profile": schema, **schema["$defs"]}
    return [
        (model, name, prop, name in _required(body))
        for model, body in models.items()
        for name, prop in body.get("properties", {}).items()
    ]


def _required(body: dict[str, Any]) -> set[str]:
    alternatives = (alt.get("required", ()) for alt in body.get("anyOf", ()))
    return {*body.get("required", ()), *(name for alt in alternatives for name in alt)}


def test_every_schema_field_has_a_description_and_every_optional_one_its_default() -> None:
    fields = _fields(profile_json_schema())
    assert len(fields) > 100
    undescribed = [f"{m}.{n}" for m, n, prop, _ in fields if not prop.get("description")]
    # name is optional in a file but has no literal default: it is the file stem (described).
    no_default = [
        f"{m}.{n}"
        for m, n, prop, required in fields
        if not required and "default" not in prop and (m, n) != ("Profile", "name")
    ]
    assert undescribed == [] and no_default == []


def test_a_mode_needs_spread_bps_or_both_side_spreads_in_the_schema_too() -> None:
    mode = profile_json_schema()["$defs"]["ModeConfig"]
    assert mode["required"] == ["size"]
    assert mode["anyOf"] == [
        {"required": ["spread_bps"]},
        {"required": ["bid_spread_bps", "ask_spread_bps"]},
    ]
    step = mode["properties"]["level_size_step"]
    assert step["default"] == 0 and "'10%'" in step["description"]


#: Issue 19's settings: each is documented in the schema with its Hummingbot name, if any.
HUMMINGBOT_NAMES = {
    ("ModeConfig", "bid_spread_bps"): "bid_spread",
    ("ModeConfig", "level_size_step"): "order_level_amount",
    ("PricingConfig", "add_fees"): "add_transaction_costs",
    ("PricingConfig", "join_depth"): "order optimization",
    ("PriceBandConfig", None): "price_floor",
    ("AfterFillConfig", "filled_order_delay_s"): "filled_order_delay",
    ("AfterFillConfig", "ping_pong"): "ping_pong_enabled",
    ("HangingOrdersConfig", None): "hanging orders",
}


@pytest.mark.parametrize(("where", "name"), sorted(HUMMINGBOT_NAMES.items(), key=str))
def test_the_new_settings_name_their_hummingbot_counterpart(
    where: tuple[str, str | None], name: str
) -> None:
    model, field = where
    body = profile_json_schema()["$defs"][model]
    text = body["description"] if field is None else body["properties"][field]["description"]
    assert name in text


def test_kill_switch_hovers_explain_the_rules_and_their_actions() -> None:
    schema = profile_json_schema()
    rules = schema["$defs"]["KillSwitchConfig"]["properties"]
    assert rules["mid_jump"]["default"] == {
        "action": "pause",
        "pause_s": 30.0,
        "pct": DEFAULT_MID_JUMP_PCT,
    }
    assert "null turns it off" in rules["mid_jump"]["description"]
    action = schema["$defs"]["MidJumpRule"]["properties"]["action"]["description"]
    assert "kasmm reset" in action and "does not clear a halt" in action


def test_mid_jump_is_on_by_default_and_null_turns_it_off() -> None:
    assert risk_limits(make_profile()).mid_jump == MidJumpLimit(
        action="pause", pause_s=30.0, pct=DEFAULT_MID_JUMP_PCT
    )
    assert risk_limits(make_profile(kill_switch={"mid_jump": None})).mid_jump is None


def _write(tmp_path: Path, body: str, name: str = "live.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


_LIVE = """\
venue:
  type: ccxt
  exchange: gate
  credentials: {api_key: "${K}", secret: "${S}"}
symbol: KAS/USDT
modes:
  passive: {spread_bps: 60, size: 500}
"""


@pytest.mark.parametrize(
    ("kill_switch", "missing"),
    [
        ("", ["max_drawdown", "max_daily_loss"]),
        ("kill_switch:\n  stale_book: null\n", ["max_drawdown", "max_daily_loss"]),
        ("kill_switch:\n  max_drawdown: {pct: 5}\n", ["max_daily_loss"]),
        ("kill_switch:\n  max_daily_loss: {quote: 50}\n", ["max_drawdown"]),
        ("kill_switch:\n  max_drawdown: {pct: 5}\n  max_daily_loss: {quote: 50}\n", []),
        # null, written: the operator chose to trade without the limit
        ("kill_switch:\n  max_drawdown: null\n  max_daily_loss: null\n", []),
        ("kill_switch:\n  max_drawdown: {quote: 9}\n  max_daily_loss: null\n", []),
    ],
)
def test_live_profile_without_loss_limits_is_refused_unless_null_is_written(
    tmp_path: Path, kill_switch: str, missing: list[str]
) -> None:
    path = _write(tmp_path, _LIVE + kill_switch)
    _, issues = load_file(path, env=ENV)
    assert [i.field for i in issues] == [f"kill_switch.{name}" for name in missing]
    for issue in issues:
        assert f"'{issue.field.split('.')[1]}: null'" in issue.message
        # located: at the written kill_switch key, else the top of the file
        assert (issue.line, issue.col) == ((8, 1) if kill_switch else (1, 1))
        assert str(issue).startswith(f"{path}:{issue.line}:{issue.col}: live: kill_switch.")


def test_disabled_live_profile_needs_them_too_and_sim_or_paper_do_not(tmp_path: Path) -> None:
    _, issues = load_file(_write(tmp_path, "enabled: false\n" + _LIVE), env={})
    assert len(issues) == 2
    assert checks.check_live_limits(make_profile()) == []
    assert checks.check_live_limits(make_profile(venue={"type": "paper", "exchange": "mexc"})) == []


def test_aggressive_mode_is_optional_when_nothing_selects_it() -> None:
    modes = {"aggressive": None}
    profile = make_profile(modes=modes)
    assert profile.modes.aggressive is None and checks.run_checks(profile) == []
    # A switch at run time (an operator's) quotes the passive mode rather than failing.
    assert quoting_params(profile, mode="aggressive") == quoting_params(profile, mode="passive")
    selected = make_profile(modes=modes, mode="aggressive")
    assert checks.check_modes_defined(selected) == [
        (("mode",), "mode aggressive needs modes.aggressive (it is not defined)")
    ]
    scheduled = make_profile(
        modes=modes,
        schedule=[
            {"cron": "0 20 * * *", "mode": "passive"},
            {"cron": "0 8 * * 1-5", "mode": "aggressive"},
        ],
    )
    assert [f[0] for f in checks.check_modes_defined(scheduled)] == [("schedule", 1, "mode")]


def test_aggressive_mode_left_out_of_a_file_loads(tmp_path: Path) -> None:
    body = "venue: {type: sim}\nsymbol: KAS/USDT\nmodes:\n  passive: {spread_bps: 20, size: 100}\n"
    loaded, issues = load_file(_write(tmp_path, body, "calm.yaml"), env={})
    assert issues == [] and loaded[0].profile.modes.aggressive is None


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({}, []),
        # tick 0.000001 at s0 0.08 is 0.125 bps
        ({"modes": {"aggressive": {"spread_bps": 0.1}}}, [("aggressive", "price tick")]),
        (
            {"venue": {"fees": {"maker_bps": 25}}},
            [("aggressive", "twice the maker fee"), ("passive", "twice the maker fee")],
        ),
        ({"venue": {"fees": {"maker_bps": 15}}}, [("aggressive", "twice the maker fee")]),
        ({"venue": {"fees": {"maker_bps": -2}}, "modes": {"aggressive": {"spread_bps": 1}}}, []),
        # a paper venue: only the fees the profile states
        ({"venue": {"type": "paper", "exchange": "mexc"}}, []),
        (
            {
                "venue": {
                    "type": "paper",
                    "exchange": "mexc",
                    "fees": {"maker_bps": 20, "taker_bps": 20},
                },
                "modes": {"passive": {"spread_bps": 40}},
            },
            [("aggressive", "twice the maker fee")],
        ),
        # Avellaneda-Stoikov prices its own spread
        (
            {
                "strategy": {"type": "avellaneda_stoikov", "gamma": 0.1, "kappa": 10},
                "modes": {"aggressive": {"spread_bps": 0.01}},
            },
            [],
        ),
    ],
)
def test_spread_warnings(overrides: dict[str, Any], warned: list[tuple[str, str]]) -> None:
    findings = checks.warn_spread(make_profile(**overrides))
    assert [path for path, _ in findings] == [("modes", m, "spread_bps") for m, _ in warned]
    for (_, message), (_, text) in zip(findings, warned, strict=True):
        assert text in message


_SIM = """\
venue:
  type: sim
  fees: {maker_bps: 10}
symbol: KAS/USDT
modes:
  aggressive: {spread_bps: 8, size: 1000}
  passive: {spread_bps: 40, size: 1000}
"""


def test_a_warning_is_located_printed_and_does_not_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _SIM, "thin.yaml")
    result = load_paths([path], env={})
    assert result.issues == [] and list(result.profiles) == ["thin"]
    [warning] = result.warnings
    assert (warning.line, warning.col, warning.field) == (6, 28, "modes.aggressive.spread_bps")
    assert str(warning).startswith(f"{path}:6:28: thin: modes.aggressive.spread_bps: warning: ")
    assert validate_command([path]) == 0
    out, err = capsys.readouterr()
    assert out == f"{warning}\n" and err == "1 profile valid, 0 issues, 1 warning\n"
    profile = load_one_for_command(path)
    assert isinstance(profile, Profile)
    assert capsys.readouterr().err == f"{warning}\n"


def test_the_shipped_profiles_carry_no_warning() -> None:
    result = load_paths([Path(__file__).resolve().parents[2] / "profiles"], env={})
    assert result.issues == [] and result.warnings == []
