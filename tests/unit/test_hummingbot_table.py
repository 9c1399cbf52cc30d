"""README's "Coming from Hummingbot" section stays true to Hummingbot and to kasmm's schema.

A Hummingbot user translates a pure market making config line by line with that table, so:

* every key of Hummingbot's ``pure_market_making_config_map`` (the names, as read from one
  Hummingbot commit, in ``tests/data/hummingbot_pmm_keys.txt``) has exactly one row, in the
  config map's order, and the table has no other row;
* every kasmm field the section names exists in the profile JSON Schema (what ``kasmm schema``
  prints): each one in the ``kasmm`` column (which is either ``—``, for none, or field paths),
  and each dotted one anywhere else in the section. A value written with it (``venue.type:
  paper``) must be one the schema allows where it lists them;
* the worked example's kasmm profile loads without an issue, and its Hummingbot config uses
  only Hummingbot's keys.

Path notation: ``a.b.c`` is nested fields, ``<mode>`` stands for every field of that object
(``modes.<mode>.size``: ``passive`` and ``aggressive`` both), ``[]`` for each entry of a list
(``reference.sources[].symbol``). Where the schema offers alternatives (a union such as
``venue``, a field that may be ``null``), the path must exist in at least one of them.

Pure reading of files and one in-memory schema: no network, well under a second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kasmm.commands.schema import profile_json_schema
from kasmm.config.hummingbot import HUMMINGBOT_KEYS
from kasmm.config.loader import load_file

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
KEYS_FILE = ROOT / "tests" / "data" / "hummingbot_pmm_keys.txt"
TITLE = "## Coming from Hummingbot"
#: The table's columns: Hummingbot key, what it does, kasmm, how to translate.
COLUMNS = 4
KASMM = 2
NONE = "—"
#: A field path, optionally with a value: ``modes.<mode>.size``, ``venue.type: paper``.
PATH = re.compile(
    r"(?P<path>[a-z_]+(?:\[\])?(?:\.(?:<[a-z_]+>|[a-z_]+(?:\[\])?))*)(?:: (?P<value>.+))?"
)
#: Dotted names in the section that are files, not fields (``..._config_map.py``).
FILE_SUFFIXES = frozenset({"py", "txt", "yml", "yaml", "json", "md"})
#: Fake credentials for the worked example's ``${VAR}`` references (never a real key).
EXAMPLE_ENV = {"GATE_API_KEY": "example-key", "GATE_API_SECRET": "example-secret"}


# --- reading the README ------------------------------------------------------------------------


def section() -> str:
    """The README's "Coming from Hummingbot" section, up to the next ``## `` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.find(f"\n{TITLE}\n")
    assert start >= 0, f"README.md has no '{TITLE}' section"
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def prose(text: str) -> str:
    """``text`` without its fenced code blocks (the worked example is checked by loading it)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def table_rows(text: str) -> list[list[str]]:
    """Cells of every row of the section's table, header and separator left out."""
    found = []
    for line in prose(text).splitlines():
        line = line.strip()
        if not (line.startswith("|") and line.endswith("|")) or re.fullmatch(r"[|\s:-]+", line):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == COLUMNS, f"README.md: a row of {len(cells)} cells: {line}"
        if cells[0] != "Hummingbot key":
            found.append(cells)
    return found


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def code_block(text: str, first_line: str) -> str:
    """The fenced block of ``text`` whose first line starts with ``first_line``."""
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"README.md: no code block starting with {first_line!r} under {TITLE}")


def hummingbot_keys() -> list[str]:
    lines = KEYS_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# --- reading the schema ------------------------------------------------------------------------


class Schema:
    """The profile JSON Schema, walked by field path through ``$ref`` and unions."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.defs: dict[str, Any] = root.get("$defs", {})

    def alternatives(self, node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The concrete schemas ``node`` may be: its ``$ref`` followed, its unions spread."""
        if "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/$defs/"), f"unexpected $ref {ref}"
            yield from self.alternatives(self.defs[ref.removeprefix("#/$defs/")])
            return
        branches = [b for key in ("anyOf", "oneOf", "allOf") for b in node.get(key, ())]
        if branches:
            if "properties" in node:
                # Unions beside the node's own fields only constrain it (a mode needs
                # spread_bps or both side spreads): the fields are the node's.
                yield node
            for branch in branches:
                yield from self.alternatives(branch)
            return
        yield node

    def resolve(self, path: str) -> list[dict[str, Any]]:
        """Every schema ``path`` leads to (empty: the profile has no such field)."""
        return self._walk(self.root, path.split("."))

    def _walk(self, node: dict[str, Any], segments: list[str]) -> list[dict[str, Any]]:
        if not segments:
            return list(self.alternatives(node))
        head, rest = segments[0], segments[1:]
        found: list[dict[str, Any]] = []
        for alt in self.alternatives(node):
            fields: dict[str, Any] = alt.get("properties", {})
            if head.startswith("<"):
                reached = [self._walk(child, rest) for child in fields.values()]
                if reached and all(reached):
                    found.extend(leaf for leaves in reached for leaf in leaves)
                continue
            name = head.removesuffix("[]")
            if name not in fields:
                continue
            if head.endswith("[]"):
                for array in self.alternatives(fields[name]):
                    if "items" in array:
                        found.extend(self._walk(array["items"], rest))
            else:
                found.extend(self._walk(fields[name], rest))
        return found

    def allowed_values(self, leaves: list[dict[str, Any]]) -> set[str]:
        """Values the schema lists for these leaves (``const``/``enum``); empty: any of its
        type."""
        values: set[str] = set()
        for leaf in leaves:
            listed = [leaf["const"]] if "const" in leaf else list(leaf.get("enum", ()))
            values.update(v if isinstance(v, str) else json.dumps(v) for v in listed)
        return values


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema(profile_json_schema())


