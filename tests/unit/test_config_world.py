"""The simulated world settings: structure, cross-field checks and agreement across profiles,
each error located at its file, line and field; the example world profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from kasmm.config.loader import ConfigIssue, load_file, load_paths
from kasmm.config.schema import RandomWalkMarket, SimVenueConfig, SimWorldConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "profiles"


def profile_text(venue: str, name: str | None = None, enabled: bool = True) -> str:
    """A sim profile whose ``venue`` block is ``venue`` (indented YAML, without ``venue:``)."""
    head = f"name: {name}\n" if name else ""
    return (
        head
        + f"enabled: {'true' if enabled else 'false'}\n"
        + "venue:\n"
        + "  type: sim\n"
        + venue
        + "symbol: KAS/USDT\n"
        + "modes:\n"
        + "  passive: {spread_bps: 40, size: 1000}\n"
    )


WORLD = """\
  market:
    world:
      name: kas
      seed: 7
      sigma_bps: {sigma}
"""


def issues_of(tmp_path: Path, venue: str) -> list[ConfigIssue]:
    path = tmp_path / "bot.yaml"
    path.write_text(profile_text(venue))
    _, issues = load_file(path, env={})
    return issues


def where(issue: ConfigIssue) -> tuple[int, str]:
    return issue.line, issue.field


def test_a_world_venue_parses_with_its_defaults() -> None:
    market = RandomWalkMarket.model_validate({"world": {"name": "kas"}, "lag_ms": 500})
    assert market.world == SimWorldConfig(name="kas")
    assert (market.lag_ms, market.noise_bps, market.arbitrage) == (500.0, 0.0, None)
    assert SimVenueConfig(type="sim").exchange == "sim"


@pytest.mark.parametrize(
    ("venue", "line", "field", "message"),
    [
        ("  exchange: Sim Deep\n", 4, "venue.exchange", "must be 1-32 lower-case letters"),
        ("  exchange: mexc\n", 4, "venue.exchange", "'mexc' is a live exchange"),
        ("  market:\n    world: {name: 'Kas!'}\n", 5, "venue.market.world.name", "1-32 lower"),
        ("  market:\n    lag_ms: 500\n", 5, "venue.market.lag_ms", "lag_ms needs a world"),
        (
            "  market:\n    arbitrage: {rate_per_s: 2}\n",
            5,
            "venue.market.arbitrage",
            "arbitrage needs a world",
        ),
        (
            "  market:\n    world: {name: kas}\n    s0: 0.1\n",
            6,
            "venue.market.s0",
            "not used with a world",
        ),
        (
            "  market:\n    world: {name: kas, jump_rate_per_s: 0.1}\n",
            5,
            "venue.market.world.jump_bps",
            "jumps need both",
        ),
        (
            "  market:\n    world: {name: kas}\n    lag_ms: 60001\n",
            6,
            "venue.market.lag_ms",
            "60000",
        ),
    ],
)
def test_bad_world_settings_are_located(
    tmp_path: Path, venue: str, line: int, field: str, message: str
) -> None:
    issues = issues_of(tmp_path, venue)
    assert [where(i) for i in issues] == [(line, field)], issues
    assert message in issues[0].message and issues[0].path == tmp_path / "bot.yaml"


def test_profiles_naming_one_world_differently_are_all_refused_naming_each_other(
    tmp_path: Path,
) -> None:
    (tmp_path / "deep.yaml").write_text(profile_text(WORLD.format(sigma=2.0)))
    (tmp_path / "thin.yaml").write_text(profile_text(WORLD.format(sigma=3.0)))
    (tmp_path / "same.yaml").write_text(profile_text(WORLD.format(sigma=2.0)))
    # A disabled profile builds no venue: it disagrees harmlessly.
    (tmp_path / "off.yaml").write_text(profile_text(WORLD.format(sigma=9.0), enabled=False))
    result = load_paths([tmp_path], env={})
    assert sorted(result.profiles) == ["off"]
    by_file = {i.path.name: i for i in result.issues}
    assert sorted(by_file) == ["deep.yaml", "same.yaml", "thin.yaml"]
    for issue in result.issues:
        assert where(issue) == (5, "venue.market.world")  # the `world:` key
    thin = by_file["thin.yaml"].message
    assert "world 'kas' is set differently by other profiles" in thin
    assert "profile 'deep' has sigma_bps=2.0 (here 3.0)" in thin
    assert "profile 'same' has sigma_bps=2.0 (here 3.0)" in thin
    assert "profile 'thin' has sigma_bps=3.0 (here 2.0)" in by_file["deep.yaml"].message
    assert "'same'" not in by_file["deep.yaml"].message  # equal settings never clash


def test_profiles_agreeing_on_a_world_load(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(profile_text(WORLD.format(sigma=2.0)))
    (tmp_path / "b.yaml").write_text(profile_text(WORLD.format(sigma="2")))
    result = load_paths([tmp_path], env={})
    assert result.issues == [] and sorted(result.profiles) == ["a", "b"]


def test_the_example_world_profiles_load_together() -> None:
    result = load_paths([EXAMPLES], env={})
    assert result.issues == [] and result.warnings == []
    deep = result.profiles["sim-deep-kas-usdt"].profile.venue
    thin = result.profiles["sim-thin-kas-usdt"].profile.venue
    assert isinstance(deep, SimVenueConfig) and isinstance(thin, SimVenueConfig)
    assert (deep.exchange, thin.exchange) == ("sim-deep", "sim-thin")
    assert isinstance(deep.market, RandomWalkMarket) and isinstance(thin.market, RandomWalkMarket)
    assert deep.market.world == thin.market.world is not None
    assert (deep.market.lag_ms, thin.market.lag_ms) == (0, 500)
    assert deep.market.arbitrage is None and thin.market.arbitrage is not None
    # The thin venue quotes off the deep one.
    reference = result.profiles["sim-thin-kas-usdt"].profile.reference
    assert reference is not None
    assert [(s.exchange, s.symbol) for s in reference.sources] == [("sim-deep", "KAS/USDT")]
    assert deep.market.book_level_size > 10 * thin.market.book_level_size
    assert deep.market.taker_rate_per_s >= 4 * thin.market.taker_rate_per_s
    for path in EXAMPLES.glob("sim-*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=../kasmm-profile")
