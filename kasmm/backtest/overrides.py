"""Dotted-key profile overrides (``--set``) and parameter grids (``--sweep``).

A key is a dotted path into the profile as written in YAML: ``modes.passive.spread_bps``,
``strategy.gamma``, ``venue.market.sigma``, ``schedule.0.mode`` (a number indexes a list).
Values are JSON scalars when they parse as JSON (``10``, ``0.5``, ``true``, ``null``,
``"text"``), otherwise plain strings (``rolling``). Setting a ``type`` or ``model`` key to a
new value replaces its whole section (``strategy.type=avellaneda_stoikov`` drops the fixed-spread
keys; set the new kind's keys alongside, in any order). The changed profile is validated again,
structure and cross-field checks alike, so a sweep can never run a profile ``kasmm validate``
would refuse.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from kasmm.config.checks import run_checks
from kasmm.config.locate import describe_error
from kasmm.config.schema import Profile

#: Keys that select the kind of a section (``strategy.type``, ``venue.market.model``, ...).
_DISCRIMINATORS = frozenset({"type", "model"})


class OverrideError(ValueError):
    """An override or sweep is malformed, or produces an invalid profile."""


def parse_value(text: str) -> Any:
    """A JSON scalar when ``text`` is one, else ``text`` itself."""
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict | list):
        raise OverrideError(f"{text!r}: only scalar values can be set")
    return value


def parse_assignment(spec: str) -> tuple[str, Any]:
    """``key=value`` -> ``(key, value)``."""
    key, sep, raw = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise OverrideError(f"{spec!r}: expected KEY=VALUE")
    return key, parse_value(raw)


def parse_sweep(spec: str) -> tuple[str, list[Any]]:
    """``key=v1,v2,...`` -> ``(key, [v1, v2, ...])``."""
    key, sep, raw = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise OverrideError(f"{spec!r}: expected KEY=V1,V2,...")
    values = [parse_value(v) for v in raw.split(",") if v.strip()]
    if not values:
        raise OverrideError(f"{spec!r}: no values")
    return key, values


def grid(sweep: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the sweep's values (cartesian product, first key slowest)."""
    if not sweep:
        return [{}]
    keys = list(sweep)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*sweep.values())]


def label(point: Mapping[str, Any]) -> str:
    """``k1=v1 k2=v2`` (``base`` for no overrides)."""
    if not point:
        return "base"
    return " ".join(f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in point.items())


def _set(tree: Any, path: list[str], value: Any, key: str) -> None:
    node = tree
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, list):
            try:
                i = int(part)
                _ = node[i]
            except (ValueError, IndexError):
                raise OverrideError(f"{key}: {part!r} is not an index of a list") from None
            if last:
                node[i] = value
            else:
                node = node[i]
        elif isinstance(node, dict):
            if last:
                if part in _DISCRIMINATORS and node.get(part) != value:
                    node.clear()  # another kind of section: its old keys do not apply
                node[part] = value
            else:
                child = node.get(part)
                if child is None:
                    child = node[part] = {}
                elif isinstance(child, tuple):
                    child = node[part] = list(child)
                node = child
        else:
            raise OverrideError(f"{key}: {'.'.join(path[:depth])} is not a mapping")


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (so that list items can be replaced)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def apply_overrides(profile: Profile, overrides: Mapping[str, Any]) -> Profile:
    """``profile`` with every ``dotted.key: value`` of ``overrides`` set, validated again.

    :raises OverrideError: a key does not exist in the profile's structure or a value is
        invalid (the message is the validator's, with the field path).
    """
    if not overrides:
        return profile
    tree = _plain(profile.model_dump(mode="python"))
    # Section kinds first, so that the other keys set in a re-typed section survive.
    ordered = sorted(
        overrides.items(), key=lambda kv: kv[0].rsplit(".", 1)[-1] not in _DISCRIMINATORS
    )
    for key, value in ordered:
        _set(tree, key.split("."), value, key)
    try:
        changed = Profile.model_validate(tree)
    except ValidationError as exc:
        # The messages `kasmm validate` gives (an unknown key with its did-you-mean and the
        # allowed keys), at the field's dotted path; positions mean nothing for a --set.
        described = (
            describe_error(Profile, tree, (0, 0), err)
            for err in exc.errors(include_input=False, include_url=False)
        )
        problems = "; ".join(f"{field}: {message}" for _pos, field, message in described)
        raise OverrideError(f"{_describe(overrides)}: {problems}") from None
    findings = run_checks(changed)
    if findings:
        problems = "; ".join(f"{'.'.join(str(p) for p in path)}: {msg}" for path, msg in findings)
        raise OverrideError(f"{_describe(overrides)}: {problems}")
    return changed


def _describe(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items())