def problem(schema: Schema, span: str) -> str | None:
    """Why ``span`` (a path, or ``path: value``) is not a profile field, or ``None``."""
    match = PATH.fullmatch(span)
    if match is None:
        return f"`{span}` is not a field path"
    leaves = schema.resolve(match["path"])
    if not leaves:
        return f"`{match['path']}` is not in the profile schema"
    value = match["value"]
    allowed = schema.allowed_values(leaves)
    if value is not None and allowed and value not in allowed:
        return f"`{span}`: the schema allows only {sorted(allowed)}"
    return None


# --- the checks --------------------------------------------------------------------------------


def test_the_key_list_names_the_hummingbot_commit_it_was_read_from() -> None:
    comments = [line for line in KEYS_FILE.read_text().splitlines() if line.startswith("#")]
    assert any(re.search(r"hummingbot/hummingbot@[0-9a-f]{40}\b", line) for line in comments)
    keys = hummingbot_keys()
    assert len(keys) == len(set(keys)), "a key is listed twice"
    assert all(re.fullmatch(r"[a-z_]+", key) for key in keys)


def test_every_hummingbot_key_has_exactly_one_row_in_the_config_maps_order() -> None:
    names = []
    for cells in table_rows(section()):
        match = re.fullmatch(r"`([a-z_]+)`", cells[0])
        assert match is not None, f"README.md: first cell is not one `key`: {cells[0]}"
        names.append(match.group(1))
    keys = hummingbot_keys()
    missing = [key for key in keys if key not in names]
    extra = [name for name in names if name not in keys]
    twice = sorted({name for name in names if names.count(name) > 1})
    assert (missing, extra, twice) == ([], [], []), (
        f"README.md's Hummingbot table: missing {missing}, not Hummingbot keys {extra}, "
        f"listed twice {twice}"
    )
    assert names == keys, "README.md's Hummingbot table is not in the config map's order"


def test_every_kasmm_cell_is_none_or_profile_fields(schema: Schema) -> None:
    problems = []
    for cells in table_rows(section()):
        key, kasmm = cells[0], cells[KASMM]
        if kasmm == NONE:
            continue
        spans = backticked(kasmm)
        if not spans:
            problems.append(f"{key}: the kasmm cell is neither {NONE} nor a `field`: {kasmm}")
        for span in spans:
            why = problem(schema, span)
            if why is not None:
                problems.append(f"{key}: {why}")
    assert problems == []


def test_every_dotted_field_in_the_section_is_in_the_schema(schema: Schema) -> None:
    """Notes and prose name fields too: a renamed or removed field fails here, not in a reader's
    profile."""
    problems = []
    for span in backticked(prose(section())):
        match = PATH.fullmatch(span)
        if match is None or "." not in match["path"]:
            continue
        if match["path"].rsplit(".", 1)[1] in FILE_SUFFIXES:
            continue  # a file name, not a profile field
        why = problem(schema, span)
        if why is not None:
            problems.append(why)
    assert problems == []


def test_the_worked_example_loads_as_a_profile(tmp_path: Path) -> None:
    text = code_block(section(), "# kasmm:")
    path = tmp_path / "gate-kas-usdt-hb.yaml"
    path.write_text(text, encoding="utf-8")
    loaded, issues = load_file(path, env=EXAMPLE_ENV)
    assert [str(issue) for issue in issues] == []
    assert [entry.profile.name for entry in loaded] == ["gate-kas-usdt-hb"]


def test_the_worked_examples_hummingbot_config_uses_only_hummingbot_keys() -> None:
    text = code_block(section(), "# Hummingbot:")
    used = re.findall(r"^([a-z_]+):", text, flags=re.M)
    assert used, "the Hummingbot example sets no key"
    assert [key for key in used if key not in hummingbot_keys()] == []


# --- the checker itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "ok"),
    [
        ("symbol", True),
        ("modes.<mode>.size", True),
        ("modes.<mode>.no_such_field", False),
        ("modes.passive.spread_bps", True),
        ("venue.type: paper", True),
        ("venue.type: binance", False),
        ("venue.exchange", True),  # a field of some venue types only: one is enough
        ("reference.sources[].symbol", True),
        ("reference.sources.symbol", False),  # a list needs []
        ("refresh.tolerance_pct", False),
        ("strategy.min_spread_bps", True),
        ("Modes.passive", False),
        ("bid_spread", False),
    ],
)
def test_the_schema_walk(schema: Schema, span: str, ok: bool) -> None:
    assert (problem(schema, span) is None) is ok


def test_the_loaders_hints_agree_with_the_table(schema: Schema) -> None:
    # An unknown key that is a Hummingbot key is answered from kasmm.config.hummingbot: each
    # hint must name a real Hummingbot key, a real profile field, and the table's own field.
    keys = set(hummingbot_keys())
    cells = {
        match.group(1): cells[2]
        for cells in table_rows(section())
        if (match := re.fullmatch(r"`([a-z_]+)`", cells[0]))
    }
    for key, (path, _note) in HUMMINGBOT_KEYS.items():
        assert key in keys, f"kasmm/config/hummingbot.py: {key} is not a Hummingbot PMM key"
        assert problem(schema, path) is None, f"kasmm/config/hummingbot.py: {key}: {path}"
        assert f"`{path}`" in cells[key], f"{key}: the hint says {path}, the table {cells[key]}"
