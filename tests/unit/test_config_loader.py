"""Profile loading: example profiles, file layouts, locations and hostile input."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kasmm.commands.validate import validate_command
from kasmm.config import loader
from kasmm.config.loader import ConfigIssue, load_file, load_paths

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "profiles"
EXAMPLES = sorted(p for p in PROFILES.glob("*.yaml") if not p.name.startswith("_"))

MINIMAL = """\
venue:
  type: sim
symbol: KAS/USDT
modes:
  aggressive: {spread_bps: 20, size: 1000}
  passive: {spread_bps: 40, size: 1000}
"""


def _profile(name: str | None = None, indent: str = "") -> str:
    text = (f"name: {name}\n" if name else "") + MINIMAL
    return "".join(indent + line + "\n" for line in text.splitlines())


def _listed(*names: str) -> str:
    out = ""
    for name in names:
        body = _profile(name, "  ")
        out += "- " + body[2:]
    return out


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


# --- the shipped examples ---------------------------------------------------------------------


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "kas-usdt-sim.yaml",
        "kas-usdt-sim-as.yaml",
        "mexc-kas-usdt.yaml",
        "gate-kas-usdt.yaml",
        "kucoin-kas-usdt.yaml",
        "bingx-kas-usdt.yaml",
    } <= names


def test_cli_validate_profiles_from_repo_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kasmm.cli import main

    for var in ("MEXC_API_KEY", "GATE_API_KEY", "KUCOIN_API_KEY", "BINGX_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(REPO)
    assert main(["validate", "profiles"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{len(EXAMPLES)} profiles valid, 0 issues" in err


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_loads_without_keys(path: Path) -> None:
    profiles, issues = load_file(path, env={})
    assert issues == []
    assert [p.profile.name for p in profiles] == [path.stem]
    assert profiles[0].path == path


def test_example_details() -> None:
    result = load_paths([PROFILES], env={})
    demo = result.profiles["kas-usdt-sim"].profile
    assert demo.enabled and demo.venue.type == "sim" and demo.strategy.type == "fixed_spread"
    assert demo.modes.aggressive is not None  # the demo's schedule selects it
    assert demo.modes.aggressive.spread_bps < demo.modes.passive.spread_bps
    assert result.profiles["kas-usdt-sim-as"].profile.strategy.type == "avellaneda_stoikov"
    for name in ("mexc-kas-usdt", "gate-kas-usdt", "kucoin-kas-usdt", "bingx-kas-usdt"):
        assert not result.profiles[name].profile.enabled
    kucoin = result.profiles["kucoin-kas-usdt"].profile.venue
    assert kucoin.type == "ccxt" and kucoin.credentials.password == "${KUCOIN_API_PASSPHRASE}"
    assert set(result.accounts) == {"mexc-main", "gate-main", "kucoin-main", "bingx-main"}
    for path in EXAMPLES:
        assert path.read_text().startswith("# yaml-language-server: $schema=../")


# --- layouts --------------------------------------------------------------------------------


def test_name_defaults_to_stem(tmp_path: Path) -> None:
    (tmp_path / "my-bot.yaml").write_text(_profile())
    profiles, issues = load_file(tmp_path / "my-bot.yaml", env={})
    assert issues == [] and profiles[0].profile.name == "my-bot"


def test_invalid_stem_needs_a_name(tmp_path: Path) -> None:
    path = tmp_path / "bad name!.yaml"
    path.write_text(_profile())
    _, issues = load_file(path, env={})
    assert [(i.line, i.col, i.field) for i in issues] == [(1, 1, "name")]
    assert "file stem" in issues[0].message


def test_list_of_profiles(tmp_path: Path) -> None:
    path = tmp_path / "many.yml"
    path.write_text(_listed("one", "two"))
    result = load_paths([tmp_path], env={})
    assert result.issues == []
    assert list(result.profiles) == ["one", "two"]
    assert result.files == {path: ["one", "two"]}


def test_duplicate_name_within_a_list(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(_listed("one", "one"))
    profiles, issues = load_file(path, env={})
    assert [p.profile.name for p in profiles] == ["one"]
    assert [(i.line, i.col, i.field) for i in issues] == [(8, 3, "name")]
    assert "duplicate profile name" in issues[0].message


def test_duplicate_implied_name_points_at_1_1(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_profile("b"))
    (tmp_path / "b.yaml").write_text("# the name is implied\n" + _profile())
    result = load_paths([tmp_path], env={})
    assert [str(i) for i in result.issues] == [
        f"{tmp_path / 'b.yaml'}:1:1: b: name: duplicate profile name "
        f"(already defined in {tmp_path / 'a.yaml'})"
    ]


def test_error_in_list_entry_is_located(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(_listed("one", "two").replace("size: 1000}", "size: -1}", 1))
    profiles, issues = load_file(path, env={})
    assert [p.profile.name for p in profiles] == ["two"]
    assert [str(i) for i in issues] == [
        f"{path}:6:40: one: modes.aggressive.size: Input should be greater than 0"
    ]


def test_empty_list_and_non_mapping_entries(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("[]\n")
    (tmp_path / "junk.yaml").write_text("- 5\n- [x]\n")
    result = load_paths([tmp_path], env={})
    assert [(i.path.name, i.line, i.col, i.field) for i in result.issues] == [
        ("empty.yaml", 1, 1, "-"),
        ("junk.yaml", 1, 3, "[0]"),
        ("junk.yaml", 2, 3, "[1]"),
    ]


def test_directory_is_not_recursive_and_picks_yaml_only(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.yaml").write_text("garbage: [")
    (tmp_path / "notes.txt").write_text("garbage: [")
    (tmp_path / ".hidden.yaml").write_text("garbage: [")
    (tmp_path / "_settings.yaml").write_text("garbage: [")
    (tmp_path / "a.yml").write_text(_profile())
    result = load_paths([tmp_path], env={})
    assert result.issues == [] and list(result.profiles) == ["a"]


def test_accounts_file(tmp_path: Path) -> None:
    (tmp_path / "_accounts.yaml").write_text(
        "accounts:\n  main:\n    capacity: 20\n    refill_per_s: 5\n"
        "  other:\n    capacity: 0\n    refill_per_s: 5\n"
    )
    result = load_paths([tmp_path], env={})
    assert result.accounts == {}
    assert [str(i) for i in result.issues] == [
        f"{tmp_path / '_accounts.yaml'}:6:15: accounts.other.capacity: "
        "Input should be greater than 0"
    ]
    (tmp_path / "_accounts.yaml").write_text("accounts:\n  main: {capacity: 20, refill_per_s: 5}\n")
    result = load_paths([tmp_path], env={})
    assert result.issues == [] and result.accounts["main"].capacity == 20
    assert load_file(tmp_path / "_accounts.yaml", env={}) == ([], [])


def test_explicit_files_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_profile())
    result = load_paths([tmp_path / "a.yaml", tmp_path / "nope.yaml"], env={})
    assert list(result.profiles) == ["a"]
    assert [(i.path.name, i.message) for i in result.issues] == [
        ("nope.yaml", "no such file or directory")
    ]


def test_market_model_defaults_to_random_walk(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_profile().replace("type: sim\n", "type: sim\n  market: {sigma_bps: 3}\n"))
    profiles, issues = load_file(path, env={})
    assert issues == []
    assert profiles[0].profile.venue.market.model == "random_walk"  # type: ignore[union-attr]


def test_union_tag_is_stripped_from_locations(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_profile().replace("type: sim\n", "type: sim\n  balances: {KAS: -1}\n"))
    _, issues = load_file(path, env={})
    assert [(i.line, i.col, i.field) for i in issues] == [(3, 19, "venue.balances.KAS")]


def test_unknown_key_suggests_a_close_match(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_profile() + "inventory:\n  target_shar: 0.5\n")
    _, issues = load_file(path, env={})
    assert [(i.line, i.col, i.field) for i in issues] == [(8, 3, "inventory.target_shar")]
    assert "did you mean 'target_share'?" in issues[0].message


def test_check_on_a_defaulted_field_points_at_the_written_parent(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_profile() + "inventory:\n  min_share: 0.6\n")
    _, issues = load_file(path, env={})
    assert [(i.line, i.col, i.field) for i in issues] == [(8, 14, "inventory.min_share")]
    assert "default target_share 0.5" in issues[0].message


# --- hostile files --------------------------------------------------------------------------


def test_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (loader.MAX_FILE_BYTES + 1))
    _, issues = load_file(path, env={})
    assert [(i.line, i.col, i.field) for i in issues] == [(1, 1, "-")]
    assert "larger than" in issues[0].message


def test_file_vanishing_between_listing_and_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text(_profile())
    real_list_dir = loader._list_dir

    def listing_with_ghost(directory: Path, issues: list[ConfigIssue]) -> list[Path]:
        return [*real_list_dir(directory, issues), directory / "ghost.yaml"]

    monkeypatch.setattr(loader, "_list_dir", listing_with_ghost)
    result = load_paths([tmp_path], env={})
    assert list(result.profiles) == ["a"]
    assert [(i.path.name, i.line, i.col) for i in result.issues] == [("ghost.yaml", 1, 1)]
    assert "file not found" in result.issues[0].message


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    inside = tmp_path / "profiles"
    outside.mkdir()
    inside.mkdir()
    (outside / "evil.yaml").write_text(_profile("evil"))
    (inside / "real.yaml").write_text(_profile())
    (inside / "evil.yaml").symlink_to(outside / "evil.yaml")
    (inside / "alias.yaml").symlink_to(inside / "real.yaml")
    (inside / "dangling.yaml").symlink_to(inside / "gone.yaml")
    result = load_paths([inside], env={})
    found = {i.path.name: i.message for i in result.issues}
    assert "outside the directory" in found["evil.yaml"]
    assert "file not found" in found["dangling.yaml"]
    assert "duplicate profile name" not in found.get("alias.yaml", "")
    assert sorted(result.profiles) == ["alias", "real"]
    # An explicitly named file is the user's choice, even through a symlink.
    assert load_file(inside / "evil.yaml", env={})[1] == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_directory_named_yaml(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "dir.yaml").mkdir()
    result = load_paths([tmp_path], env={})
    assert {i.path.name: i.message for i in result.issues} == {
        "dir.yaml": "not a regular file",
        "fifo.yaml": "not a regular file",
    }


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + _profile().encode())
    assert load_file(path, env={})[1] == []


def test_deep_block_nesting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("".join("  " * i + "a:\n" for i in range(200)))
    _, issues = load_file(path, env={})
    assert [(i.line, i.col, i.field) for i in issues] == [(33, 65, "-")]


def test_big_alias_bomb_and_merge_keys_are_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 30)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "merge.yaml").write_text("base: &b {x: 1}\nother:\n  <<: *b\n")
    result = load_paths([tmp_path], env={})
    assert [(i.path.name, i.line, i.col) for i in result.issues] == [
        ("bomb.yaml", 2, 10),
        ("merge.yaml", 3, 7),
    ]


def test_huge_integer_beyond_python_limit(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_profile().replace("size: 1000}", "size: " + "9" * 5000 + "}", 1))
    _, issues = load_file(path, env={})
    assert [(i.line, i.col) for i in issues] == [(5, 38)]


def test_validate_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.yaml").write_text(_profile())
    (tmp_path / "bad.yaml").write_text(_profile() + "colour: red\nshape: round\n")
    assert validate_command([tmp_path / "good.yaml"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("", "1 profile valid, 0 issues\n")
    assert validate_command([tmp_path]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{tmp_path / 'bad.yaml'}:7:1: bad: colour: " + out.splitlines()[0].split(": colour: ")[1],
        f"{tmp_path / 'bad.yaml'}:8:1: bad: shape: " + out.splitlines()[1].split(": shape: ")[1],
    ]
    assert err == "1 profile valid, 2 issues\n"
    assert validate_command([tmp_path / "missing.yaml"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "no such file or directory" in err


# --- fuzzing: whatever the bytes, the loader reports instead of raising --------------------

_EXAMPLE_TEXT = (PROFILES / "kas-usdt-sim.yaml").read_text()


def _load_bytes(data: bytes) -> list[ConfigIssue]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(data)
        profiles, issues = load_file(path, env={})
        assert all(i.line >= 1 and i.col >= 1 for i in issues)
        assert profiles or issues
        return issues


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _load_bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32), st.text(max_size=12))
def test_fuzz_mutated_example(seed: int, junk: str) -> None:
    rng = random.Random(seed)
    lines = _EXAMPLE_TEXT.splitlines()
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        op = rng.randrange(3)
        if op == 0:
            del lines[i]
        elif op == 1:
            pos = rng.randint(0, len(lines[i]))
            lines[i] = lines[i][:pos] + junk + lines[i][pos:]
        else:
            lines.insert(i, lines[rng.randrange(len(lines))])
    _load_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))


def test_issue_lines_are_single_line_and_free_of_control_characters(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        _profile() + '"\\e[2Jx\\ny' + "k" * 500 + '": 1\nname: "' + "n" * 300 + '\\e"\n'
    )
    _, issues = load_file(path, env={})
    assert len(issues) == 2
    for issue in issues:
        text = str(issue)
        assert "\n" not in text and "\x1b" not in text
        assert len(text) < 600


def test_too_many_nodes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text("".join(f"k{i}: [1, 2, 3, 4, 5, 6, 7, 8]\n" for i in range(3000)))
    _, issues = load_file(path, env={})
    assert len(issues) == 1
    assert issues[0].field == "-" and f"more than {loader.MAX_EVENTS} YAML nodes" in (
        issues[0].message
    )


def test_same_file_named_twice_is_loaded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text(_profile())
    monkeypatch.chdir(tmp_path)
    result = load_paths([Path("a.yaml"), tmp_path, tmp_path / "a.yaml"], env={})
    assert result.issues == [] and list(result.profiles) == ["a"]


def test_non_string_name_is_not_a_name(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_profile())
    (tmp_path / "b.yaml").write_text(_profile().replace("venue:", "name: 5\nvenue:"))
    result = load_paths([tmp_path], env={})
    assert result.files == {tmp_path / "a.yaml": ["a"], tmp_path / "b.yaml": []}
    assert [(i.path.name, i.field) for i in result.issues] == [("b.yaml", "name")]
